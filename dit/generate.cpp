// Generation pipeline; see dit/generate.h. Mirrors MoH-DiT/sample.py (noise stream, CFG batch,
// decode) and sample_ddp.py (guidance switch, quantisation).
#include "dit/generate.h"

#include <chrono>
#include <cstdio>

#include <ATen/CPUGeneratorImpl.h>

#include "common/error.h"
#include "common/runtime/progress.h"

namespace moh::dit {

namespace {

// A generator on `device` seeded with `seed`, independent of the global default generator: a clone of the
// device's default generator (so no CUDA headers are needed here), then re-seeded. For CUDA this is the same
// Philox stream torch.manual_seed(seed) gives sample.py's randn calls.
torch::Generator seeded_generator(const torch::Device& device, uint64_t seed) {
  auto gen = at::globalContext().defaultGenerator(device).clone();
  gen.set_current_seed(seed);
  return gen;
}

// rng "per-sample": one CPU generator per image, for x_T and every step's noise (see GenerateParams::rng).
struct PerSampleNoise {
  std::vector<torch::Generator> gens;
  std::vector<int64_t> shape;  // one image's [C, L, L]

  torch::Tensor draw() {
    std::vector<torch::Tensor> parts;
    for (auto& g : gens) parts.push_back(torch::randn(shape, g, torch::kFloat32));
    return torch::stack(parts);
  }
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

uint64_t sample_seed(uint64_t seed, int64_t index) {
  uint64_t h = seed + 0x9E3779B97F4A7C15ull;  // splitmix64 of the seed
  h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;
  h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
  h ^= h >> 31;
  return (h + static_cast<uint64_t>(index) * 0x9E3779B1ull) & 0xFFFFFFFFull;
}

nlohmann::json params_to_json(const GenerateParams& p) {
  return {{"sampler", p.sampler},
          {"rng", p.rng},
          {"steps", p.steps},
          {"eta", p.eta},
          {"cfg_scale", p.cfg_scale},
          {"cfg_all_channels", p.cfg_all_channels},
          {"classifier_free_guidance", p.cfg_scale != 1.0},
          {"seed", p.seed},
          {"batch_size", p.batch_size},
          {"clip_denoised", p.clip_denoised},
          {"quantization", "uint8 = trunc(clamp(127.5 * x + 128, 0, 255)) (sample_ddp.py)"}};
}

torch::Tensor quantize_images(const torch::Tensor& images) {
  // sample_ddp.py: torch.clamp(127.5 * samples + 128.0, 0, 255).permute(0, 2, 3, 1).to("cpu", dtype=torch.uint8)
  auto x = images.to(torch::kFloat32);
  return (x * 127.5 + 128.0).clamp(0, 255).permute({0, 2, 3, 1}).to(torch::kCPU, torch::kUInt8).contiguous();  // [b,C,H,W] -> [b,H,W,C]
}

GenerateStats generate_images(DiT& model, Vae* vae, const GenerateParams& p, const torch::Device& device,
                              const std::function<void(const GeneratedBatch&)>& sink) {
  const auto& cfg = model->config();
  const int64_t n_total = static_cast<int64_t>(p.labels.size());
  MOH_CHECK(n_total > 0, "nothing to generate: give at least one class");
  for (auto l : p.labels)
    MOH_CHECK(l >= 0 && l < cfg.num_classes, "class ", l, " is out of range for model ", cfg.name, " (", cfg.num_classes,
              " classes: 0..", cfg.num_classes - 1, ")");
  MOH_CHECK(p.sampler == "ddpm" || p.sampler == "ddim", "--sampler '", p.sampler, "' is not valid; use ddpm or ddim");
  MOH_CHECK(p.steps >= 2 && p.steps <= 1000, "--steps ", p.steps, " is out of range; use 2..1000 (250 is the default "
            "of the official scripts)");
  MOH_CHECK(p.batch_size >= 1, "--batch-size must be at least 1, got ", p.batch_size);
  MOH_CHECK(p.eta >= 0, "--eta must be >= 0, got ", p.eta);
  MOH_CHECK(p.cfg_scale >= 0, "--cfg-scale must be >= 0, got ", p.cfg_scale);
  const bool use_cfg = p.cfg_scale != 1.0;
  MOH_CHECK(!use_cfg || cfg.has_null_class(), "classifier-free guidance needs a model with a null class "
            "(class_dropout_prob > 0); use --cfg-scale 1");
  if (vae) {
    MOH_CHECK((*vae)->config().latent_channels == cfg.in_channels, "the VAE decodes ", (*vae)->config().latent_channels,
              "-channel latents but model ", cfg.name, " produces ", cfg.in_channels, " channels");
  } else {
    MOH_CHECK(cfg.in_channels == 1 || cfg.in_channels == 3, "model ", cfg.name, " works in a ", cfg.in_channels,
              "-channel latent space and needs a VAE to make images (--vae)");
  }
  if (p.initial_noise) MOH_CHECK(n_total <= p.batch_size, "initial_noise is only supported for a single batch");
  MOH_CHECK(p.rng == "stream" || p.rng == "per-sample", "--rng '", p.rng, "' is not valid; use stream or per-sample");
  const bool per_sample = p.rng == "per-sample";
  MOH_CHECK(p.sample_indices.empty() || (per_sample && (int64_t)p.sample_indices.size() == n_total),
            "internal error: sample_indices need rng per-sample and one index per label");
  MOH_CHECK(!per_sample || (!p.initial_noise && !p.step_noise), "internal error: noise hooks need rng stream");

  torch::NoGradGuard no_grad;
  const auto t0 = std::chrono::steady_clock::now();
  const auto diffusion = GaussianDiffusion::create(std::to_string(p.steps), cfg.learn_sigma);
  auto gen = seeded_generator(device, p.seed);
  const int64_t n_batches = (n_total + p.batch_size - 1) / p.batch_size;
  Progress bar("sampling", n_batches * p.steps, "steps", p.progress);
  GenerateStats stats;

  for (int64_t first = 0; first < n_total; first += p.batch_size) {
    const int64_t b = std::min(p.batch_size, n_total - first);
    std::vector<int64_t> labels(p.labels.begin() + first, p.labels.begin() + first + b);
    const auto opts = torch::TensorOptions().device(device).dtype(torch::kFloat32);
    // sample.py order: z first (fp32, on the device), then the per-step draws of the sampler.
    std::vector<int64_t> indices;
    for (int64_t k = first; k < first + b; ++k) indices.push_back(p.sample_indices.empty() ? k : p.sample_indices[k]);
    auto per = std::make_shared<PerSampleNoise>();
    if (per_sample) {
      per->shape = {cfg.in_channels, cfg.input_size, cfg.input_size};
      for (auto idx : indices) per->gens.push_back(at::detail::createCPUGenerator(sample_seed(p.seed, idx)));
    }
    auto z = per_sample ? per->draw().to(opts)
             : p.initial_noise && first == 0
                 ? p.initial_noise->to(opts)
                 : torch::randn({b, cfg.in_channels, cfg.input_size, cfg.input_size}, gen, opts);
    MOH_CHECK(z.sizes() == torch::IntArrayRef({b, cfg.in_channels, cfg.input_size, cfg.input_size}),
              "initial noise has shape ", z.sizes(), ", expected [", b, ", ", cfg.in_channels, ", ", cfg.input_size,
              ", ", cfg.input_size, "]");
    auto y = torch::tensor(labels, torch::TensorOptions().dtype(torch::kInt64)).to(device);
    auto x_T = z;
    if (use_cfg) {  // [cond; null] halves sharing the same z (sample.py)
      x_T = torch::cat({z, z}, 0);
      y = torch::cat({y, torch::full({b}, cfg.null_class(), y.options())}, 0);
    }
    DenoiserOptions dopt;
    dopt.use_cfg = use_cfg;
    dopt.cfg_scale = p.cfg_scale;
    dopt.guide_all_channels = p.cfg_all_channels;
    const auto denoise = make_dit_denoiser(model, y, dopt);
    NoiseFn noise = p.step_noise ? *p.step_noise : randn_noise(gen);
    if (per_sample)  // the [null] half of a guided batch gets the same draws: its result is dropped
      noise = [per](const torch::Tensor& like, int64_t) {
        auto n = per->draw();
        if (like.size(0) == 2 * n.size(0)) n = torch::cat({n, n}, 0);
        return n.to(like.options());
      };
    SamplerOptions so;
    so.on_step = [&bar, &p, b](const SamplerStep& s) {
      if (p.on_x0 && s.out) p.on_x0(s.out->pred_xstart.slice(0, 0, b));  // [b(,null b), C, L, L] -> [b, C, L, L]
      bar.advance();
      if (p.on_step) p.on_step(b);
    };
    so.clip_denoised = p.clip_denoised;

    const auto ts = std::chrono::steady_clock::now();
    auto samples = p.sampler == "ddpm" ? p_sample_loop(diffusion, denoise, x_T, noise, so)
                                       : ddim_sample_loop(diffusion, denoise, x_T, noise, p.eta, so);
    if (use_cfg) samples = samples.slice(0, 0, b);  // samples.chunk(2)[0]: drop the null-class half
    stats.sampling_seconds += seconds_since(ts);
    stats.model_steps += p.steps;

    const auto td = std::chrono::steady_clock::now();
    torch::Tensor images;
    if (vae) {
      const auto& w = (*vae)->post_quant_conv->weight;
      images = (*vae)->decode(samples.to(w.device(), w.scalar_type()));
    } else {
      images = samples;  // pixel-space model: the sample is the image in [-1, 1]
    }
    images = images.to(torch::kCPU, torch::kFloat32);
    stats.decode_seconds += seconds_since(td);

    GeneratedBatch batch;
    batch.first_index = first;
    batch.indices = indices;
    batch.images = images;
    auto u8 = quantize_images(images);
    if (u8.size(3) == 1) u8 = u8.expand({-1, -1, -1, 3}).contiguous();  // [b,H,W,1] -> [b,H,W,3]: gray as RGB
    batch.images_u8 = u8;
    batch.labels = labels;
    sink(batch);
    stats.images += b;
  }
  bar.finish();
  stats.seconds = seconds_since(t0);
  return stats;
}

}  // namespace moh::dit
