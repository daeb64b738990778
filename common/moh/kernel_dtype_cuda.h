// The torch dtype -> kernels::DType mapping shared by the CUDA glue files (common/moh/attention_cuda.cpp,
// vit/aggregated_attention_cuda.cpp, dit/fused_ops_cuda.cpp; compiled only when Torch has CUDA). No official counterpart.
#pragma once
#include <torch/torch.h>

#include "kernels/moh_cuda_check.h"

namespace moh::cuda {

// False for dtypes the kernels do not take (they then fall back to LibTorch).
inline bool kernel_dtype(torch::ScalarType t, kernels::DType* out) {
  switch (t) {
    case torch::kFloat32: *out = kernels::DType::F32; return true;
    case torch::kFloat16: *out = kernels::DType::F16; return true;
    case torch::kBFloat16: *out = kernels::DType::BF16; return true;
    default: return false;
  }
}

}  // namespace moh::cuda
