// moh-classify: top-k ImageNet (or custom) classes of images with a MoH-ViT model. Thin CLI over vit/classify.h.
// Exit codes: 0 all images classified, 3 some images could not be read (they are reported and skipped),
// 1 bad input (model, weights, flags), 2 unsupported request.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "apps/app_main.h"
#include "common/io/atomic_file.h"
#include "common/runtime/device.h"
#include "common/error.h"
#include "common/runtime/precision.h"
#include "vit/agreement.h"
#include "vit/classifier.h"
#include "vit/image_inputs.h"
#include "vit/config.h"

int main(int argc, char** argv) {
  return moh::run_app("moh-classify", [&]() -> int {
    CLI::App app{"Classify images with a MoH-ViT (MoH-TransNeXt) model.\n"
                 "Inputs are image files, folders (searched recursively) or quoted globs. Examples:\n"
                 "  moh-classify --weights models/moh-vit-fmnist.safetensors shirt.png pictures/   (the demo model)\n"
                 "  moh-classify --model moh-vit-s-80 --weights moh-vit-s-80.safetensors photo.jpg  (ImageNet)"};
    std::vector<std::string> inputs;
    std::string model, weights, device = "auto", dtype = "auto", json_out;
    int topk = 5, batch = 16, threads = 0;
    int64_t max_image_pixels = moh::kDefaultMaxImagePixels;
    bool random_weights = false, agreement = false, quiet_list = false;
    app.add_option("inputs", inputs, "images, folders or globs")->required();
    app.add_option("--weights", weights, "weights file: a self-describing .safetensors (such as the demo model), or "
                                         "an official checkpoint converted to safetensors together with --model");
    app.add_flag("--random-weights", random_weights, "run a randomly initialised --model (smoke tests only: its "
                                                     "predictions mean nothing)");
    app.add_option("--model", model, "preset (moh-vit-s-75, moh-vit-s-80, moh-vit-b-50, moh-vit-b-75; dense: "
                                     "transnext-micro/-tiny/-small/-base) or config .json; "
                                     "needed when the weights record no config");
    app.add_option("--max-image-pixels", max_image_pixels, "refuse pictures with more pixels than this, read from their "
                   "header before decoding (default 178956970, Pillow's decompression-bomb limit)")
        ->check(CLI::PositiveNumber);
    app.add_option("--topk", topk, "classes to show per image (default 5)");
    app.add_option("--device", device, "auto|cpu|cuda[:N] (default auto)");
    app.add_option("--dtype", dtype, "auto|fp32|mixed|bf16|fp16 (default auto: mixed on CUDA = bf16 GEMMs with fp32 LayerNorm/router/residual stream, as the official autocast; fp32 on CPU)");
    app.add_option("--batch-size", batch, "images per forward pass (default 16)");
    moh::add_threads_option(app, threads);
    app.add_option("--json", json_out, "also write the results as JSON to this file ('-' = stdout, no text output)");
    app.add_flag("--agreement", agreement, "inputs are pictures written by moh-generate (NNNNNN_<class>_<name>.png): "
                                           "also print, per requested class, how many were classified as that class");
    app.add_flag("--no-list", quiet_list, "do not print the per-image top-k lists (with --agreement: the table only)");
    if (const auto rc = moh::parse_command_line(app, argc, argv)) return *rc;
    MOH_CHECK(topk >= 1, "--topk must be >= 1 (got ", topk, ")");
    MOH_CHECK(batch >= 1, "--batch-size must be >= 1 (got ", batch, ")");
    MOH_CHECK(!weights.empty() || random_weights,
              "--weights is required: the demo model models/moh-vit-fmnist.safetensors ships with the toolkit; "
              "official MoH-ViT checkpoints (Hugging Face Chat-UniVi/MoH-ViT-*) go with --model PRESET. "
              "(--random-weights runs an untrained model for smoke tests)");
    MOH_CHECK(weights.empty() || !random_weights, "--weights and --random-weights exclude each other");
    MOH_CHECK(!random_weights || !model.empty(), "--random-weights needs --model (which architecture to initialise)");
    moh::apply_threads_option(threads);
    const auto files = moh::vit::expand_image_inputs(inputs);
    if (random_weights)
      std::cerr << "moh-classify: warning: --random-weights: the model is untrained and its predictions mean nothing\n";
    moh::vit::ClassifierOptions co;
    co.weights = weights;
    co.model = model;
    co.device = device;
    co.dtype = dtype;
    co.random_weights = random_weights;
    co.max_image_pixels = max_image_pixels;
    const auto dev_checked = moh::with_flag("--device", [&] { return moh::parse_device(device); });
    moh::with_flag("--dtype", [&] { moh::parse_precision(dtype, dev_checked); });
    moh::vit::Classifier clf(co);
    const auto& cfg = clf.config();
    const auto dev = clf.device();
    const auto dt = clf.precision();

    const bool text = json_out != "-";
    int failed = 0;
    auto results = clf.classify_files(files, batch, topk, [&](const moh::vit::ClassifyResult& r) {
      if (!r.ok) {
        ++failed;
        std::cerr << "moh-classify: skipped '" << r.path << "': " << r.error << "\n";
        return;
      }
      if (!text || quiet_list) return;
      std::cout << r.path << "\n";
      for (size_t i = 0; i < r.top.size(); ++i) {
        char line[64];
        std::snprintf(line, sizeof line, "  %zu. %7.4f  %5lld", i + 1, r.top[i].probability,
                      (long long)r.top[i].index);
        std::cout << line << (r.top[i].label.empty() ? "" : "  ") << r.top[i].label << "\n";
      }
    });

    moh::vit::Agreement agree;
    if (agreement) {
      agree = moh::vit::agreement_by_class(results, clf);
      MOH_CHECK(agree.images > 0, "--agreement: none of the classified files is named NNNNNN_<class>_<name>.png as "
                "moh-generate writes them");
      if (text) {
        std::printf("\n%-24s %7s %7s %10s  %s\n", "requested class", "images", "agreed", "agreement", "predicted most");
        for (const auto& row : agree.rows)
          std::printf("%-24s %7lld %7lld %9.1f%%  %s\n", (std::to_string(row.requested) + " " + row.name).c_str(),
                      (long long)row.images, (long long)row.agreed, 100.0 * row.rate(),
                      (std::to_string(row.most_predicted) + " " + clf.label(row.most_predicted)).c_str());
        std::printf("%-24s %7lld %7lld %9.1f%%\n", "all", (long long)agree.images, (long long)agree.agreed,
                    100.0 * agree.rate());
      }
    }

    if (!json_out.empty()) {
      nlohmann::json j;
      j["model"] = cfg.name;
      j["weights"] = random_weights ? std::string("random") : weights;
      j["device"] = moh::device_to_string(dev);
      j["dtype"] = moh::precision_to_string(dt);
      j["results"] = nlohmann::json::array();
      for (const auto& r : results) {
        nlohmann::json e{{"path", r.path}, {"ok", r.ok}};
        if (!r.ok) e["error"] = r.error;
        e["top"] = nlohmann::json::array();
        for (const auto& p : r.top)
          e["top"].push_back({{"index", p.index}, {"label", p.label}, {"probability", p.probability}});
        j["results"].push_back(e);
      }
      if (agreement) {
        nlohmann::json rows = nlohmann::json::array();
        for (const auto& row : agree.rows)
          rows.push_back({{"requested", row.requested}, {"name", row.name}, {"images", row.images},
                          {"agreed", row.agreed}, {"rate", row.rate()}, {"most_predicted", row.most_predicted}});
        j["agreement"] = {{"images", agree.images}, {"agreed", agree.agreed}, {"rate", agree.rate()},
                          {"unit", "fraction"}, {"per_class", rows}};
      }
      if (json_out == "-")
        std::cout << j.dump(2) << "\n";
      else
        moh::write_file_atomic(json_out, j.dump(2) + "\n");
    }
    if (failed) {
      std::cerr << "moh-classify: " << failed << " of " << results.size() << " images could not be classified\n";
      return 3;
    }
    return 0;
  });
}
