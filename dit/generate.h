// The class-conditional generation pipeline with MoH-DiT: seeded initial noise, DDPM/DDIM sampling with
// classifier-free guidance, SD-VAE decoding (or none for pixel-space models) and uint8 quantisation. The public
// entry point that also opens the files is dit/generator.h; the output side is dit/generation_output.h.
// Mirrors SkyworkAI/MoH MoH-DiT/sample.py and sample_ddp.py (== facebookresearch/DiT); facts in
// spec/diffusion.md §6-8 and spec/moh-dit.md §2.9.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "dit/diffusion.h"
#include "dit/model.h"
#include "dit/vae.h"

namespace moh::dit {

struct GenerateParams {
  std::vector<int64_t> labels;   // one class index per image, in output order
  std::string sampler = "ddpm";  // "ddpm" (p_sample_loop, what both official scripts use) or "ddim"
  int64_t steps = 250;           // respacing "N" of create_diffusion(str(N))
  double eta = 0.0;              // DDIM only
  // Guidance as sample_ddp.py: cfg_scale != 1 runs the doubled [cond; null] batch through forward_with_cfg;
  // cfg_scale == 1 runs the plain conditional model (no unconditional pass).
  double cfg_scale = 1.5;
  bool cfg_all_channels = false;  // guide all in_channels eps channels instead of the official first 3
  bool clip_denoised = false;     // clamp predicted x_0 to [-1, 1] each step (official scripts: off)
  uint64_t seed = 0;
  int64_t batch_size = 32;        // images per model batch (the model sees 2x with CFG)
  bool progress = true;           // progress bar on stderr (steps/s, ETA)
  // Noise source. "stream": one generator for the whole run, sample.py's draw order (bit-parity with the official
  // single-process script; images depend on the batch size). "per-sample": image k draws its x_T and every step's
  // noise from its own CPU generator seeded by (seed, sample_indices[k]) (sample_seed), so an image depends only
  // on the seed and its global index, never on the batch size or the number of processes (FID mode).
  std::string rng = "stream";
  std::vector<int64_t> sample_indices;  // per-sample: global index of each image (empty: 0, 1, ...)
  std::function<void(int64_t)> on_step;  // after each sampler step, with the batch's image count (job progress)
  // After each sampler step: the step's predicted x_0 of the batch's images [b, C, L, L] (the conditional half under
  // guidance; latents for VAE models), for live previews. Called before on_step.
  std::function<void(const torch::Tensor&)> on_x0;

  // Test hooks for parity with the official scripts: replace the seeded x_T draw of batch 0 / the per-step
  // noise. Unset in normal use.
  std::optional<torch::Tensor> initial_noise;  // [batch, C, L, L] for the (single) batch
  std::optional<NoiseFn> step_noise;
};

// One decoded batch: images [b, H, W, 3] uint8 on CPU (gray models replicated to 3 channels), the float images
// [b, C, H, W] fp32 CPU in [-1, 1] (not clamped; VAE output or the pixel-space model output) and their labels.
struct GeneratedBatch {
  int64_t first_index = 0;
  std::vector<int64_t> indices;  // global index of each image (first_index + i, or the per-sample indices)
  torch::Tensor images_u8;
  torch::Tensor images;
  std::vector<int64_t> labels;
};

struct GenerateStats {
  int64_t images = 0;
  int64_t model_steps = 0;  // sampler steps summed over batches
  double seconds = 0, sampling_seconds = 0, decode_seconds = 0;
};

// Every setting of `p` (labels excluded) as JSON, for the sidecar.
nlohmann::json params_to_json(const GenerateParams& p);

// sample_ddp.py quantisation: uint8 = trunc(clamp(127.5 x + 128, 0, 255)), [b, C, H, W] -> [b, H, W, C] on CPU.
torch::Tensor quantize_images(const torch::Tensor& images);

// Runs the whole pipeline batch by batch, handing each batch to `sink` (so 50k images need not fit in memory).
// `vae` may be null only for pixel-space models (in_channels 1 or 3: the model output IS the image in [-1, 1]).
// Randomness: one torch::Generator on `device`, seeded with params.seed; per batch x_T = randn([b, C, L, L]) then
// one randn draw of the sampler state's shape per step (sample.py's stream for the first batch): same seed +
// device + settings (incl. batch size) -> identical images. Model and VAE must already be on `device`.
GenerateStats generate_images(DiT& model, Vae* vae, const GenerateParams& params, const torch::Device& device,
                              const std::function<void(const GeneratedBatch&)>& sink);

// The 32-bit seed of sample `index`'s CPU generator under rng "per-sample" (distinct for every index below 2^32 of
// one seed: a fixed seed hash plus index times an odd constant, mod 2^32; torch's mt19937 takes 32 bits).
uint64_t sample_seed(uint64_t seed, int64_t index);

}  // namespace moh::dit
