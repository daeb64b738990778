// moh-eval: ImageNet-style top-1/top-5 evaluation of a MoH-ViT checkpoint (what MoH-ViT/main.py --eval reports).
// Thin CLI over vit/evaluate.h. Exit codes: 0 done (unreadable images are counted and listed, not fatal),
// 1 bad input, 2 unsupported request.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "apps/app_main.h"
#include "common/atomic_file.h"
#include "common/device.h"
#include "common/error.h"
#include "vit/config.h"
#include "vit/evaluate.h"

int main(int argc, char** argv) {
  return moh::run_app("moh-eval", [&]() -> int {
    CLI::App app{"Evaluate a MoH-ViT (MoH-TransNeXt) classifier: top-1/top-5 accuracy, per-class accuracy, "
                 "throughput.\nData: an ImageFolder (DIR/val/<wnid>/*.JPEG or DIR/<class>/*) or a flat folder with "
                 "--labels FILE ('filename label' lines)."};
    std::string model = "moh-vit-s-80", weights, data, labels, device = "auto", dtype = "auto", csv, json_out;
    int64_t limit = 0;
    moh::vit::EvalOptions o;
    bool quiet = false;
    app.add_option("--model", model, "preset (moh-vit-s-75/-s-80/-b-50/-b-75) or config .json (default moh-vit-s-80)");
    app.add_option("--weights", weights, "safetensors checkpoint with official key names")->required();
    app.add_option("--data", data, "dataset folder")->required();
    app.add_option("--labels", labels, "label file for a flat folder: 'filename label' per line");
    app.add_option("--limit", limit, "evaluate only this many images, evenly spaced over the dataset (default all)");
    app.add_option("--batch-size", o.batch_size, "images per forward pass (default 64)");
    app.add_option("--workers", o.workers, "decode/preprocess threads (default 4)");
    app.add_option("--device", device, "auto|cpu|cuda[:N] (default auto)");
    app.add_option("--dtype", dtype, "auto|fp32|bf16|fp16 (default auto: bf16 on CUDA, fp32 on CPU)");
    app.add_option("--csv", csv, "write per-class accuracy to this CSV file");
    app.add_option("--json", json_out, "write a summary JSON to this file");
    app.add_flag("-q,--quiet", quiet, "no progress bar");
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      return app.exit(e);
    }
    const auto cfg = moh::vit::resolve_vit_model(model);
    const auto dev = moh::parse_device(device);
    const auto dt = moh::parse_dtype(dtype, dev);
    o.progress = !quiet;
    const auto all = moh::vit::list_eval_dataset(data, labels, cfg);
    const auto ds = moh::vit::subset_evenly(all, limit);
    std::cerr << "moh-eval: " << ds.samples.size() << " of " << all.samples.size() << " images from '" << ds.root
              << "' (" << ds.layout << ", classes by " << ds.mapping << "), model " << cfg.name << " on "
              << moh::device_to_string(dev) << " " << moh::dtype_to_string(dt) << "\n";
    moh::vit::Classifier clf(cfg, weights, dev, dt);
    const auto r = moh::vit::evaluate(clf, ds, o);

    char line[256];
    std::snprintf(line, sizeof line, "top1 %.3f%%  top%d %.3f%%  (%lld images, %lld unreadable)  %.1f img/s  %.1f s",
                  r.top1(), r.topk, r.topk_accuracy(), (long long)r.images, (long long)r.failed,
                  r.images_per_second(), r.seconds);
    std::cout << line << "\n";
    for (const auto& f : r.failures) std::cerr << "moh-eval: unreadable '" << f.path << "': " << f.error << "\n";

    if (!csv.empty()) moh::vit::write_per_class_csv(csv, r, clf);
    if (!json_out.empty()) {
      nlohmann::json j;
      j["model"] = cfg.name;
      j["model_config"] = moh::vit::vit_config_to_json(cfg);
      j["weights"] = weights;
      j["weights_hash"] = moh::vit::file_fast_hash(weights);
      j["data"] = ds.root;
      j["layout"] = ds.layout;
      j["class_mapping"] = ds.mapping;
      j["images"] = r.images;
      j["unreadable"] = r.failed;
      j["top1"] = r.top1();
      j["top" + std::to_string(r.topk)] = r.topk_accuracy();
      j["top1_correct"] = r.top1_correct;
      j["top" + std::to_string(r.topk) + "_correct"] = r.topk_correct;
      j["seconds"] = r.seconds;
      j["images_per_second"] = r.images_per_second();
      j["model_seconds"] = r.model_seconds;
      j["settings"] = {{"device", moh::device_to_string(dev)}, {"dtype", moh::dtype_to_string(dt)},
                       {"batch_size", o.batch_size}, {"workers", o.workers}, {"limit", limit},
                       {"img_size", cfg.img_size}, {"labels", labels}};
      auto fails = nlohmann::json::array();
      for (const auto& f : r.failures) fails.push_back({{"path", f.path}, {"error", f.error}});
      j["unreadable_files"] = fails;
      moh::write_file_atomic(json_out, j.dump(2) + "\n");
    }
    return 0;
  });
}
