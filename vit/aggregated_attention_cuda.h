// Torch glue of the fused MoH-ViT aggregated-attention kernel (kernels/moh_vit_aggregated.h). Declared always; defined
// in aggregated_attention_cuda.cpp, compiled only when Torch has CUDA (MOH_WITH_CUDA). Used by
// moh::vit::AggregatedAttention::forward_fused_cuda (vit/attention.cpp); the references are
// AggregatedAttention::forward_reference (LibTorch) and the CPU fused kernel. UNRUN on a GPU so far.
#pragma once
#include <torch/torch.h>

#include "vit/aggregated_attention_inputs.h"

namespace moh::cuda {


// Whether the kernel takes these inputs (CUDA, one device, q/kv/kv_pool of one fp32/bf16/fp16 dtype with unit channel
// stride, d <= 32, window slots + pooled keys <= 256).
bool vit_aggregated_supported(const AggregatedAttentionInputs& in);
// Gated per-head outputs [B, N, C] in q's dtype (every element written).
torch::Tensor vit_aggregated_attention(const AggregatedAttentionInputs& in);
// MOH_VIT_AGG_KERNEL=1 turns the kernel on inside AggregatedAttention::forward; off by default until a GPU run has
// checked it (tests/gpu_vit_aggregated.cpp calls it directly either way).
bool vit_aggregated_kernel_enabled();

}  // namespace moh::cuda
