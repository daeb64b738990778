// CPU kernels of the fused MoH-DiT elementwise ops of dit/fused_ops.h (SkyworkAI/MoH MoH-DiT/models.py
// `DiTBlock.forward`, `modulate`, `FinalLayer.forward`) for fp32 inference: each row of the residual stream is read
// once for the gated residual, its LayerNorm statistics and the modulation (the LibTorch reference makes three to
// five passes: addcmul, layer_norm, addcmul, plus broadcast copies). Our own code, parallel over rows
// (at::parallel_for), compiled per ISA (common/runtime/cpu_simd.h).
#pragma once
#include <torch/torch.h>

#include <initializer_list>

#include "dit/fused_ops.h"

namespace moh::dit::cpu {

// True when the fp32 CPU kernels below apply: every tensor on the CPU and float32, z_dtype float32, x (and a) of
// shape [B, T, C] with a contiguous last dimension layout (x.is_contiguous()), modulation rows [B, C] with unit stride
// over C, and no tensor that needs a gradient while autograd is on (training keeps the differentiable reference).
bool fused_supported(const torch::Tensor& x, const torch::Tensor* a, std::initializer_list<const torch::Tensor*> vecs,
                     torch::ScalarType z_dtype);

// h = x + gate[:, None] * a (h = x when a is undefined: no copy); z = LN(h) * (1 + scale[:, None]) + shift[:, None].
ResidualAndNormed gated_residual_norm_modulate(const torch::Tensor& x, const torch::Tensor& a,
                                               const torch::Tensor& gate, const torch::Tensor& shift,
                                               const torch::Tensor& scale, double eps);

// x + gate[:, None] * a (the block's closing MLP residual).
torch::Tensor gated_residual(const torch::Tensor& x, const torch::Tensor& gate, const torch::Tensor& a);

}  // namespace moh::dit::cpu
