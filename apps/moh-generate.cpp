// moh-generate: class-conditional image generation with MoH-DiT (the job of MoH-DiT/sample.py and sample_ddp.py).
// Thin CLI: fills dit::GenerateParams / OutputOptions, loads the model and VAE, calls dit::generate_images and
// writes through dit::GenerationWriter (all-or-nothing output folder: PNGs, optional grid and .npz, JSON sidecar).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <fstream>
#include <iostream>

#include "apps/app_main.h"
#include "common/device.h"
#include "common/error.h"
#include "common/imagenet.h"
#include "dit/config.h"
#include "dit/dit_layers.h"
#include "dit/generate.h"
#include "dit/model.h"
#include "dit/vae.h"

namespace {

using moh::Error;

// sample.py's fixed labels, used when no --class is given for an ImageNet model.
const std::vector<int64_t> kSamplePyLabels = {207, 360, 387, 974, 88, 979, 417, 279};

struct ModelSpec {
  moh::dit::DiTConfig config;
  std::vector<std::string> class_names;  // optional label list from the model JSON ("class_names")
};

// A preset name, or a JSON config file that may carry a "class_names" list next to the DiT keyword arguments.
ModelSpec resolve_model(const std::string& spec) {
  ModelSpec m;
  if (moh::dit::is_dit_preset(spec)) {
    m.config = moh::dit::dit_preset(spec);
    return m;
  }
  std::ifstream in(spec);
  if (!in) return {moh::dit::resolve_dit_config(spec), {}};  // its error lists the presets
  nlohmann::json j;
  try {
    in >> j;
  } catch (const std::exception& e) {
    throw Error("--model '" + spec + "' is not valid JSON (" + e.what() + ")");
  }
  if (j.is_object() && j.contains("class_names")) {
    MOH_CHECK(j["class_names"].is_array(), "--model '", spec, "': \"class_names\" must be a list of strings");
    for (const auto& n : j["class_names"]) {
      MOH_CHECK(n.is_string(), "--model '", spec, "': \"class_names\" must be a list of strings");
      m.class_names.push_back(n.get<std::string>());
    }
    j.erase("class_names");
  }
  m.config = moh::dit::DiTConfig::from_json(j, "--model '" + spec + "'");
  if (m.config.name == "custom") m.config.name = spec;
  MOH_CHECK(m.class_names.empty() || (int64_t)m.class_names.size() == m.config.num_classes, "--model '", spec,
            "': \"class_names\" has ", m.class_names.size(), " entries but the model has ", m.config.num_classes,
            " classes");
  return m;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

bool is_imagenet(const ModelSpec& m) { return m.class_names.empty() && m.config.num_classes == 1000; }

int64_t resolve_class(const std::string& q, const ModelSpec& m) {
  const int64_t n = m.config.num_classes;
  int64_t idx = -1;
  if (is_imagenet(m)) {
    idx = moh::resolve_imagenet_class(q);
  } else if (all_digits(q)) {
    idx = q.size() > 9 ? n : std::stoll(q);
  } else {
    for (size_t i = 0; i < m.class_names.size(); ++i)
      if (lower(m.class_names[i]) == lower(q)) idx = static_cast<int64_t>(i);
    if (idx < 0) {
      std::string known;
      for (size_t i = 0; i < m.class_names.size() && i < 20; ++i) known += (i ? ", " : "") + m.class_names[i];
      if (m.class_names.empty())
        throw Error("--class '" + q + "': model " + m.config.name + " has " + std::to_string(n) +
                    " unnamed classes; give an index 0.." + std::to_string(n - 1) +
                    " (or add \"class_names\" to the model JSON)");
      throw Error("--class '" + q + "' is not a class of model " + m.config.name + "; classes: " + known +
                  (m.class_names.size() > 20 ? ", ..." : ""));
    }
  }
  MOH_CHECK(idx >= 0 && idx < n, "--class '", q, "' is out of range: model ", m.config.name, " has ", n,
            " classes (0..", n - 1, ")");
  return idx;
}

std::string class_name(int64_t idx, const ModelSpec& m) {
  if (!m.class_names.empty()) return m.class_names.at(idx);
  if (is_imagenet(m)) return moh::imagenet_classes().at(idx).name;
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  return moh::run_app("moh-generate", [&]() -> int {
    CLI::App app{"Generate class-conditional images with MoH-DiT (DDPM/DDIM + classifier-free guidance + SD-VAE),\n"
                 "as the official MoH-DiT sample.py / sample_ddp.py do. Writes one PNG per image, a JSON sidecar\n"
                 "with every setting, and optionally a grid PNG and an ADM-style samples.npz."};
    std::string model_spec = "MoH-DiT-XL/2-90", weights, vae_path, vae_config_spec = "sd-vae-ft-ema";
    std::vector<std::string> classes;
    int64_t num_per_class = 1;
    std::string device_spec = "auto", dtype_spec = "auto";
    bool random_weights = false, quiet = false;
    moh::dit::GenerateParams p;
    moh::dit::OutputOptions out;
    app.add_option("--model", model_spec, "preset (MoH-DiT-XL/2-90, ...) or JSON config file (default MoH-DiT-XL/2-90)");
    app.add_option("--weights", weights, "DiT weights (.safetensors, official key names; see scripts/convert_checkpoint.py)");
    app.add_flag("--random-weights", random_weights, "random DiT (and, without --vae, random VAE) weights: smoke tests");
    app.add_option("--vae", vae_path, "SD VAE weights (.safetensors; diffusers, legacy diffusers or ldm naming, e.g. "
                                      "stabilityai/sd-vae-ft-ema diffusion_pytorch_model.safetensors)");
    app.add_option("--vae-config", vae_config_spec, "VAE architecture when the file does not record one: preset "
                                                    "(sd-vae-ft-ema, sd-vae-ft-mse) or diffusers config.json (default sd-vae-ft-ema)");
    app.add_option("--class", classes, "class to generate (repeatable): index, ImageNet wnid or name such as "
                                       "\"golden retriever\" (default for ImageNet models: sample.py's 8 classes)");
    app.add_option("--num-per-class", num_per_class, "images per class (default 1)");
    app.add_option("--sampler", p.sampler, "ddpm (default, as the official scripts) or ddim");
    app.add_option("--steps", p.steps, "sampling steps (respacing of the 1000-step schedule; default 250)");
    app.add_option("--eta", p.eta, "DDIM eta (default 0)");
    app.add_option("--cfg-scale", p.cfg_scale, "classifier-free guidance scale (default 1.5; 1 disables the "
                                               "unconditional pass; sample.py uses 4, the paper's FID 1.25)");
    app.add_flag("--cfg-all-channels", p.cfg_all_channels, "guide all latent channels (official code guides the first 3)");
    app.add_option("--seed", p.seed, "random seed (default 0)");
    app.add_option("--batch-size", p.batch_size, "images per batch (default 32; doubled internally with guidance)");
    app.add_option("--device", device_spec, "auto|cpu|cuda[:N] (default auto)");
    app.add_option("--dtype", dtype_spec, "auto|fp32|bf16|fp16 (default auto: bf16 on CUDA, fp32 on CPU)");
    app.add_option("--out", out.out_dir, "output folder (created; must be new or empty unless --overwrite)")->required();
    app.add_flag("--grid", out.grid, "also write grid.png (torchvision make_grid layout, 2 px padding)");
    app.add_option("--grid-nrow", out.grid_nrow, "images per grid row (default 8)");
    app.add_flag("--npz", out.npz, "also write samples.npz with uint8 arr_0 [N, H, W, 3] (ADM evaluation layout)");
    app.add_flag("--overwrite", out.overwrite, "allow an existing non-empty --out (same-named files are replaced)");
    app.add_flag("-q,--quiet", quiet, "no progress bar");
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      return app.exit(e);
    }
    p.progress = !quiet;

    const ModelSpec model_spec_r = resolve_model(model_spec);
    const auto& cfg = model_spec_r.config;
    MOH_CHECK(num_per_class >= 1, "--num-per-class must be at least 1, got ", num_per_class);
    std::vector<int64_t> class_ids;
    for (const auto& c : classes) class_ids.push_back(resolve_class(c, model_spec_r));
    if (class_ids.empty()) {
      MOH_CHECK(is_imagenet(model_spec_r), "give at least one --class (model ", cfg.name, " has ", cfg.num_classes,
                " classes)");
      class_ids = kSamplePyLabels;
    }
    for (auto c : class_ids)
      for (int64_t k = 0; k < num_per_class; ++k) p.labels.push_back(c);

    MOH_CHECK(!weights.empty() || random_weights, "--weights is required (a .safetensors file with official key names; "
              "convert .pt/.pth checkpoints with scripts/convert_checkpoint.py), or --random-weights for a smoke test");
    MOH_CHECK(weights.empty() || !random_weights, "--weights and --random-weights exclude each other");
    const bool pixel_space = cfg.in_channels == 1 || cfg.in_channels == 3;
    MOH_CHECK(!vae_path.empty() || random_weights || pixel_space, "--vae is required: model ", cfg.name,
              " generates ", cfg.in_channels, "-channel latents; pass the SD VAE weights (e.g. sd-vae-ft-ema "
              "diffusion_pytorch_model.safetensors)");

    const auto device = moh::parse_device(device_spec);
    const auto dtype = moh::parse_dtype(dtype_spec, device);
    // The output folder is checked (and a staging folder created) before any heavy work.
    moh::dit::GenerationWriter writer(out, static_cast<int64_t>(p.labels.size()));

    moh::dit::DiT model(cfg);
    if (random_weights) moh::dit::init_random_weights(*model, p.seed);
    else moh::dit::load_dit_weights(model, weights);
    model->to(device, dtype);
    model->eval();

    std::optional<moh::dit::Vae> vae;
    std::string vae_desc = "none (pixel-space model)";
    const auto vae_fallback = moh::dit::VaeConfig::parse(vae_config_spec);
    if (!vae_path.empty()) {
      vae = moh::dit::load_vae(vae_path, vae_fallback);
      vae_desc = vae_path;
    } else if (!pixel_space) {
      torch::manual_seed(p.seed);  // default module init, made reproducible
      vae = moh::dit::Vae(vae_fallback);
      vae_desc = "random";
    }
    if (vae) {
      (*vae)->to(device, dtype);
      (*vae)->eval();
    }

    auto name_of = [&](int64_t label) {
      const auto n = moh::dit::slugify(class_name(label, model_spec_r));
      return n.empty() ? std::to_string(label) : std::to_string(label) + "_" + n;
    };
    auto stats = moh::dit::generate_images(model, vae ? &*vae : nullptr, p, device,
                                           [&](const moh::dit::GeneratedBatch& b) { writer.add(b, name_of); });

    nlohmann::json classes_json = nlohmann::json::array();
    for (auto c : class_ids) classes_json.push_back({{"index", c}, {"name", class_name(c, model_spec_r)}});
    const int64_t side = cfg.input_size * (vae ? (*vae)->config().downscale() : 1);
    nlohmann::json sidecar = {
        {"tool", "moh-generate"},
        {"model", model_spec},
        {"model_config", cfg.to_json()},
        {"weights", random_weights ? std::string("random (seed ") + std::to_string(p.seed) + ")" : weights},
        {"vae", vae_desc},
        {"vae_config", vae ? (*vae)->config().to_json() : nlohmann::json(nullptr)},
        {"device", moh::device_to_string(device)},
        {"dtype", moh::dtype_to_string(dtype)},
        {"settings", moh::dit::params_to_json(p)},
        {"seed", p.seed},
        {"classes", classes_json},
        {"num_per_class", num_per_class},
        {"labels", p.labels},
        {"num_images", p.labels.size()},
        {"image_size", {side, side}},
        {"torch_version", TORCH_VERSION},
        {"stats",
         {{"seconds", stats.seconds},
          {"sampling_seconds", stats.sampling_seconds},
          {"decode_seconds", stats.decode_seconds},
          {"images_per_second", stats.images / std::max(1e-9, stats.seconds)}}}};
    writer.commit(sidecar);
    std::cout << "wrote " << stats.images << " image(s) of " << side << "x" << side << " to " << out.out_dir << " in "
              << stats.seconds << " s (" << writer.files().size() << " files)\n";
    return 0;
  });
}
