// MoH router load-balancing loss (training only; spec/moh-attention.md §5). Mirrors the `if self.training:` block
// of SkyworkAI/MoH MoH-DiT/models.py `MoHAttention.forward` and MoH-ViT/attention*.py, and the reduction in
// MoH-DiT/train.py (`--moh-loss-coeff` 0.01) / MoH-ViT/engine.py (0.01):
//   per layer with routed heads: me = mean_tokens(softmax(wg u)), ce = mean_tokens(top-k mask),
//                                l_aux = mean_e(me_e * ce_e) * E^2
//   total = coeff * sum(l_aux) / max(#layers, 1)
// Gradients flow through the router probabilities only (the top-k mask is piecewise constant).
#pragma once
#include <torch/torch.h>

#include <vector>

namespace moh {

// One layer's l_aux. router_probs: [T, E] softmax over routed candidates (any leading shape is flattened to
// [-1, E]); topk_indices: [T, k] int64 indices into E. Returns a 0-dim float32 tensor (router_probs' device).
torch::Tensor moh_layer_aux_loss(const torch::Tensor& router_probs, const torch::Tensor& topk_indices);

// Collects the per-layer terms of one training forward and reduces them like the official scripts.
class MoHAuxLoss {
 public:
  void clear() { layers_.clear(); }
  void add(const torch::Tensor& router_probs, const torch::Tensor& topk_indices) {
    layers_.push_back(moh_layer_aux_loss(router_probs, topk_indices));
  }
  size_t size() const { return layers_.size(); }
  const std::vector<torch::Tensor>& layers() const { return layers_; }
  // coeff * mean over layers; a 0-dim zero on `device` when no layer routes (all-shared configs).
  torch::Tensor total(double coeff = 0.01, const torch::Device& device = torch::kCPU) const;

 private:
  std::vector<torch::Tensor> layers_;
};

}  // namespace moh
