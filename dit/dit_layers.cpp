// Small building blocks of the MoH-DiT modules (see dit/dit_layers.h).
#include "dit/dit_layers.h"

#include <algorithm>
#include <cmath>

namespace moh::dit {

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
