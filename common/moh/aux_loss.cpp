// MoH load-balancing loss (see aux_loss.h).
#include "common/moh/aux_loss.h"

#include "common/error.h"

namespace moh {

torch::Tensor moh_layer_aux_loss(const torch::Tensor& router_probs, const torch::Tensor& topk_indices) {
  MOH_CHECK(router_probs.defined() && topk_indices.defined(),
            "MoH aux loss: router probabilities and top-k indices are both required (the layer has no routed heads?)");
  MOH_CHECK(router_probs.dim() >= 2 && topk_indices.dim() >= 2, "MoH aux loss: expected router_probs [T, E] and "
            "topk_indices [T, k], got ", router_probs.sizes(), " and ", topk_indices.sizes());
  const int64_t E = router_probs.size(-1);
  auto probs = router_probs.reshape({-1, E}).to(torch::kFloat32);  // [..., E] -> [T, E]
  auto idx = topk_indices.reshape({-1, topk_indices.size(-1)}).to(torch::kLong);  // [..., k] -> [T, k]
  MOH_CHECK(idx.size(0) == probs.size(0), "MoH aux loss: ", probs.size(0), " router rows but ", idx.size(0),
            " top-k rows");
  // one_hot(indices).sum(1) as the official code: a token contributes once per selected candidate.
  auto mask = torch::zeros_like(probs).scatter_add_(1, idx, torch::ones_like(idx, probs.options()));  // [T, E]
  auto me = probs.mean(0);  // [E]
  auto ce = mask.mean(0);   // [E], no gradient
  return (me * ce).mean() * double(E * E);
}

torch::Tensor MoHAuxLoss::total(double coeff, const torch::Device& device) const {
  if (layers_.empty()) return torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat32).device(device));
  return torch::stack(layers_).sum() * (coeff / double(layers_.size()));
}

}  // namespace moh
