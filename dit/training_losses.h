// The DiT training objective for a learned-sigma, epsilon-predicting Gaussian diffusion (what MoH-DiT/train.py
// optimises via `create_diffusion(timestep_respacing="")`): mirrors facebookresearch/DiT (== SkyworkAI/MoH
// MoH-DiT) diffusion/gaussian_diffusion.py `q_sample`, `q_posterior_mean_variance`, `_vb_terms_bpd`,
// `training_losses` (LossType.MSE, ModelVarType.LEARNED_RANGE, ModelMeanType.EPSILON) and
// diffusion/diffusion_utils.py `normal_kl`, `approx_standard_normal_cdf`, `discretized_gaussian_log_likelihood`.
//
//   loss = mean_flat((noise - eps)^2) + vb,   vb = KL(q(x_{t-1}|x_t,x_0) || p(x_{t-1}|x_t)) / ln 2   (t > 0)
//                                                = -log p(x_0 | x_1) / ln 2 (discretized Gaussian)  (t == 0)
// where p's mean uses the DETACHED eps (the VLB only trains the variance channels) and p's log variance is the
// LEARNED_RANGE interpolation between the clipped posterior log variance and log beta.
// Coefficients are gathered from the float64 schedule and cast to float32 (`_extract_into_tensor`).
#pragma once
#include <torch/torch.h>

#include <functional>

#include "dit/diffusion.h"

namespace moh::dit {

// normal_kl: KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)) elementwise, in nats.
torch::Tensor normal_kl(const torch::Tensor& mean1, const torch::Tensor& logvar1, const torch::Tensor& mean2,
                        const torch::Tensor& logvar2);
// The tanh approximation of the standard normal CDF used by the official code.
torch::Tensor approx_standard_normal_cdf(const torch::Tensor& x);
// log-probability (nats) of x in [-1, 1] (uint8 data rescaled) under a Gaussian discretised into 256 bins of
// width 2/255, with open-ended edge bins (x < -0.999, x > 0.999).
torch::Tensor discretized_gaussian_log_likelihood(const torch::Tensor& x, const torch::Tensor& means,
                                                  const torch::Tensor& log_scales);

// Per-sample coefficient arr[t] as float32 [B, 1, ..., 1] broadcastable to `like` (t: [B] respaced indices).
torch::Tensor extract_coef(const std::vector<double>& arr, const torch::Tensor& t, const torch::Tensor& like);

// q_sample: sqrt(abar_t) x0 + sqrt(1 - abar_t) noise.
torch::Tensor q_sample(const GaussianDiffusion& d, const torch::Tensor& x_start, const torch::Tensor& t,
                       const torch::Tensor& noise);

struct TrainingLosses {
  torch::Tensor loss;  // [B] mse + vb (mse alone when the model has no variance channels)
  torch::Tensor mse;   // [B]
  torch::Tensor vb;    // [B] in bits per dim (undefined without learned sigma)
};

// model(x_t, t_original) -> [B, C or 2C, ...]; t: [B] int64 indices into d's (respaced) schedule, mapped through
// d.timestep_map before the call like the official _WrappedModel; noise: standard normal like x_start.
// LEARNED_RANGE needs 2C output channels; FIXED_* variance types take C channels and use the MSE only.
TrainingLosses training_losses(const GaussianDiffusion& d,
                               const std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&)>& model,
                               const torch::Tensor& x_start, const torch::Tensor& t, const torch::Tensor& noise);

}  // namespace moh::dit
