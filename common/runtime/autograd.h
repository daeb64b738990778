// Whether an op must keep its differentiable LibTorch path: the forward-only CPU / CUDA kernels (dit/fused_ops*,
// vit/conv_glu_cpu) step aside when autograd is on and any input needs a gradient (training). Our own code.
#pragma once
#include <torch/torch.h>

#include <initializer_list>

namespace moh {

// True when autograd is enabled and one of the defined tensors requires a gradient (null pointers are skipped).
inline bool needs_autograd(std::initializer_list<const torch::Tensor*> tensors) {
  if (!torch::GradMode::is_enabled()) return false;
  for (const auto* t : tensors)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

}  // namespace moh
