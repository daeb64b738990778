// Gaussian diffusion schedules, respacing and samplers (facebookresearch/DiT diffusion/gaussian_diffusion.py,
// diffusion/respace.py, diffusion/__init__.py; identical in SkyworkAI/MoH MoH-DiT/diffusion). spec/diffusion.md.
#include "dit/diffusion.h"

#include <cmath>
#include <set>
#include <sstream>

#include "common/error.h"

namespace moh::dit {
namespace {

// float32 cast of a float64 schedule entry, as _extract_into_tensor(...).float() feeds it to the math. Returned as
// double so that LibTorch's scalar path converts it back to exactly this float value.
double f32(double v) { return static_cast<double>(static_cast<float>(v)); }

// numpy.linspace(start, stop, num) in float64: step = (stop - start) / (num - 1), y_i = i * step + start, and the
// last element set exactly to stop.
std::vector<double> linspace(double start, double stop, int64_t num) {
  std::vector<double> out(num);
  if (num == 1) {
    out[0] = start;
    return out;
  }
  const double step = (stop - start) / static_cast<double>(num - 1);
  for (int64_t i = 0; i < num; ++i) out[i] = static_cast<double>(i) * step + start;
  out[num - 1] = stop;
  return out;
}

// Python's round(): half to even (default FP rounding mode of rint).
int64_t py_round(double v) { return static_cast<int64_t>(std::nearbyint(v)); }

int64_t parse_count(const std::string& s, const std::string& full) {
  MOH_CHECK(!s.empty(), "timestep respacing '", full, "': empty step count (expected e.g. \"250\", \"10,15,20\" or "
            "\"ddim25\")");
  size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  MOH_CHECK(used == s.size() && v > 0, "timestep respacing '", full, "': '", s,
            "' is not a positive step count (expected e.g. \"250\", \"10,15,20\" or \"ddim25\")");
  return v;
}

void check_state(const GaussianDiffusion& d, const torch::Tensor& x, int64_t k, const char* fn) {
  MOH_CHECK(k >= 0 && k < d.num_timesteps, fn, ": step ", k, " outside the schedule [0, ", d.num_timesteps, ")");
  MOH_CHECK(x.dim() >= 2, fn, ": sample must be [B, C, ...], got ", x.sizes());
}

}  // namespace

std::vector<double> linear_beta_schedule(int64_t num_diffusion_timesteps) {
  MOH_CHECK(num_diffusion_timesteps > 0, "diffusion_steps must be positive (got ", num_diffusion_timesteps, ")");
  const double scale = 1000.0 / static_cast<double>(num_diffusion_timesteps);
  return linspace(scale * 0.0001, scale * 0.02, num_diffusion_timesteps);
}

std::vector<int64_t> space_timesteps(int64_t num_timesteps, const std::string& section_counts) {
  if (section_counts.rfind("ddim", 0) == 0) {
    const int64_t desired = parse_count(section_counts.substr(4), section_counts);
    for (int64_t stride = 1; stride < num_timesteps; ++stride) {
      if ((num_timesteps + stride - 1) / stride == desired) {  // len(range(0, num_timesteps, stride))
        std::vector<int64_t> out;
        for (int64_t i = 0; i < num_timesteps; i += stride) out.push_back(i);
        return out;
      }
    }
    throw Error("timestep respacing '" + section_counts + "': cannot create exactly " + std::to_string(desired) +
                " steps with an integer stride over " + std::to_string(num_timesteps) + " diffusion steps");
  }
  std::vector<int64_t> counts;
  std::stringstream ss(section_counts);
  for (std::string part; std::getline(ss, part, ',');) counts.push_back(parse_count(part, section_counts));
  MOH_CHECK(!counts.empty(), "timestep respacing is empty (expected e.g. \"250\")");
  const int64_t nsec = static_cast<int64_t>(counts.size());
  const int64_t size_per = num_timesteps / nsec;
  const int64_t extra = num_timesteps % nsec;
  int64_t start_idx = 0;
  std::set<int64_t> all;
  for (int64_t i = 0; i < nsec; ++i) {
    const int64_t size = size_per + (i < extra ? 1 : 0);
    const int64_t count = counts[i];
    MOH_CHECK(size >= count, "timestep respacing '", section_counts, "': cannot divide a section of ", size,
              " steps into ", count);
    const double frac_stride = count <= 1 ? 1.0 : static_cast<double>(size - 1) / static_cast<double>(count - 1);
    double cur = 0.0;  // accumulated like the official loop (not i * stride)
    for (int64_t j = 0; j < count; ++j) {
      all.insert(start_idx + py_round(cur));
      cur += frac_stride;
    }
    start_idx += size;
  }
  return {all.begin(), all.end()};
}

GaussianDiffusion GaussianDiffusion::from_betas(const std::vector<double>& betas, std::vector<int64_t> timestep_map,
                                                VarianceType variance_type) {
  const int64_t n = static_cast<int64_t>(betas.size());
  MOH_CHECK(n >= 2, "a diffusion schedule needs at least 2 steps (got ", n,
            "): posterior_log_variance_clipped uses entry 1");
  MOH_CHECK((int64_t)timestep_map.size() == n, "timestep_map has ", timestep_map.size(), " entries for ", n, " betas");
  for (double b : betas) MOH_CHECK(b > 0 && b <= 1, "diffusion betas must lie in (0, 1], got ", b);
  GaussianDiffusion d;
  d.num_timesteps = n;
  d.timestep_map = std::move(timestep_map);
  d.variance_type = variance_type;
  d.betas = betas;
  auto resize = [n](std::vector<double>& v) { v.assign(n, 0.0); };
  for (auto* v : {&d.alphas_cumprod, &d.alphas_cumprod_prev, &d.alphas_cumprod_next, &d.sqrt_alphas_cumprod,
                  &d.sqrt_one_minus_alphas_cumprod, &d.sqrt_recip_alphas_cumprod, &d.sqrt_recipm1_alphas_cumprod,
                  &d.posterior_variance, &d.posterior_log_variance_clipped, &d.posterior_mean_coef1,
                  &d.posterior_mean_coef2, &d.log_betas})
    resize(*v);
  double prod = 1.0;
  for (int64_t k = 0; k < n; ++k) {
    prod *= 1.0 - betas[k];  // np.cumprod: sequential
    d.alphas_cumprod[k] = prod;
  }
  for (int64_t k = 0; k < n; ++k) {
    const double ab = d.alphas_cumprod[k];
    const double ab_prev = k == 0 ? 1.0 : d.alphas_cumprod[k - 1];
    const double alpha = 1.0 - betas[k];
    d.alphas_cumprod_prev[k] = ab_prev;
    d.alphas_cumprod_next[k] = k + 1 < n ? d.alphas_cumprod[k + 1] : 0.0;
    d.sqrt_alphas_cumprod[k] = std::sqrt(ab);
    d.sqrt_one_minus_alphas_cumprod[k] = std::sqrt(1.0 - ab);
    d.sqrt_recip_alphas_cumprod[k] = std::sqrt(1.0 / ab);
    d.sqrt_recipm1_alphas_cumprod[k] = std::sqrt(1.0 / ab - 1);
    d.posterior_variance[k] = betas[k] * (1.0 - ab_prev) / (1.0 - ab);
    d.posterior_mean_coef1[k] = betas[k] * std::sqrt(ab_prev) / (1.0 - ab);
    d.posterior_mean_coef2[k] = (1.0 - ab_prev) * std::sqrt(alpha) / (1.0 - ab);
    d.log_betas[k] = std::log(betas[k]);
  }
  for (int64_t k = 0; k < n; ++k)  // log(append(pv[1], pv[1:])): entry 0 replaced by entry 1
    d.posterior_log_variance_clipped[k] = std::log(d.posterior_variance[k == 0 ? 1 : k]);
  return d;
}

GaussianDiffusion GaussianDiffusion::create(const std::string& timestep_respacing, bool learn_sigma,
                                            int64_t diffusion_steps) {
  const auto base_betas = linear_beta_schedule(diffusion_steps);
  const std::string spacing = timestep_respacing.empty() ? std::to_string(diffusion_steps) : timestep_respacing;
  const auto use = space_timesteps(diffusion_steps, spacing);
  // SpacedDiffusion.__init__: beta'_k = 1 - abar_i / abar_last over the kept i, from the base process's abar.
  std::vector<double> new_betas;
  std::set<int64_t> keep(use.begin(), use.end());
  double prod = 1.0, last = 1.0;
  for (int64_t i = 0; i < diffusion_steps; ++i) {
    prod *= 1.0 - base_betas[i];
    if (keep.count(i)) {
      new_betas.push_back(1.0 - prod / last);
      last = prod;
    }
  }
  return from_betas(new_betas, use, learn_sigma ? VarianceType::LearnedRange : VarianceType::FixedLarge);
}

NoiseFn randn_noise(std::optional<torch::Generator> generator) {
  return [generator](const torch::Tensor& like, int64_t) {
    if (generator) return torch::randn(like.sizes(), *generator, like.options());
    return torch::randn_like(like);
  };
}

NoiseFn replay_noise(torch::Tensor noises) {
  return [noises](const torch::Tensor& like, int64_t call) {
    MOH_CHECK(call >= 0 && call < noises.size(0), "replayed noise has ", noises.size(0), " draws, step ", call,
              " needs one more");
    auto z = noises[call];
    MOH_CHECK(z.sizes() == like.sizes(), "replayed noise draw ", call, " has shape ", z.sizes(), ", sample is ",
              like.sizes());
    return z.to(like.device(), like.scalar_type());
  };
}

NoiseFn zero_noise() {
  return [](const torch::Tensor& like, int64_t) { return torch::zeros_like(like); };
}

MeanVariance p_mean_variance(const GaussianDiffusion& d, const DenoiseFn& denoise, const torch::Tensor& x, int64_t k,
                             bool clip_denoised) {
  check_state(d, x, k, "p_mean_variance");
  const int64_t B = x.size(0), C = x.size(1);
  // _WrappedModel: the network sees the original timestep map[k].
  auto t = torch::full({B}, d.timestep_map[k], torch::TensorOptions().dtype(torch::kLong).device(x.device()));
  MeanVariance r;
  r.model_output = denoise(x, t);
  torch::Tensor eps = r.model_output;
  if (d.variance_type == VarianceType::LearnedRange) {
    MOH_CHECK(r.model_output.dim() == x.dim() && r.model_output.size(0) == B && r.model_output.size(1) == 2 * C,
              "the model output ", r.model_output.sizes(), " does not hold eps and variance values for a sample ",
              x.sizes(), " (learn_sigma needs ", 2 * C, " channels)");
    eps = r.model_output.slice(1, 0, C);
    auto v = r.model_output.slice(1, C, 2 * C);
    const double min_log = f32(d.posterior_log_variance_clipped[k]);
    const double max_log = f32(d.log_betas[k]);
    auto frac = (v + 1) / 2;
    r.log_variance = frac * max_log + (1 - frac) * min_log;  // (1 - frac): rsub, as Python's `1 - frac`
  } else {
    MOH_CHECK(r.model_output.sizes() == x.sizes(), "the model output ", r.model_output.sizes(),
              " must match the sample ", x.sizes(), " (fixed variance)");
    const double lv = d.variance_type == VarianceType::FixedSmall
                          ? d.posterior_log_variance_clipped[k]
                          : std::log(k == 0 ? d.posterior_variance[1] : d.betas[k]);
    r.log_variance = torch::full_like(x, f32(lv));
  }
  // _predict_xstart_from_eps: sqrt_recip_abar * x - sqrt_recipm1_abar * eps.
  r.pred_xstart = x * f32(d.sqrt_recip_alphas_cumprod[k]) - eps * f32(d.sqrt_recipm1_alphas_cumprod[k]);
  if (clip_denoised) r.pred_xstart = r.pred_xstart.clamp(-1, 1);
  // q_posterior_mean_variance: coef1 * x0 + coef2 * x.
  r.mean = r.pred_xstart * f32(d.posterior_mean_coef1[k]) + x * f32(d.posterior_mean_coef2[k]);
  return r;
}

namespace {

// The update of p_sample given p_mean_variance's output: x_{k-1} = mean + (k != 0) * exp(0.5 * log_var) * z.
torch::Tensor ddpm_update(const MeanVariance& r, int64_t k, const torch::Tensor& z) {
  return k != 0 ? r.mean + torch::exp(0.5 * r.log_variance) * z : r.mean;  // nonzero_mask: no noise at k == 0
}

// The update of ddim_sample given p_mean_variance's output (its variance is ignored).
torch::Tensor ddim_update(const GaussianDiffusion& d, const MeanVariance& r, const torch::Tensor& x, int64_t k,
                          const torch::Tensor& z, double eta) {
  // _predict_eps_from_xstart: (sqrt_recip_abar * x - x0) / sqrt_recipm1_abar.
  auto eps = (x * f32(d.sqrt_recip_alphas_cumprod[k]) - r.pred_xstart) / f32(d.sqrt_recipm1_alphas_cumprod[k]);
  // Scalar coefficients in float32 arithmetic, as the official float32 tensors compute them.
  const float ab = static_cast<float>(d.alphas_cumprod[k]);
  const float ab_prev = static_cast<float>(d.alphas_cumprod_prev[k]);
  const float sigma =
      static_cast<float>(eta) * std::sqrt((1.0f - ab_prev) / (1.0f - ab)) * std::sqrt(1.0f - ab / ab_prev);
  const float c_x0 = std::sqrt(ab_prev);
  const float c_eps = std::sqrt(1.0f - ab_prev - sigma * sigma);
  auto mean_pred = r.pred_xstart * static_cast<double>(c_x0) + eps * static_cast<double>(c_eps);
  return k != 0 ? mean_pred + z * static_cast<double>(sigma) : mean_pred;
}

// Shared loop of p_sample_loop / ddim_sample_loop: model call, then the noise draw (official order), then update.
template <typename Update>
torch::Tensor sample_loop(const GaussianDiffusion& d, const DenoiseFn& denoise, const torch::Tensor& x_T,
                          const NoiseFn& noise, const SamplerOptions& options, Update update) {
  torch::NoGradGuard no_grad;
  auto x = x_T;
  for (int64_t call = 0; call < d.num_timesteps; ++call) {
    const int64_t k = d.num_timesteps - 1 - call;  // indices = range(N)[::-1]
    auto r = p_mean_variance(d, denoise, x, k, options.clip_denoised);
    auto z = noise(x, call);  // th.randn_like(x), drawn every step
    x = update(r, x, k, z);
    if (options.on_step) options.on_step({call, k, d.timestep_map[k], d.num_timesteps, &r, x});
  }
  return x;
}

}  // namespace

torch::Tensor p_sample(const GaussianDiffusion& d, const DenoiseFn& denoise, const torch::Tensor& x, int64_t k,
                       const torch::Tensor& noise, bool clip_denoised, MeanVariance* out) {
  auto r = p_mean_variance(d, denoise, x, k, clip_denoised);
  auto sample = ddpm_update(r, k, noise);
  if (out) *out = std::move(r);
  return sample;
}

torch::Tensor p_sample_loop(const GaussianDiffusion& d, const DenoiseFn& denoise, const torch::Tensor& x_T,
                            const NoiseFn& noise, const SamplerOptions& options) {
  return sample_loop(d, denoise, x_T, noise, options,
                     [](const MeanVariance& r, const torch::Tensor&, int64_t k, const torch::Tensor& z) {
                       return ddpm_update(r, k, z);
                     });
}

torch::Tensor ddim_sample(const GaussianDiffusion& d, const DenoiseFn& denoise, const torch::Tensor& x, int64_t k,
                          const torch::Tensor& noise, double eta, bool clip_denoised, MeanVariance* out) {
  auto r = p_mean_variance(d, denoise, x, k, clip_denoised);
  auto sample = ddim_update(d, r, x, k, noise, eta);
  if (out) *out = std::move(r);
  return sample;
}

torch::Tensor ddim_sample_loop(const GaussianDiffusion& d, const DenoiseFn& denoise, const torch::Tensor& x_T,
                               const NoiseFn& noise, double eta, const SamplerOptions& options) {
  return sample_loop(d, denoise, x_T, noise, options,
                     [&d, eta](const MeanVariance& r, const torch::Tensor& x, int64_t k, const torch::Tensor& z) {
                       return ddim_update(d, r, x, k, z, eta);
                     });
}

}  // namespace moh::dit
