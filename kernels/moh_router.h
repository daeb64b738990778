// Torch-free API of the MoH router kernels (spec/moh-attention.md §2): router logits (one GEMM done by the caller)
// -> per-token gates [T, h], and per-(batch, head) compact lists of the tokens whose gate is non-zero.
// Mirrors the gate code of MoH-DiT/models.py `MoHAttention.forward` and MoH-ViT/attention.py `Attention.forward`.
#pragma once
#include <cstdint>

#include "kernels/moh_cuda_check.h"

namespace moh::kernels {

// Largest routed-candidate count E and shared-head count hs the router kernel takes (two entries per lane).
constexpr int kRouterMaxWidth = 64;

struct RouterParams {
  // logits: [T, *] rows (row stride logit_stride, unit column stride) holding the bias-free Linear outputs
  // wg (E columns from col_wg), wg_0 (2 columns from col_wg0), wg_1 (hs columns from col_wg1); a column offset
  // is -1 when the configuration has no such layer.
  const void* logits = nullptr;
  int64_t logit_stride = 0;
  int col_wg = -1, col_wg0 = -1, col_wg1 = -1;
  int64_t T = 0;  // tokens (B * N)
  int h = 0, hs = 0, hr = 0;
  float eps = 1.1920929e-7f;  // finfo(dtype).eps of the model dtype: clamp of the routed renormalisation
  void* gates = nullptr;      // out: [T, h] contiguous, logits' dtype
  DType dtype = DType::F32;   // of logits and gates
};

// Gates per token, computed in fp32 (softmax, top-k, renormalise x hr, shared softmax x hs, two-way mix).
// Top-k ties (equal probabilities) go to the lowest candidate index; torch.topk leaves ties unspecified.
cudaError_t moh_router_forward(const RouterParams& p, cudaStream_t stream);

struct CompactParams {
  const void* gates = nullptr;  // [B, N, h], any strides
  int64_t g_stride[3] = {0, 0, 1};
  int64_t B = 0, N = 0, h = 0;
  DType dtype = DType::F32;
  int32_t* counts = nullptr;   // out: [B, h] number of tokens with gate != 0
  int32_t* indices = nullptr;  // out: [B, h, N] those tokens in ascending order, then -1 padding
};

// Per-(batch, head) token lists of the non-zero gates (deterministic: ascending token order).
cudaError_t compact_selected_tokens(const CompactParams& p, cudaStream_t stream);

}  // namespace moh::kernels
