// Small building blocks of the MoH-DiT modules (see dit/dit_layers.h).
#include "dit/dit_layers.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>

#include "common/runtime/autograd.h"
#include "common/runtime/cpu_simd.h"

namespace moh::dit {
namespace {

// In-place tanh-GELU over [begin, end): tanh(u) = sign(u) (1 - e) / (1 + e) with e = exp(-2|u|) <= 1.
MOH_CPU_CLONES void gelu_tanh_range(float* x, int64_t begin, int64_t end) {
  const float kBeta = 0.7978845608028654f, kKappa = 0.044715f;  // sqrt(2/pi), as ATen
  for (int64_t i = begin; i < end; ++i) {
    const float v = x[i];
    const float u = kBeta * (v + kKappa * v * v * v);
    const float au = u < 0.f ? -u : u;
    const float e = simd::exp_nonpositive(-2.f * au);
    const float t = (1.f - e) / (1.f + e);
    x[i] = 0.5f * v * (1.f + (u < 0.f ? -t : t));
  }
}

}  // namespace

torch::Tensor gelu_tanh_inference(torch::Tensor x) {
  if (needs_autograd({&x}) || !x.device().is_cpu() || x.scalar_type() != torch::kFloat32 || !x.is_contiguous())
    return torch::gelu(x, "tanh");
  float* p = x.data_ptr<float>();
  at::parallel_for(0, x.numel(), 16384, [&](int64_t b, int64_t e) { gelu_tanh_range(p, b, e); });
  return x;
}

LinearImpl::LinearImpl(int64_t in_features, int64_t out_features, bool has_bias) {
  // Inference-only toolkit: parameters never need gradients; torch::empty leaves memory untouched until loaded.
  weight = register_parameter("weight", torch::empty({out_features, in_features}), /*requires_grad=*/false);
  if (has_bias) bias = register_parameter("bias", torch::empty({out_features}), /*requires_grad=*/false);
}

void init_random_weights(torch::nn::Module& module, uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto gen = torch::make_generator<at::CPUGeneratorImpl>(seed);
  for (auto& p : module.named_parameters(true)) {
    auto& t = p.value();
    if (!t.is_floating_point()) continue;
    const std::string& name = p.key();
    if (name == "pos_embed" || (name.size() > 10 && name.compare(name.size() - 10, 10, ".pos_embed") == 0)) continue;
    double std = 0.05;
    if (t.dim() >= 2) std = std::clamp(1.0 / std::sqrt(static_cast<double>(t.numel() / t.size(0))), 0.02, 0.2);
    auto r = torch::randn(t.sizes(), gen, torch::TensorOptions().dtype(torch::kFloat32)) * std;
    t.copy_(r.to(t.device(), t.scalar_type()));
  }
}

}  // namespace moh::dit
