// moh-generate: class-conditional image generation with MoH-DiT (the job of MoH-DiT/sample.py and sample_ddp.py).
// Thin CLI: fills dit::GenerateParams / OutputOptions, loads the model and VAE, then either calls
// dit::generate_images and writes through dit::GenerationWriter (single-shot mode: all-or-nothing output folder:
// PNGs, optional grid and .npz, JSON sidecar), or, with --num-samples, runs dit::generate_fid_samples (FID mode,
// sample_ddp.py: any number of ranks under torchrun / srun, resumable).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>

#include "apps/app_main.h"
#include "common/device.h"
#include "common/dist_cli.h"
#include "common/distributed.h"
#include "common/error.h"
#include "dit/config.h"
#include "dit/dit_layers.h"
#include "dit/fid_sampling.h"
#include "dit/generate.h"
#include "dit/model.h"
#include "dit/model_source.h"
#include "dit/vae.h"

namespace {

// sample.py's fixed labels, used when no --class is given for an ImageNet model.
const std::vector<int64_t> kSamplePyLabels = {207, 360, 387, 974, 88, 979, 417, 279};

}  // namespace

int main(int argc, char** argv) {
  return moh::run_app("moh-generate", [&]() -> int {
    CLI::App app{"Generate class-conditional images with MoH-DiT (DDPM/DDIM + classifier-free guidance + SD-VAE),\n"
                 "as the official MoH-DiT sample.py / sample_ddp.py do. Writes one PNG per image\n"
                 "(NNNNNN_<class index>_<class name>.png), a JSON sidecar with every setting, and optionally a grid\n"
                 "PNG and an ADM-style samples.npz. Examples:\n"
                 "  moh-generate --weights models/moh-dit-fmnist.safetensors --class Trouser --num-per-class 8 --out t/\n"
                 "  moh-generate --model MoH-DiT-XL/2-90 --weights dit.safetensors --vae vae.safetensors \\\n"
                 "               --class \"golden retriever\" --out samples/\n"
                 "FID mode (sample_ddp.py): --num-samples N images, labels drawn uniformly from all classes (or the\n"
                 "--class list), any number of processes; each image depends only on --seed and its index, so the\n"
                 "result is the same for any process count and batch size. Single-shot mode stages its folder and\n"
                 "moves it into place only when complete (all or nothing); FID mode instead writes each NNNNNN.png\n"
                 "atomically straight into --out, so an interrupted run is resumed by running the same command again\n"
                 "(finished images are skipped), and writes samples.npz (ADM layout) and generation.json at the end:\n"
                 "  scripts/torchrun.sh --nproc_per_node 8 moh-generate --model MoH-DiT-XL/2-90 --weights dit.pt \\\n"
                 "               --vae vae.safetensors --num-samples 50000 --cfg-scale 1.25 --out fid50k/"};
    std::string model_spec, weights, vae_path, vae_config_spec = "sd-vae-ft-ema";
    int threads = 0;
    std::vector<std::string> classes;
    int64_t num_per_class = 1;
    std::string device_spec = "auto", dtype_spec = "auto";
    bool random_weights = false, quiet = false;
    moh::dit::GenerateParams p;
    moh::dit::OutputOptions out;
    int64_t num_samples = 0;
    moh::dist::Options dist_opts;
    app.add_option("--model", model_spec, "preset (MoH-DiT-XL/2-90, ...) or JSON config file; needed when the weights "
                                          "record no config (official checkpoints), checked against it otherwise");
    app.add_option("--weights", weights, "DiT weights: a self-describing .safetensors (such as the demo model) or an "
                                         "official checkpoint (.safetensors / .pt) with --model");
    app.add_flag("--random-weights", random_weights, "random DiT (and, without --vae, random VAE) weights: smoke tests");
    app.add_option("--vae", vae_path, "SD VAE weights (.safetensors; diffusers, legacy diffusers or ldm naming, e.g. "
                                      "stabilityai/sd-vae-ft-ema diffusion_pytorch_model.safetensors)");
    app.add_option("--vae-config", vae_config_spec, "VAE architecture when the file does not record one: preset "
                                                    "(sd-vae-ft-ema, sd-vae-ft-mse) or diffusers config.json (default sd-vae-ft-ema)");
    app.add_option("--class", classes, "class to generate (repeatable): index, the model's class name, 'all', or for "
                                       "ImageNet models a wnid or name such as \"golden retriever\" (default for "
                                       "ImageNet models: sample.py's 8 classes)");
    auto* o_npc = app.add_option("--num-per-class", num_per_class, "images per class (default 1)");
    auto* o_fid = app.add_option("--num-samples", num_samples, "FID mode: this many images (NNNNNN.png + samples.npz), "
                                                               "labels drawn uniformly; resumable, multi-process")
                      ->check(CLI::PositiveNumber);
    auto* o_rng = app.add_option("--rng", p.rng, "noise: stream (default; sample.py's single generator, bit-parity "
                                                 "with the official script) or per-sample (each image from (seed, "
                                                 "index): independent of batch size; FID mode always)")
                      ->check(CLI::IsMember({"stream", "per-sample"}));
    app.add_option("--sampler", p.sampler, "ddpm (default, as the official scripts) or ddim");
    auto* o_steps = app.add_option("--steps", p.steps, "sampling steps (respacing of the 1000-step schedule; default "
                                                       "250 or the model's recorded setting)");
    app.add_option("--eta", p.eta, "DDIM eta (default 0)");
    auto* o_cfg = app.add_option("--cfg-scale", p.cfg_scale, "classifier-free guidance scale (default 1.5 or the "
                                                             "model's recorded setting; 1 disables the unconditional "
                                                             "pass; sample.py uses 4, the paper's FID 1.25)");
    auto* o_all = app.add_flag("--cfg-all-channels", p.cfg_all_channels,
                               "guide all latent channels (official code guides the first 3)");
    auto* o_clip = app.add_flag("--clip-denoised", p.clip_denoised, "clamp the predicted x_0 to [-1, 1] every step "
                                                                    "(official scripts: off; pixel-space demo: on)");
    app.add_option("--seed", p.seed, "random seed (default 0)");
    app.add_option("--batch-size", p.batch_size, "images per batch (default 32; doubled internally with guidance)");
    app.add_option("--device", device_spec, "auto|cpu|cuda[:N] (default auto)");
    app.add_option("--dtype", dtype_spec, "auto|fp32|bf16|fp16 (default auto: bf16 on CUDA, fp32 on CPU)");
    app.add_option("--out", out.out_dir, "output folder (created; must be new or empty unless --overwrite)")->required();
    app.add_flag("--grid", out.grid, "also write grid.png (torchvision make_grid layout, 2 px padding)");
    app.add_option("--grid-nrow", out.grid_nrow, "images per grid row (default 8)");
    app.add_flag("--npz", out.npz, "also write samples.npz with uint8 arr_0 [N, H, W, 3] (ADM evaluation layout)");
    app.add_flag("--overwrite", out.overwrite, "allow an existing non-empty --out (same-named files are replaced)");
    moh::add_threads_option(app, threads);
    moh::dist::add_dist_options(app, dist_opts);
    app.add_flag("-q,--quiet", quiet, "no progress bar");
    if (const auto rc = moh::parse_command_line(app, argc, argv)) return *rc;
    p.progress = !quiet;
    const bool fid = o_fid->count() > 0;
    if (fid) {
      MOH_CHECK(!o_npc->count() && !out.grid && !out.overwrite, "--num-samples (FID mode) draws the labels itself "
                "and resumes instead of overwriting: drop --num-per-class, --grid and --overwrite");
      MOH_CHECK(!o_rng->count() || p.rng == "per-sample", "--num-samples (FID mode) needs --rng per-sample (the "
                "default there): the sample.py stream cannot be shared between processes");
      p.rng = "per-sample";
    }

    moh::dist::Group group(dist_opts);  // before any heavy work: a rank that cannot join fails fast
    MOH_CHECK(fid || !group.multi(), "this job has ", group.world_size(), " processes, but only FID mode "
              "(--num-samples N) shares its work; run the single-shot mode as one process");
    moh::apply_threads_option(threads == 0 && group.multi() ? moh::dist::default_threads(group) : threads);
    MOH_CHECK(!weights.empty() || random_weights, "--weights is required: the demo model "
              "models/moh-dit-fmnist.safetensors ships with the toolkit; official MoH-DiT checkpoints go with --model "
              "PRESET (.pt files load directly), or --random-weights --model PRESET for a smoke test");
    MOH_CHECK(weights.empty() || !random_weights, "--weights and --random-weights exclude each other");
    if (random_weights && model_spec.empty()) model_spec = "MoH-DiT-XL/2-90";
    const auto src = moh::dit::resolve_dit_source(weights, model_spec);
    const auto& cfg = src.config;
    // The model's recorded sampler settings apply unless given on the command line.
    if (!o_steps->count() && src.sampling.contains("num_sampling_steps"))
      p.steps = src.sampling["num_sampling_steps"].get<int64_t>();
    if (!o_cfg->count() && src.sampling.contains("cfg_scale")) p.cfg_scale = src.sampling["cfg_scale"].get<double>();
    if (!o_all->count() && src.sampling.contains("cfg_all_channels"))
      p.cfg_all_channels = src.sampling["cfg_all_channels"].get<bool>();
    if (!o_clip->count() && src.sampling.contains("clip_denoised"))
      p.clip_denoised = src.sampling["clip_denoised"].get<bool>();
    MOH_CHECK(num_per_class >= 1, "--num-per-class must be at least 1, got ", num_per_class);
    std::vector<int64_t> class_ids;
    for (const auto& c : classes) {
      if (c == "all") {
        for (int64_t k = 0; k < cfg.num_classes; ++k) class_ids.push_back(k);
        continue;
      }
      try {
        class_ids.push_back(moh::dit::resolve_dit_class(c, src));
      } catch (const moh::Error& e) {
        throw moh::Error(std::string("--class: ") + e.what());
      }
    }
    if (class_ids.empty() && fid) {
      for (int64_t k = 0; k < cfg.num_classes; ++k) class_ids.push_back(k);  // sample_ddp.py: every class
    } else if (class_ids.empty()) {
      MOH_CHECK(cfg.num_classes == 1000 && src.class_names.empty(), "give at least one --class (model ", cfg.name,
                " has ", cfg.num_classes, " classes; --class all generates every one)");
      class_ids = kSamplePyLabels;
    }
    if (!fid)
      for (auto c : class_ids)
        for (int64_t k = 0; k < num_per_class; ++k) p.labels.push_back(c);

    const bool pixel_space = src.pixel_space;
    MOH_CHECK(!vae_path.empty() || random_weights || pixel_space, "--vae is required: model ", cfg.name,
              " generates ", cfg.in_channels, "-channel latents; pass the SD VAE weights (e.g. sd-vae-ft-ema "
              "diffusion_pytorch_model.safetensors)");

    const auto device = moh::dist::rank_device(device_spec, group);
    const auto dtype = moh::parse_dtype(dtype_spec, device);
    // The output folder is checked (and a staging folder created) before any heavy work.
    std::optional<moh::dit::GenerationWriter> writer;
    if (!fid) writer.emplace(out, static_cast<int64_t>(p.labels.size()));

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
      const auto n = moh::dit::slugify(moh::dit::dit_class_name(label, src));
      return n.empty() ? std::to_string(label) : std::to_string(label) + "_" + n;
    };
    if (fid) {
      auto file_facts = [](const std::string& path) -> nlohmann::json {
        std::error_code ec;
        const auto size = std::filesystem::file_size(path, ec);
        return {{"path", path}, {"bytes", ec ? -1 : (int64_t)size}};
      };
      moh::dit::FidOptions fo;
      fo.out_dir = out.out_dir;
      fo.num_samples = num_samples;
      fo.classes = class_ids;
      fo.progress = !quiet;
      // What decides the pixels; a resumed run must match it (batch size and process count do not matter).
      fo.run = {{"model_config", cfg.to_json()},
                {"weights", random_weights ? nlohmann::json("random") : file_facts(weights)},
                {"vae", vae_path.empty() ? nlohmann::json(vae_desc) : file_facts(vae_path)},
                {"vae_config", vae ? (*vae)->config().to_json() : nlohmann::json(nullptr)},
                {"sampler", p.sampler}, {"steps", p.steps}, {"eta", p.eta}, {"cfg_scale", p.cfg_scale},
                {"cfg_all_channels", p.cfg_all_channels}, {"clip_denoised", p.clip_denoised}, {"seed", p.seed},
                {"rng", p.rng}, {"num_samples", num_samples}, {"classes", class_ids},
                {"device_type", device.is_cuda() ? "cuda" : "cpu"}, {"dtype", moh::dtype_to_string(dtype)}};
      fo.sidecar = {{"model", model_spec.empty() ? cfg.name : model_spec}, {"model_config_origin", src.config_origin},
                    {"settings", moh::dit::params_to_json(p)}, {"torch_version", TORCH_VERSION}};
      const auto r = moh::dit::generate_fid_samples(model, vae ? &*vae : nullptr, p, device, fo, group);
      if (group.is_main())
        std::cout << "FID samples: " << r.total << " in " << out.out_dir << " (" << r.generated << " generated by "
                  << group.world_size() << " process(es), " << r.on_disk << " already there) in " << r.seconds
                  << " s; samples.npz written\n";
      return 0;
    }
    auto stats = moh::dit::generate_images(model, vae ? &*vae : nullptr, p, device,
                                           [&](const moh::dit::GeneratedBatch& b) { writer->add(b, name_of); });

    nlohmann::json classes_json = nlohmann::json::array();
    for (auto c : class_ids) classes_json.push_back({{"index", c}, {"name", moh::dit::dit_class_name(c, src)}});
    const int64_t side = cfg.input_size * (vae ? (*vae)->config().downscale() : 1);
    nlohmann::json sidecar = {
        {"tool", "moh-generate"},
        {"model", model_spec.empty() ? cfg.name : model_spec},
        {"model_config_origin", src.config_origin},
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
    writer->commit(sidecar);
    std::cout << "wrote " << stats.images << " image(s) of " << side << "x" << side << " to " << out.out_dir << " in "
              << stats.seconds << " s (" << writer->files().size() << " files)\n";
    return 0;
  });
}
