// moh-generate: class-conditional image generation with MoH-DiT (the job of MoH-DiT/sample.py and sample_ddp.py).
// Thin CLI over dit/generator.h: fills dit::GeneratorOptions / GenerateParams / OutputOptions, then either calls
// Generator::generate and writes through dit::GenerationWriter (single-shot mode: all-or-nothing output folder:
// PNGs, optional grid and .npz, JSON sidecar), or, with --num-samples, runs Generator::generate_fid (FID mode,
// sample_ddp.py: any number of ranks under torchrun / srun, resumable).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>

#include "apps/app_main.h"
#include "common/runtime/device.h"
#include "common/dist/cli.h"
#include "common/dist/distributed.h"
#include "common/error.h"
#include "common/runtime/precision.h"
#include "dit/generation_output.h"
#include "dit/generator.h"
#include "dit/model_source.h"


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
                 "--class list), any number of processes; each image depends only on --seed and its index, and images\n"
                 "are computed in fixed chunks of --batch-size consecutive indices (recorded in generation.json and\n"
                 "kept on resume), so the same command gives the same bytes for any process count and on resume (same\n"
                 "build, machine and --threads per process). Single-shot mode stages its folder and\n"
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
    app.add_option("--model", model_spec, "preset (MoH-DiT-XL/2-90, ...; dense: DiT-XL/2, ...) or JSON config file; "
                                          "needed when the weights record no config (official checkpoints), checked "
                                          "against it otherwise");
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
    app.add_option("--batch-size", p.batch_size, "images per batch (default 32; doubled internally with guidance). FID mode: "
                                                "the chunk size of a new folder (images computed together); a resume "
                                                "keeps the folder's recorded chunk size");
    app.add_option("--device", device_spec, "auto|cpu|cuda[:N] (default auto)");
    app.add_option("--dtype", dtype_spec, "auto|fp32|mixed|bf16|fp16 (default auto: mixed on CUDA = bf16 GEMMs with fp32 LayerNorm/router/residual stream, as the official autocast; fp32 on CPU)");
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
    MOH_CHECK(num_per_class >= 1, "--num-per-class must be at least 1, got ", num_per_class);
    moh::dit::GeneratorOptions go;
    go.weights = weights;
    go.model = model_spec;
    go.vae = vae_path;
    go.vae_config = vae_config_spec;
    go.random_weights = random_weights;
    go.random_seed = p.seed;
    go.device = device_spec;
    go.dtype = dtype_spec;
    // What is cheap (config, classes, output folder) is checked before the weights load.
    auto src = moh::dit::Generator::resolve(go);
    MOH_CHECK(!vae_path.empty() || random_weights || src.pixel_space, "--vae is required: model ", src.config.name,
              " generates ", src.config.in_channels, "-channel latents; pass the SD VAE weights (e.g. sd-vae-ft-ema "
              "diffusion_pytorch_model.safetensors)");
    std::vector<int64_t> class_ids;
    try {
      class_ids = moh::dit::resolve_classes(src, classes, /*all_when_empty=*/fid);
    } catch (const moh::Error& e) {
      throw moh::Error(std::string("--class: ") + e.what());
    }
    if (!fid)
      for (auto c : class_ids)
        for (int64_t k = 0; k < num_per_class; ++k) p.labels.push_back(c);
    std::optional<moh::dit::GenerationWriter> writer;
    if (!fid) writer.emplace(out, static_cast<int64_t>(p.labels.size()));
    const auto dev_checked = moh::with_flag("--device", [&] { return moh::dist::rank_device(device_spec, group); });
    moh::with_flag("--dtype", [&] { moh::parse_precision(dtype_spec, dev_checked); });
    moh::dit::Generator gen(go, std::move(src), &group);
    // The model's recorded sampler settings apply unless given on the command line.
    const auto recorded = gen.default_params();
    if (!o_steps->count()) p.steps = recorded.steps;
    if (!o_cfg->count()) p.cfg_scale = recorded.cfg_scale;
    if (!o_all->count()) p.cfg_all_channels = recorded.cfg_all_channels;
    if (!o_clip->count()) p.clip_denoised = recorded.clip_denoised;

    if (fid) {
      moh::dit::FidOptions fo;
      fo.out_dir = out.out_dir;
      fo.num_samples = num_samples;
      fo.classes = class_ids;
      fo.progress = !quiet;
      fo.run = gen.fid_run_facts(p, num_samples, class_ids);  // a resumed run must match these
      fo.sidecar = gen.describe();
      fo.sidecar["settings"] = moh::dit::params_to_json(p);
      fo.sidecar["torch_version"] = TORCH_VERSION;
      const auto r = gen.generate_fid(p, fo, group);
      if (group.is_main() && r.chunk_size != p.batch_size)
        std::cerr << "note: " << out.out_dir << " was started with chunks of " << r.chunk_size
                  << " images (generation.json); they were kept so that the images stay the same (--batch-size "
                  << p.batch_size << " not used)\n";
      if (group.is_main())
        std::cout << "FID samples: " << r.total << " in " << out.out_dir << " (" << r.generated << " generated by "
                  << group.world_size() << " process(es), " << r.on_disk << " already there) in " << r.seconds
                  << " s; samples.npz written\n";
      return 0;
    }
    const auto stats = gen.generate(p, [&](const moh::dit::GeneratedBatch& b) {
      writer->add(b, [&](int64_t label) { return gen.file_stem(label); });
    });

    const int64_t side = gen.image_size();
    writer->commit(gen.generation_sidecar("moh-generate", p, class_ids, num_per_class, stats));
    std::cout << "wrote " << stats.images << " image(s) of " << side << "x" << side << " to " << out.out_dir << " in "
              << stats.seconds << " s (" << writer->files().size() << " files)\n";
    return 0;
  });
}
