// Fused elementwise ops of the MoH-DiT block (SkyworkAI/MoH MoH-DiT/models.py `DiTBlock.forward`, `modulate`,
// `FinalLayer.forward`): the LibTorch reference of each (training, other dtypes), the fp32 CPU inference kernels
// (dit/fused_ops_cpu.h: one pass per row), and the CUDA kernel (kernels/moh_dit_fused.cu through
// dit/fused_ops_cuda.h) for CUDA tensors when this build has it and MOH_DIT_FUSED_KERNEL=1 (off by default: the
// kernel has not run on a GPU yet).
//
//   layer_norm_modulate(x, shift, scale)                z = LN(x) * (1 + scale[:, None]) + shift[:, None]
//   gated_residual_norm_modulate(x, a, gate, shift, scale)
//                                                       h = x + gate[:, None] * a;  z = LN(h) * (1 + scale) + shift
//   gated_residual(x, gate, a)                          x + gate[:, None] * a  (the block's MLP residual)
// LN: no affine, eps 1e-6 (norm1, norm2, norm_final). x / h are the residual stream (fp32 under the mixed precision
// policy, common/runtime/precision.h); a, gate, shift and scale come from GEMMs (bf16 under mixed); z feeds the next GEMM and
// is returned in `z_dtype`. The DiT block calls these, so the golden tests run the references end to end.
#pragma once
#include <torch/torch.h>

namespace moh::dit {

inline constexpr double kDiTNormEps = 1e-6;

struct ResidualAndNormed {
  torch::Tensor h;  // [B, T, C] new residual stream (type promotion of x and gate * a)
  torch::Tensor z;  // [B, T, C] modulated LayerNorm of h, in z_dtype
};

// x [B, T, C]; shift, scale [B, C] (any row stride, unit stride over C: chunks of the adaLN output).
torch::Tensor layer_norm_modulate(const torch::Tensor& x, const torch::Tensor& shift, const torch::Tensor& scale,
                                  torch::ScalarType z_dtype);
// x, a [B, T, C]; gate, shift, scale [B, C].
ResidualAndNormed gated_residual_norm_modulate(const torch::Tensor& x, const torch::Tensor& a,
                                               const torch::Tensor& gate, const torch::Tensor& shift,
                                               const torch::Tensor& scale, torch::ScalarType z_dtype);

// x, a [B, T, C]; gate [B, C].
torch::Tensor gated_residual(const torch::Tensor& x, const torch::Tensor& gate, const torch::Tensor& a);

// The LibTorch references (the official op order: LayerNorm, then x * (1 + scale) + shift; x + gate * a).
torch::Tensor layer_norm_modulate_reference(const torch::Tensor& x, const torch::Tensor& shift,
                                            const torch::Tensor& scale, torch::ScalarType z_dtype);
ResidualAndNormed gated_residual_norm_modulate_reference(const torch::Tensor& x, const torch::Tensor& a,
                                                         const torch::Tensor& gate, const torch::Tensor& shift,
                                                         const torch::Tensor& scale, torch::ScalarType z_dtype);
torch::Tensor gated_residual_reference(const torch::Tensor& x, const torch::Tensor& gate, const torch::Tensor& a);

// fc1 -> GELU(tanh) of timm Mlp, the op a GEMM epilogue would fuse (UNRUN on a GPU: no fused CUDA path yet; this is
// the reference the epilogue must match). x [..., in], w [hidden, in], b [hidden].
torch::Tensor fc1_gelu_reference(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b);

// Batched adaLN: every DiT block's adaLN Linear reads the same SiLU(c) [B, C], so the per-block weights [6C, C] can be
// stacked into one [n*6C, C] GEMM. Returns per block the [B, 6C] modulation rows (views of one output).
torch::Tensor stack_adaln_weights(const std::vector<torch::Tensor>& weights);  // n x [6C, C] -> [n*6C, C]
torch::Tensor stack_adaln_biases(const std::vector<torch::Tensor>& biases);    // n x [6C]    -> [n*6C]
std::vector<torch::Tensor> batched_adaln(const torch::Tensor& silu_c, const torch::Tensor& w_stacked,
                                         const torch::Tensor& b_stacked, int64_t blocks);

}  // namespace moh::dit
