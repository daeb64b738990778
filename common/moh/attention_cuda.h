// Torch <-> kernel glue for the MoH CUDA kernels (kernels/moh_attention.h, kernels/moh_router.h). Declared always;
// defined in attention_cuda.cpp, which is compiled only when Torch has CUDA (MOH_WITH_CUDA).
#pragma once
#include <torch/torch.h>

#include "common/moh/gates.h"

namespace moh::cuda {

// Which attention kernel runs. kAuto: tensor cores where supported (bf16/fp16, d % 8 == 0, d <= 128, 16-byte
// aligned rows, sm_80+), else the SIMT kernel. moh_gated_attention() without a choice reads the environment
// variable MOH_ATTN_KERNEL = auto | simple | tc (default auto); "tc" on unsupported inputs throws.
enum class AttnKernelChoice { kAuto, kSimple, kTensorCore };
AttnKernelChoice attn_kernel_from_env();

// Whether the sparse-head attention kernels handle these tensors (CUDA, one device, fp32/fp16/bf16, head dim).
bool sparse_attention_supported(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                const torch::Tensor& gates);
// q, k, v [B, h, N, d] (any strides; unit stride in d for tensor cores), gates [B, N, h] -> [B, N, h*d].
// Only (token, head) pairs with gate != 0 are computed; the other slots are zeros.
torch::Tensor moh_gated_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                  const torch::Tensor& gates, double scale);
// `out`, when given, must be a contiguous [B, N, h*d] tensor of q's dtype on q's device; it is written
// completely (tests poison it first to prove that) and returned.
torch::Tensor moh_gated_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                  const torch::Tensor& gates, double scale, AttnKernelChoice which,
                                  torch::Tensor out = {});

// Router on CUDA: gates [B, N, h] in u's dtype (same formulas as moh::moh_gates, computed in fp32 from the router
// logits of one GEMM; top-k ties go to the lowest head index) and, when asked, the per-(batch, head) lists of the
// tokens whose gate is non-zero: counts [B, h] int32 and indices [B, h, N] int32 (ascending, then -1).
struct RouterResult {
  torch::Tensor gates;
  torch::Tensor counts;
  torch::Tensor indices;
};
RouterResult moh_router(const torch::Tensor& u, const MoHGateConfig& cfg, const MoHGateWeights& w,
                        bool want_token_lists = false);

// The router weights stacked once for the single router GEMM: [wg; wg_0; wg_1; zero rows] -> [L, C] with L a
// multiple of 8 (16-byte aligned logit rows). Build it at weight-load time: stacking per call costs two extra
// launches (~10 us of host time each on an H200).
struct StackedRouterWeights {
  torch::Tensor w;  // [L, C]
  int col_wg = -1, col_wg0 = -1, col_wg1 = -1;  // first row of each layer, -1 when the config has none
};
StackedRouterWeights stack_router_weights(const MoHGateConfig& cfg, const MoHGateWeights& w,
                                          const torch::TensorOptions& options);
RouterResult moh_router(const torch::Tensor& u, const MoHGateConfig& cfg, const StackedRouterWeights& w,
                        bool want_token_lists = false);

// The token lists of any gates tensor [B, N, h] on CUDA (what moh_router returns when asked).
void selected_token_lists(const torch::Tensor& gates, torch::Tensor* counts, torch::Tensor* indices);

}  // namespace moh::cuda
