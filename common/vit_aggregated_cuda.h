// Torch glue of the fused MoH-ViT aggregated-attention kernel (kernels/moh_vit_aggregated.h). Declared always; defined
// in vit_aggregated_cuda.cpp, compiled only when Torch has CUDA (MOH_WITH_CUDA). Used by
// moh::vit::AggregatedAttention::forward_fused_cuda (vit/attention.cpp); the references are
// AggregatedAttention::forward_reference (LibTorch) and the CPU fused kernel. UNRUN on a GPU so far.
#pragma once
#include <torch/torch.h>

namespace moh::cuda {

struct VitAggregatedInputs {
  torch::Tensor q;                 // [B, N, C] q(x), not normalised; row-contiguous channels
  torch::Tensor kv;                // [B, N, 2C] kv(x), same dtype as q
  torch::Tensor kv_pool;           // [B, P, 2C] kv of the pooled tokens, same dtype
  torch::Tensor pool_bias;         // [h, N, P] CPB bias (any float dtype; used in fp32)
  torch::Tensor temperature;       // [h, 1, 1] pre-softplus
  torch::Tensor query_embedding;   // [h, 1, d]
  torch::Tensor seq_scale;         // [N, 1]
  torch::Tensor rpb_local;         // [h, L]
  torch::Tensor learnable_tokens;  // [h, d, L]
  torch::Tensor learnable_bias;    // [h, 1, L]
  torch::Tensor gates;             // [B, N, h]
  int64_t H = 0, W = 0, window_size = 3, num_heads = 1;
};

// Whether the kernel takes these inputs (CUDA, one device, q/kv/kv_pool of one fp32/bf16/fp16 dtype with unit channel
// stride, d <= 32, window slots + pooled keys <= 256).
bool vit_aggregated_supported(const VitAggregatedInputs& in);
// Gated per-head outputs [B, N, C] in q's dtype (every element written).
torch::Tensor vit_aggregated_attention(const VitAggregatedInputs& in);
// MOH_VIT_AGG_KERNEL=1 turns the kernel on inside AggregatedAttention::forward; off by default until a GPU run has
// checked it (tests/gpu_vit_aggregated.cpp calls it directly either way).
bool vit_aggregated_kernel_enabled();

}  // namespace moh::cuda
