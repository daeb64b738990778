// DiT learned-sigma training objective (see training_losses.h).
#include "dit/training_losses.h"

#include <cmath>

#include "common/error.h"

namespace moh::dit {
namespace {
torch::Tensor mean_flat(const torch::Tensor& x) {
  std::vector<int64_t> dims;
  for (int64_t i = 1; i < x.dim(); ++i) dims.push_back(i);
  return x.mean(dims);  // [B, ...] -> [B]
}
}  // namespace

torch::Tensor normal_kl(const torch::Tensor& mean1, const torch::Tensor& logvar1, const torch::Tensor& mean2,
                        const torch::Tensor& logvar2) {
  return 0.5 * (-1.0 + logvar2 - logvar1 + torch::exp(logvar1 - logvar2) +
                (mean1 - mean2).pow(2) * torch::exp(-logvar2));
}

torch::Tensor approx_standard_normal_cdf(const torch::Tensor& x) {
  return 0.5 * (1.0 + torch::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * torch::pow(x, 3))));
}

torch::Tensor discretized_gaussian_log_likelihood(const torch::Tensor& x, const torch::Tensor& means,
                                                  const torch::Tensor& log_scales) {
  MOH_CHECK(x.sizes() == means.sizes() && x.sizes() == log_scales.sizes(),
            "discretized_gaussian_log_likelihood: x, means and log_scales must share one shape");
  auto centered = x - means;
  auto inv_stdv = torch::exp(-log_scales);
  auto cdf_plus = approx_standard_normal_cdf(inv_stdv * (centered + 1.0 / 255.0));
  auto cdf_min = approx_standard_normal_cdf(inv_stdv * (centered - 1.0 / 255.0));
  auto log_cdf_plus = torch::log(cdf_plus.clamp_min(1e-12));
  auto log_one_minus_cdf_min = torch::log((1.0 - cdf_min).clamp_min(1e-12));
  auto log_cdf_delta = torch::log((cdf_plus - cdf_min).clamp_min(1e-12));
  return torch::where(x < -0.999, log_cdf_plus, torch::where(x > 0.999, log_one_minus_cdf_min, log_cdf_delta));
}

torch::Tensor extract_coef(const std::vector<double>& arr, const torch::Tensor& t, const torch::Tensor& like) {
  MOH_CHECK(!arr.empty(), "diffusion schedule array is empty");
  auto table = torch::tensor(arr, torch::kFloat64);
  auto idx = t.to(torch::kCPU, torch::kLong);
  MOH_CHECK(idx.min().item<int64_t>() >= 0 && idx.max().item<int64_t>() < int64_t(arr.size()),
            "diffusion timestep out of range [0, ", arr.size(), ")");
  std::vector<int64_t> shape(size_t(like.dim()), 1);
  shape[0] = idx.size(0);
  // float64 gather, then float32 (as the official _extract_into_tensor), shaped [B, 1, ..., 1].
  return table.index_select(0, idx).to(torch::kFloat32).view(shape).to(like.device());
}

torch::Tensor q_sample(const GaussianDiffusion& d, const torch::Tensor& x_start, const torch::Tensor& t,
                       const torch::Tensor& noise) {
  return extract_coef(d.sqrt_alphas_cumprod, t, x_start) * x_start +
         extract_coef(d.sqrt_one_minus_alphas_cumprod, t, x_start) * noise;
}

TrainingLosses training_losses(const GaussianDiffusion& d,
                               const std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&)>& model,
                               const torch::Tensor& x_start, const torch::Tensor& t, const torch::Tensor& noise) {
  MOH_CHECK(noise.sizes() == x_start.sizes(), "training_losses: noise shape ", noise.sizes(), " != x_start shape ",
            x_start.sizes());
  MOH_CHECK(t.dim() == 1 && t.size(0) == x_start.size(0), "training_losses: t must be [B]");
  auto x_t = q_sample(d, x_start, t, noise);
  // _WrappedModel: respaced index -> original timestep.
  auto map = torch::tensor(d.timestep_map, torch::kLong);
  auto t_orig = map.index_select(0, t.to(torch::kCPU, torch::kLong)).to(x_start.device());
  auto out = model(x_t, t_orig).to(x_start.scalar_type());
  const int64_t C = x_start.size(1);

  TrainingLosses r;
  torch::Tensor eps = out;
  if (d.variance_type == VarianceType::LearnedRange) {
    MOH_CHECK(out.size(1) == 2 * C, "training_losses: a learned-sigma model must output ", 2 * C,
              " channels (eps + variance values), got ", out.size(1));
    eps = out.narrow(1, 0, C);
    auto var_values = out.narrow(1, C, C);
    // The VLB trains only the variance: eps enters detached (official frozen_out).
    auto eps_frozen = eps.detach();
    auto coef1 = extract_coef(d.posterior_mean_coef1, t, x_t), coef2 = extract_coef(d.posterior_mean_coef2, t, x_t);
    auto true_mean = coef1 * x_start + coef2 * x_t;
    auto min_log = extract_coef(d.posterior_log_variance_clipped, t, x_t);
    auto max_log = extract_coef(d.log_betas, t, x_t);
    auto frac = (var_values + 1.0) / 2.0;
    auto model_log_var = frac * max_log + (1.0 - frac) * min_log;
    auto pred_x0 = extract_coef(d.sqrt_recip_alphas_cumprod, t, x_t) * x_t -
                   extract_coef(d.sqrt_recipm1_alphas_cumprod, t, x_t) * eps_frozen;
    auto model_mean = coef1 * pred_x0 + coef2 * x_t;
    auto kl = mean_flat(normal_kl(true_mean, min_log.expand_as(x_t), model_mean, model_log_var)) / std::log(2.0);
    auto nll = mean_flat(-discretized_gaussian_log_likelihood(x_start, model_mean, 0.5 * model_log_var)) / std::log(2.0);
    r.vb = torch::where(t.to(x_start.device()) == 0, nll, kl);
  } else {
    MOH_CHECK(out.size(1) == C, "training_losses: a fixed-variance model must output ", C, " channels, got ",
              out.size(1));
  }
  r.mse = mean_flat((noise - eps).pow(2));
  r.loss = r.vb.defined() ? r.mse + r.vb : r.mse;
  return r;
}

}  // namespace moh::dit
