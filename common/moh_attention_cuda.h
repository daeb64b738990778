// Torch <-> kernel glue for the MoH CUDA kernels. Declared always; defined in moh_attention_cuda.cpp, which is
// compiled only when Torch has CUDA (MOH_WITH_CUDA).
#pragma once
#include <torch/torch.h>

namespace moh::cuda {

// Whether the sparse-head attention kernel handles these tensors (dtype, head dim, layout).
bool sparse_attention_supported(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                const torch::Tensor& gates);
// q, k, v [B, h, N, d] (any strides with unit stride in d), gates [B, N, h] -> [B, N, h*d].
torch::Tensor moh_gated_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                  const torch::Tensor& gates, double scale);

}  // namespace moh::cuda
