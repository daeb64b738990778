// Gaussian diffusion for sampling MoH-DiT / DiT: linear beta schedule, timestep respacing, and the DDPM and DDIM
// samplers as free functions over a denoise callback. Mirrors facebookresearch/DiT (== SkyworkAI/MoH MoH-DiT)
// diffusion/__init__.py (`create_diffusion`), diffusion/gaussian_diffusion.py (`get_named_beta_schedule`,
// `GaussianDiffusion`, `p_mean_variance`, `p_sample(_loop)`, `ddim_sample(_loop)`) and diffusion/respace.py
// (`space_timesteps`, `SpacedDiffusion`, `_WrappedModel`). Facts: spec/diffusion.md.
//
// Numerics as the official code: schedule arrays in float64; each coefficient is cast to float32 when used and
// all tensor arithmetic happens in the sample's dtype (float32 in the official scripts: keep x in fp32 and let
// the denoise callback cast to the model's dtype). Variance type LEARNED_RANGE (learn_sigma) or FIXED_SMALL /
// FIXED_LARGE when the model has no variance channels; mean type EPSILON.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace moh::dit {

// gaussian_diffusion.get_named_beta_schedule("linear", n): numpy linspace(1e-4*1000/n, 0.02*1000/n, n) in double.
std::vector<double> linear_beta_schedule(int64_t num_diffusion_timesteps);

// respace.space_timesteps(num_timesteps, section_counts): "250", "10,15,20" (sections) or "ddim25". Python
// round-half-even on the float stride, accumulated in double. Returns the kept original indices, ascending.
// Throws moh::Error for strings it cannot parse or counts it cannot satisfy.
std::vector<int64_t> space_timesteps(int64_t num_timesteps, const std::string& section_counts);

enum class VarianceType { LearnedRange, FixedSmall, FixedLarge };

// The respaced process (SpacedDiffusion): every array has one entry per respaced step k = 0..N-1.
struct GaussianDiffusion {
  int64_t num_timesteps = 0;           // N (respaced)
  int64_t original_num_steps = 1000;   // diffusion_steps
  std::vector<int64_t> timestep_map;   // k -> original timestep fed to the model
  VarianceType variance_type = VarianceType::LearnedRange;
  std::vector<double> betas, alphas_cumprod, alphas_cumprod_prev, alphas_cumprod_next, sqrt_alphas_cumprod,
      sqrt_one_minus_alphas_cumprod, sqrt_recip_alphas_cumprod, sqrt_recipm1_alphas_cumprod, posterior_variance,
      posterior_log_variance_clipped, posterior_mean_coef1, posterior_mean_coef2, log_betas;

  // create_diffusion(timestep_respacing, noise_schedule="linear", learn_sigma, diffusion_steps): respacing
  // "" or "250" etc. ("" = all diffusion_steps). learn_sigma false -> FIXED_LARGE, like the official default
  // (sigma_small=False). Throws moh::Error for N < 2 (posterior_log_variance_clipped needs two entries).
  static GaussianDiffusion create(const std::string& timestep_respacing = "250", bool learn_sigma = true,
                                  int64_t diffusion_steps = 1000);
  // Builds the derived arrays from betas (GaussianDiffusion.__init__); used by create().
  static GaussianDiffusion from_betas(const std::vector<double>& betas, std::vector<int64_t> timestep_map,
                                      VarianceType variance_type);
};

// Denoiser: x [B, C, H, W] and the ORIGINAL timesteps t_original [B] int64 (timestep_map already applied) ->
// model output [B, C or 2C, H, W] (eps, then variance values when LEARNED_RANGE).
using DenoiseFn = std::function<torch::Tensor(const torch::Tensor& x, const torch::Tensor& t_original)>;
// Noise source: called once per step, in step order (call = 0..N-1), with the current sample (for shape,
// dtype, device); returns standard normal noise shaped like it. Called at every step, including the last one
// where the noise is masked out (RNG-stream parity with the official th.randn_like calls).
using NoiseFn = std::function<torch::Tensor(const torch::Tensor& like, int64_t call)>;

// th.randn_like equivalent drawing from `generator` (default generator of x's device when absent).
NoiseFn randn_noise(std::optional<torch::Generator> generator = std::nullopt);
// Replays stored draws: noises [N, ...] -> noises[call] (moved to the sample's device/dtype).
NoiseFn replay_noise(torch::Tensor noises);
// All-zero noise (DDIM with eta = 0 does not need draws; also for deterministic checks).
NoiseFn zero_noise();

// p_mean_variance output for one step.
struct MeanVariance {
  torch::Tensor model_output;   // raw denoiser output
  torch::Tensor mean;           // posterior mean
  torch::Tensor log_variance;   // model log variance (same shape as x)
  torch::Tensor pred_xstart;    // predicted x_0 (clamped to [-1, 1] when clip_denoised)
};

// gaussian_diffusion.GaussianDiffusion.p_mean_variance at respaced step k (LEARNED_RANGE / FIXED_*, EPSILON).
MeanVariance p_mean_variance(const GaussianDiffusion& d, const DenoiseFn& denoise, const torch::Tensor& x,
                             int64_t k, bool clip_denoised = false);

// What a sampler reports after each step (progress bars, parity dumps).
struct SamplerStep {
  int64_t call = 0;         // 0..N-1 in execution order
  int64_t k = 0;            // respaced index (N-1-call)
  int64_t t_original = 0;   // timestep_map[k]
  int64_t total = 0;        // N
  const MeanVariance* out = nullptr;  // model output, mean, log variance, pred_xstart of this step
  torch::Tensor sample;     // x after the step
};
using StepCallback = std::function<void(const SamplerStep&)>;

struct SamplerOptions {
  bool clip_denoised = false;  // both official sample scripts pass False
  StepCallback on_step;        // optional, called after every step
};

// gaussian_diffusion.p_sample: x_{k-1} = mean + (k != 0) * exp(0.5 * log_var) * noise.
torch::Tensor p_sample(const GaussianDiffusion& d, const DenoiseFn& denoise, const torch::Tensor& x, int64_t k,
                       const torch::Tensor& noise, bool clip_denoised = false, MeanVariance* out = nullptr);
// gaussian_diffusion.p_sample_loop (ancestral DDPM, what sample.py uses), from x_T down to x_0.
torch::Tensor p_sample_loop(const GaussianDiffusion& d, const DenoiseFn& denoise, const torch::Tensor& x_T,
                            const NoiseFn& noise, const SamplerOptions& options = {});

// gaussian_diffusion.ddim_sample (one step with eta).
torch::Tensor ddim_sample(const GaussianDiffusion& d, const DenoiseFn& denoise, const torch::Tensor& x, int64_t k,
                          const torch::Tensor& noise, double eta = 0.0, bool clip_denoised = false,
                          MeanVariance* out = nullptr);
// gaussian_diffusion.ddim_sample_loop. The noise source is still called every step (eta = 0 multiplies by 0).
torch::Tensor ddim_sample_loop(const GaussianDiffusion& d, const DenoiseFn& denoise, const torch::Tensor& x_T,
                               const NoiseFn& noise, double eta = 0.0, const SamplerOptions& options = {});

}  // namespace moh::dit
