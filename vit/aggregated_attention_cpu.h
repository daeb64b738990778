// Fused CPU fp32 inference kernel for TransNeXt's aggregated pixel-focused attention with MoH gates: the core of
// SkyworkAI/MoH MoH-ViT/attention_native.py `AggregatedAttention.forward` from the projected q / kv onwards
// (sliding ws x ws window + pooled keys in one softmax, learnable tokens, position biases, gate per head), computed
// per pixel without materialising the unfolded [B, h, N, d, L] windows. Formulas: spec/moh-vit.md §3.5. Routed
// heads whose gate is exactly 0 for a pixel are skipped (their output is 0, as 0 * finite is in the reference).
// No autograd: callers use it only when gradients are off (vit/attention.cpp keeps the LibTorch path otherwise).
#pragma once
#include <torch/torch.h>

namespace moh::vit {

struct AggregatedAttentionCpuInputs {
  torch::Tensor q;                 // [B, N, C] q(x), not normalised, head-major channels (c = head*d + i)
  torch::Tensor kv;                // [B, N, 2C] kv(x): k = channels [0, C), v = [C, 2C)
  torch::Tensor kv_pool;           // [B, P, 2C] kv(norm(pool(gelu(sr(x))))), same channel layout
  torch::Tensor pool_bias;         // [h, N, P] CPB bias of the pooled keys
  torch::Tensor temperature;       // [h, 1, 1] pre-softplus
  torch::Tensor query_embedding;   // [h, 1, d]
  torch::Tensor seq_scale;         // [N, 1] ln(valid window slots + P)
  torch::Tensor rpb_local;         // [h, L] relative_pos_bias_local
  torch::Tensor learnable_tokens;  // [h, d, L]
  torch::Tensor learnable_bias;    // [h, 1, L]
  torch::Tensor gates;             // [B, N, h] MoH gates (0 for unselected routed heads)
  int64_t H = 0, W = 0, window_size = 3, num_heads = 1;
};

// True when the fused kernel can run x: CPU, float32, and x needs no gradient (callers also check their parameters).
bool aggregated_attention_cpu_applicable(const torch::Tensor& x);

// Returns the gated per-head outputs written head-major as [B, N, C] (the input of `proj`).
torch::Tensor aggregated_attention_cpu(const AggregatedAttentionCpuInputs& in);

}  // namespace moh::vit
