// moh-eval: ImageNet-style top-1/top-5 evaluation of a MoH-ViT checkpoint (what MoH-ViT/main.py --eval reports).
// Thin CLI over vit/evaluate.h. Exit codes: 0 every image evaluated, 3 done but some images were unreadable
// (counted, listed, results written), 1 bad input (also: no image readable at all), 2 unsupported request,
// 130/143 interrupted (nothing half-written).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <optional>

#include "apps/app_main.h"
#include "common/io/atomic_file.h"
#include "common/runtime/device.h"
#include "common/dist/cli.h"
#include "common/dist/distributed.h"
#include "common/error.h"
#include "common/runtime/precision.h"
#include "common/io/sha256.h"
#include "common/runtime/threads.h"
#include "vit/config.h"
#include "vit/routes.h"
#include "vit/evaluator.h"

int main(int argc, char** argv) {
  return moh::run_app("moh-eval", [&]() -> int {
    CLI::App app{"Evaluate a MoH-ViT (MoH-TransNeXt) classifier: top-1/top-5 accuracy (in percent), per-class\n"
                 "accuracy, throughput. Data: an ImageFolder (DIR/val/<wnid>/*.JPEG or DIR/<class>/*), a flat folder\n"
                 "with --labels FILE ('filename label' lines), or a folder of IDX files (MNIST / Fashion-MNIST:\n"
                 "*-images-idx3-ubyte[.gz], choose --split). Example (the shipped demo model):\n"
                 "  moh-eval --weights models/moh-vit-fmnist.safetensors --data /usr/share/datasets/fashion-mnist\n"
                 "Several processes (each evaluates every N-th image; rank 0 prints and writes the summed results):\n"
                 "  scripts/torchrun.sh --nproc_per_node 4 --no_python moh-eval --weights ... --data ...\n"
                 "  srun --ntasks 4 moh-eval --weights ... --data ..."};
    std::string model, weights, data, labels, split = "test", device = "auto", dtype = "auto", csv, json_out,
        predictions_csv;
    int64_t limit = 0;
    int threads = 0;
    moh::vit::EvalOptions o;
    bool quiet = false;
    moh::dist::Options dist_opts;
    app.add_option("--weights", weights, "weights file (.safetensors; a self-describing file such as the demo "
                                         "model needs no --model)")->required();
    app.add_option("--model", model, "preset (moh-vit-s-75/-s-80/-b-50/-b-75) or config .json; needed for official "
                                     "checkpoints, checked against the weights' own config when they have one");
    app.add_option("--data", data, "dataset folder")->required();
    app.add_option("--labels", labels, "label file for a flat folder: 'filename label' per line");
    app.add_option("--split", split, "IDX datasets: train or test (default test)")->check(CLI::IsMember({"train", "test", "t10k"}));
    app.add_option("--limit", limit, "evaluate only this many images, evenly spaced over the dataset (default all)");
    app.add_option("--max-image-pixels", o.max_image_pixels, "refuse pictures with more pixels than this, read from their "
                   "header before decoding (default 178956970, Pillow's decompression-bomb limit)")
        ->check(CLI::PositiveNumber);
    app.add_option("--batch-size", o.batch_size, "images per forward pass (default 64)");
    app.add_option("--workers", o.workers, "decode/preprocess threads, one core each (default 2)");
    app.add_option("--device", device, "auto|cpu|cuda[:N] (default auto)");
    app.add_option("--dtype", dtype, "auto|fp32|mixed|bf16|fp16 (default auto: mixed on CUDA = bf16 GEMMs with fp32 LayerNorm/router/residual stream, as the official autocast; fp32 on CPU)");
    moh::add_threads_option(app, threads);
    moh::dist::add_dist_options(app, dist_opts);
    app.add_option("--csv", csv, "write per-class accuracy to this CSV file");
    app.add_option("--predictions", predictions_csv, "write each image's label and predicted class to this CSV file");
    app.add_option("--json", json_out, "write a summary JSON to this file ('-' = standard output; top1/top5 in percent)");
    std::string routes_csv;
    app.add_option("--routes-stats", routes_csv, "write the MoH routing per class to this CSV file: for every class, "
                                                 "routed layer and routed head, the fraction of the class's tokens "
                                                 "that selected the head (its mean load), e.g. --routes-stats loads.csv");
    app.add_flag("-q,--quiet", quiet, "no progress bar");
    if (const auto rc = moh::parse_command_line(app, argc, argv)) return *rc;
    moh::dist::Group group(dist_opts);  // before any heavy work: a rank that cannot join fails fast
    moh::apply_threads_option(threads == 0 && group.multi() ? moh::dist::default_threads(group) : threads);
    const auto source = moh::vit::resolve_vit_source(weights, model);
    const auto& cfg = source.config;
    const auto dev = moh::with_flag("--device", [&] { return moh::dist::rank_device(device, group); });
    const auto dt = moh::with_flag("--dtype", [&] { return moh::parse_precision(dtype, dev); });
    o.progress = !quiet;
    const auto all = moh::with_flag("--data", [&] { return moh::vit::list_eval_dataset(data, labels, cfg, split); });
    const auto ds = moh::vit::subset_evenly(all, limit);
    if (group.is_main())
      std::cerr << "moh-eval: " << ds.samples.size() << " of " << all.samples.size() << " images from '" << ds.root
              << "' (" << ds.layout << ", classes by " << ds.mapping << "), model " << cfg.name << " on "
              << moh::device_to_string(dev) << " " << moh::precision_to_string(dt)
                << (group.multi() ? ", " + std::to_string(group.world_size()) + " ranks (" + group.launch().launcher +
                                        ", " + group.backend() + ")"
                                  : std::string())
                << "\n";
    moh::vit::Classifier clf(source, dev, dt);
    std::optional<moh::RouteClassStats> routes;
    if (!routes_csv.empty()) {
      routes.emplace(moh::vit::vit_route_class_stats(cfg));
      o.routes = &*routes;
    }
    const auto r = moh::vit::Evaluator(clf, o, &group).run(ds);
    if (routes && group.multi()) routes->all_reduce(group);  // every rank saw its own shard
    if (!group.is_main()) return 0;  // rank 0 reports for the whole job (its exit code says whether images failed)

    char line[256];
    std::snprintf(line, sizeof line, "top1 %.3f%%  top%d %.3f%%  (%lld images, %lld unreadable)  %.1f img/s  %.1f s",
                  r.top1(), r.topk, r.topk_accuracy(), (long long)r.images, (long long)r.failed,
                  r.images_per_second(), r.seconds);
    (json_out == "-" ? std::cerr : std::cout) << line << "\n";
    for (const auto& f : r.failures) std::cerr << "moh-eval: unreadable '" << f.path << "': " << f.error << "\n";

    if (!csv.empty()) moh::vit::write_per_class_csv(csv, r, clf);
    if (routes) routes->write_csv(routes_csv, [&](int64_t c) { return clf.label(c); });
    if (!predictions_csv.empty()) moh::vit::write_predictions_csv(predictions_csv, ds, r, clf);
    if (!json_out.empty()) {
      nlohmann::json j;
      j["model"] = cfg.name;
      j["model_config_origin"] = source.config_origin;
      j["model_config"] = moh::vit::vit_config_to_json(cfg);
      j["weights"] = weights;
      j["weights_sha256"] = moh::sha256_file(weights);
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
      j["settings"] = {{"device", moh::device_to_string(dev)}, {"dtype", moh::precision_to_string(dt)},
                       {"batch_size", o.batch_size}, {"workers", o.workers}, {"limit", limit},
                       {"img_size", cfg.img_size}, {"labels", labels},
                       {"split", ds.layout == "idx" ? split : ""}, {"threads", moh::cpu_threads()}};
      j["ranks"] = group.world_size();  // processes that shared the work (results do not depend on it)
      j["accuracy_unit"] = "percent";
      auto pc = nlohmann::json::array();
      for (size_t c = 0; c < r.per_class.size(); ++c) {
        const auto& st = r.per_class[c];
        if (st.images == 0) continue;
        pc.push_back({{"index", c}, {"name", clf.label((int64_t)c)}, {"images", st.images},
                      {"top1", 100.0 * st.top1 / st.images}, {"top" + std::to_string(r.topk), 100.0 * st.topk / st.images}});
      }
      j["per_class"] = pc;
      auto fails = nlohmann::json::array();
      for (const auto& f : r.failures) fails.push_back({{"path", f.path}, {"error", f.error}});
      j["unreadable_files"] = fails;
      if (json_out == "-") std::cout << j.dump(2) << "\n";
      else moh::write_file_atomic(json_out, j.dump(2) + "\n");
    }
    if (r.failed > 0) {
      std::cerr << "moh-eval: " << r.failed << " of " << (r.images + r.failed) << " images could not be read\n";
      return 3;
    }
    return 0;
  });
}
