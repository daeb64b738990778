// MoH attention core shared by MoH-DiT's MoHAttention and any full-attention layer that gates heads:
// per-head softmax attention, then gate x head output, written head-major into [B, N, h*d] for `proj`
// (spec/moh-attention.md §3). CPU: the LibTorch reference, plus moh_gated_attention_cpu (head skipping, fp32
// inference). CUDA tensors: the sparse-head kernels
// (kernels/moh_attention.cu), which compute only the (token, head) pairs whose gate is non-zero.
#pragma once
#include <torch/torch.h>

namespace moh {

// q, k, v: [B, h, N, d]; gates: [B, N, h]. Returns [B, N, h*d] = concat_h(gates[..., h] * softmax(q k^T * scale) v).
torch::Tensor moh_gated_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                  const torch::Tensor& gates, double scale);

// CPU fp32 inference (no autograd): per (image, head), only the tokens whose gate is non-zero are attended (gather,
// attend, scatter; attention_cpu.cpp), so a routed head costs in proportion to the tokens that selected it;
// unselected pairs are exactly 0. fp32 out; bf16 inputs (mixed precision) are attended in fp32. Other dtypes or
// layouts (a last dimension that is not contiguous) take the reference.
// Callers choose it explicitly (MoH-DiT's MoHAttention does for CPU float32 inference); moh_gated_attention stays the
// bit-exact reference on the CPU.
torch::Tensor moh_gated_attention_cpu(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                      const torch::Tensor& gates, double scale);

// Throws a clear error unless q, k, v are 4-d and gates [B, N, h] matches q (every entry point checks this).
void check_gated_attention_args(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                const torch::Tensor& gates);

// The LibTorch reference on any device (what the official code computes: dense, then multiply by the gates).
torch::Tensor moh_gated_attention_reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                            const torch::Tensor& gates, double scale);

}  // namespace moh
