// Torch-free API of the fused MoH-ViT aggregated-attention kernel: TransNeXt's pixel-focused attention (3x3 sliding
// window + pooled keys in one softmax, learnable tokens, local position bias, CPB bias of the pooled keys) with the MoH
// gate per (pixel, head), skipping the (pixel, head) pairs whose gate is exactly 0. Mirrors SkyworkAI/MoH
// MoH-ViT/attention_native.py `AggregatedAttention.forward` from the q / kv projections on (spec/moh-vit.md §3.5,
// spec/moh-attention.md §7); the unfolded [B, h, N, d, L] windows are never formed. References: the LibTorch
// AggregatedAttention::forward_reference and the CPU fused kernel (vit/aggregated_attention_cpu.h).
// UNRUN on a GPU so far (compiles for sm_80, sm_90, sm_90a; docs/perf/kernel-resources.txt).
#pragma once
#include <cstdint>

#include "kernels/moh_cuda_check.h"

namespace moh::kernels {

constexpr int kVitAggMaxHeadDim = 32;  // one lane per channel (every released MoH-ViT has d = 24)
constexpr int kVitAggMaxKeys = 256;    // window slots + pooled keys per query (released: 9 + 49)

struct VitAggParams {
  // Activations, dtype `dtype` (bf16, fp16 or fp32), unit stride inside a row:
  const void* q = nullptr;        // [B, N, C] raw q(x) (not normalised), channel = head * d + i; row stride q_row
  const void* kv = nullptr;       // [B, N, 2C] raw kv(x): k = channels [0, C), v = [C, 2C); row stride kv_row
  const void* kv_pool = nullptr;  // [B, P, 2C] raw kv(norm(pool(gelu(sr(x))))), same layout; row stride kvp_row
  int64_t q_row = 0, kv_row = 0, kvp_row = 0;
  // Small tensors, fp32 contiguous:
  const float* pool_bias = nullptr;  // [h, N, P] CPB bias of the pooled keys
  const float* qe = nullptr;         // [h, d] query_embedding
  const float* sp = nullptr;         // [h] softplus(temperature)
  const float* scale = nullptr;      // [N] seq_length_scale
  const float* rpb = nullptr;        // [h, L] relative_pos_bias_local
  const float* lt = nullptr;         // [h, d, L] learnable_tokens
  const float* lb = nullptr;         // [h, L] learnable_bias
  const float* gates = nullptr;      // [B, N, h] MoH gates (exactly 0 for unselected routed heads)
  void* out = nullptr;               // out: [B, N, C] contiguous, `dtype`: gated head outputs (the input of proj)
  int64_t B = 0, H = 0, W = 0, h = 0, d = 0, P = 0;
  int ws = 3;
  DType dtype = DType::F32;
};

// One warp per (image, pixel, head): fp32 math (L2 norms, logits, softmax, sums), inputs and output in `dtype`.
// Pairs with gate 0 write zeros and stop. cudaErrorInvalidValue when d > kVitAggMaxHeadDim, ws*ws + P >
// kVitAggMaxKeys, ws is even, or a size is not positive.
cudaError_t vit_aggregated_attention_forward(const VitAggParams& p, cudaStream_t stream);

}  // namespace moh::kernels
