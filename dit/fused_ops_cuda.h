// Torch glue of the fused MoH-DiT elementwise kernel (kernels/moh_dit_fused.h): gated residual + LayerNorm + adaLN
// modulate. Declared always; defined in fused_ops_cuda.cpp, compiled only when Torch has CUDA (MOH_WITH_CUDA). The
// reference is moh::dit::gated_residual_norm_modulate_reference (dit/fused_ops.h). UNRUN on a GPU so far.
#pragma once
#include <torch/torch.h>

#include <initializer_list>

namespace moh::cuda {

// MOH_DIT_FUSED_KERNEL=1 turns the kernel on inside moh::dit::gated_residual_norm_modulate / layer_norm_modulate;
// off by default until a GPU run has checked it (tests/gpu_dit_fused.cpp calls it directly either way).
bool dit_fused_kernel_enabled();

// Whether the kernel takes these tensors: CUDA, one device, x [B, T, C] fp32/bf16/fp16 with a unit column stride,
// a (optional) [B, T, C], every modulation vector [B, C] with a unit column stride, one dtype for a and the vectors
// (equal to x's or with fp32 x).
bool dit_fused_supported(const torch::Tensor& x, const torch::Tensor* a, std::initializer_list<const torch::Tensor*> vecs);

struct DiTFusedResult {
  torch::Tensor h, z;  // h undefined when a is undefined
};
// a and gate undefined: z = modulate(LN(x)). Otherwise h = x + gate * a and z = modulate(LN(h)). z in z_dtype, which
// must be the dtype of the modulation vectors.
DiTFusedResult dit_gated_residual_norm_modulate(const torch::Tensor& x, const torch::Tensor& a,
                                                const torch::Tensor& gate, const torch::Tensor& shift,
                                                const torch::Tensor& scale, torch::ScalarType z_dtype, double eps);

}  // namespace moh::cuda
