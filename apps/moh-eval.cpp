// moh-eval: ImageNet-style top-1/top-5 evaluation of a MoH-ViT checkpoint (what MoH-ViT/main.py --eval reports),
// with timm validate.py's options (--img-size, --crop-pct, --interpolation, --mean, --std, --real-labels,
// --results-file). Thin CLI over vit/evaluator.h. Exit codes: 0 every image evaluated, 3 done but some images were unreadable
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
#include "vit/build_info.h"
#include "vit/config.h"
#include "vit/evaluator.h"
#include "vit/real_labels.h"
#include "vit/results_file.h"
#include "vit/routes.h"

int main(int argc, char** argv) {
  return moh::run_app("moh-eval", [&]() -> int {
    CLI::App app{"Evaluate a MoH-ViT (MoH-TransNeXt) classifier: top-1/top-5 accuracy (in percent), per-class\n"
                 "accuracy, throughput. Data (--layout, detected by default): an ImageFolder (DIR/val/<wnid>/*.JPEG or\n"
                 "DIR/<class>/*); a flat folder of ILSVRC2012_val_*.JPEG with Kaggle's LOC_val_solution.csv or the\n"
                 "devkit's ILSVRC2012_validation_ground_truth.txt (found in or above DIR, or --labels FILE); a flat\n"
                 "folder with --labels FILE ('filename label' lines); WebDataset .tar shards (a folder, a .tar, or\n"
                 "'DIR/imagenet1k-validation-{000000..000063}.tar'); a folder of IDX files (MNIST / Fashion-MNIST:\n"
                 "*-images-idx3-ubyte[.gz], choose --split). Example (the shipped demo model):\n"
                 "  moh-eval --weights models/moh-vit-fmnist.safetensors --data /usr/share/datasets/fashion-mnist\n"
                 "Several processes (each evaluates every N-th image; rank 0 prints and writes the summed results):\n"
                 "  scripts/torchrun.sh --nproc_per_node 4 --no_python moh-eval --weights ... --data ...\n"
                 "  srun --ntasks 4 moh-eval --weights ... --data ..."};
    std::string model, weights, data, labels, split = "test", device = "auto", dtype = "auto", csv, json_out,
        predictions_csv, layout = "auto", real_json, results_file;
    moh::vit::EvalTransform transform;
    std::vector<double> mean, stdev;
    int64_t limit = 0;
    int threads = 0;
    moh::vit::EvalOptions o;
    bool quiet = false;
    moh::dist::Options dist_opts;
    app.add_option("--weights", weights, "weights file (.safetensors; a self-describing file such as the demo "
                                         "model needs no --model)")->required();
    app.add_option("--model", model, "preset (moh-vit-s-75/-s-80/-b-50/-b-75; dense: transnext-micro/-tiny/-small/"
                                     "-base) or config .json; needed for official checkpoints, checked against the "
                                     "weights' own config when they have one");
    app.add_option("--data", data, "dataset folder, or WebDataset shards (a .tar file or a {000000..000063} pattern)")->required();
    app.add_option("--labels", labels, "label file for a flat folder: 'filename label' lines, Kaggle's "
                                       "LOC_val_solution.csv or the devkit's ILSVRC2012_validation_ground_truth.txt");
    app.add_option("--layout", layout, "auto (default: detected) | imagefolder | labels-file | kaggle-csv | devkit | "
                                       "webdataset | idx")->check(CLI::IsMember(moh::vit::eval_layouts()));
    app.add_option("--real-labels", real_json, "ReaL labels (real.json of Beyer et al. 2020): report ReaL top-1 "
                                               "beside the original top-1 (ImageNet-1k validation images only)");
    app.add_option("--img-size", transform.img_size, "input size (default: the model's)");
    app.add_option("--crop-pct", transform.crop_pct, "resize the shorter side to floor(img_size / crop_pct), then "
                                                     "center-crop (timm); default: the official rule (0.875 below "
                                                     "384, a warp at 384 and above)");
    app.add_option("--interpolation", transform.interpolation, "bicubic (default, as the official transform) | "
                                                               "bilinear")->check(CLI::IsMember({"bicubic", "bilinear"}));
    app.add_option("--mean", mean, "normalisation mean, 3 values (default 0.485 0.456 0.406)")->expected(3);
    app.add_option("--std", stdev, "normalisation std, 3 values (default 0.229 0.224 0.225)")->expected(3);
    app.add_option("--results-file", results_file, "append one row for this run (model, weights sha256, top-1, "
                                                   "top-5, ReaL, images, img/s, transform, device, dtype, threads, "
                                                   "git revision) to this .csv or .json file, as timm validate.py");
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
    if (mean.size() == 3) transform.mean = {mean[0], mean[1], mean[2]};
    if (stdev.size() == 3) transform.std = {stdev[0], stdev[1], stdev[2]};
    const auto all = moh::with_flag("--data", [&] {
      return moh::vit::list_eval_dataset(data, labels, cfg, split, layout);
    });
    const auto ds = moh::vit::subset_evenly(all, limit);
    std::optional<moh::vit::RealLabels> real;
    if (!real_json.empty()) {
      moh::with_flag("--real-labels", [&] {
        MOH_CHECK(cfg.num_classes == 1000, "ReaL labels are ImageNet-1k classes, but model '", cfg.name, "' has ",
                  cfg.num_classes);
        real = moh::vit::load_real_labels(real_json);
        moh::vit::check_real_labels(ds, *real);
      });
    }
    if (group.is_main())
      std::cerr << "moh-eval: " << ds.samples.size() << " of " << all.samples.size() << " images from '" << ds.root
              << "' (" << ds.layout << ", classes by " << ds.mapping << "), model " << cfg.name << " on "
              << moh::device_to_string(dev) << " " << moh::precision_to_string(dt)
                << (group.multi() ? ", " + std::to_string(group.world_size()) + " ranks (" + group.launch().launcher +
                                        ", " + group.backend() + ")"
                                  : std::string())
                << "\n";
    moh::vit::Classifier clf(source, dev, dt);
    moh::with_flag("--img-size/--crop-pct/--interpolation/--mean/--std", [&] { clf.set_eval_transform(transform); });
    std::optional<moh::RouteClassStats> routes;
    if (!routes_csv.empty()) {
      routes.emplace(moh::vit::vit_route_class_stats(cfg));
      o.routes = &*routes;
    }
    const auto r = moh::vit::Evaluator(clf, o, &group).run(ds);
    if (routes && group.multi()) routes->all_reduce(group);  // every rank saw its own shard
    if (!group.is_main()) return 0;  // rank 0 reports for the whole job (its exit code says whether images failed)

    std::optional<moh::vit::RealAccuracy> real_acc;
    if (real) real_acc = moh::vit::real_accuracy(ds, r.predictions, *real);
    char line[320];
    std::snprintf(line, sizeof line, "top1 %.3f%%  top%d %.3f%%  (%lld images, %lld unreadable)  %.1f img/s  %.1f s",
                  r.top1(), r.topk, r.topk_accuracy(), (long long)r.images, (long long)r.failed,
                  r.images_per_second(), r.seconds);
    std::string real_line;
    if (real_acc) {
      char buf[128];
      std::snprintf(buf, sizeof buf, "  ReaL top1 %.3f%% (%lld images with ReaL labels)", real_acc->top1(),
                    (long long)real_acc->images);
      real_line = buf;
    }
    (json_out == "-" ? std::cerr : std::cout) << line << real_line << "\n";
    const auto weights_sha = moh::sha256_file(weights);
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
      j["weights_sha256"] = weights_sha;
      j["data"] = ds.root;
      j["layout"] = ds.layout;
      j["class_mapping"] = ds.mapping;
      j["images"] = r.images;
      j["unreadable"] = r.failed;
      j["top1"] = r.top1();
      j["top" + std::to_string(r.topk)] = r.topk_accuracy();
      j["top1_correct"] = r.top1_correct;
      j["top" + std::to_string(r.topk) + "_correct"] = r.topk_correct;
      if (real_acc) {
        j["real_top1"] = real_acc->top1();
        j["real_top1_correct"] = real_acc->top1_correct;
        j["real_images"] = real_acc->images;
        j["real_labels"] = real_json;
      }
      j["transform"] = clf.transform_json();
      j["seconds"] = r.seconds;
      j["images_per_second"] = r.images_per_second();
      j["model_seconds"] = r.model_seconds;
      j["settings"] = {{"device", moh::device_to_string(dev)}, {"dtype", moh::precision_to_string(dt)},
                       {"batch_size", o.batch_size}, {"workers", o.workers}, {"limit", limit},
                       {"img_size", clf.transform_json().value("img_size", (int)cfg.img_size)}, {"labels", labels},
                       {"layout", layout},
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
    if (!results_file.empty()) {
      nlohmann::ordered_json row;
      row["model"] = cfg.name;
      row["weights"] = weights;
      row["weights_sha256"] = weights_sha;
      row["top1"] = r.top1();
      row["top5"] = r.topk == 5 ? nlohmann::ordered_json(r.topk_accuracy()) : nlohmann::ordered_json();
      row["real_top1"] = real_acc ? nlohmann::ordered_json(real_acc->top1()) : nlohmann::ordered_json();
      row["images"] = r.images;
      row["unreadable"] = r.failed;
      row["img_per_sec"] = r.images_per_second();
      row["transform"] = clf.fmnist() ? std::string("stored 28x28 gray transform")
                                      : moh::vit::eval_transform_summary(clf.eval_transform(), (int)cfg.img_size);
      row["data"] = ds.root;
      row["layout"] = ds.layout;
      row["device"] = moh::device_to_string(dev);
      row["dtype"] = moh::precision_to_string(dt);
      row["threads"] = moh::cpu_threads();
      row["ranks"] = group.world_size();
      row["batch_size"] = o.batch_size;
      row["git_revision"] = moh::vit::git_revision();
      moh::with_flag("--results-file", [&] { moh::vit::append_results_row(results_file, row); });
    }
    if (r.failed > 0) {
      std::cerr << "moh-eval: " << r.failed << " of " << (r.images + r.failed) << " images could not be read\n";
      return 3;
    }
    return 0;
  });
}
