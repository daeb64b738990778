// The inputs of TransNeXt's aggregated attention core from the projected q / kv onwards (SkyworkAI/MoH
// MoH-ViT/attention_native.py `AggregatedAttention.forward`; formulas spec/moh-vit.md §3.5): one struct for both fused
// paths, the CPU kernel (vit/aggregated_attention_cpu.h) and the CUDA kernel's glue (vit/aggregated_attention_cuda.h).
#pragma once
#include <torch/torch.h>

#include <cstdint>

namespace moh {

struct AggregatedAttentionInputs {
  torch::Tensor q;                 // [B, N, C] q(x), not normalised, head-major channels (c = head*d + i)
  torch::Tensor kv;                // [B, N, 2C] kv(x): k = channels [0, C), v = [C, 2C); same dtype as q
  torch::Tensor kv_pool;           // [B, P, 2C] kv(norm(pool(gelu(sr(x))))), same channel layout and dtype
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

}  // namespace moh
