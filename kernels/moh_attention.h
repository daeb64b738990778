// Torch-free API of the MoH sparse-head attention kernels (spec/moh-attention.md §3, §7). Mirrors what
// MoH-DiT/models.py `MoHAttention.forward` computes between `qkv` and `proj`: per head softmax(q k^T * scale) v,
// times the per-(token, head) gate, written head-major into [B, Nq, h*d]. Only (token, head) pairs whose gate is
// non-zero are computed; the other output slots are written as zeros (the official code computes 0 * O there).
#pragma once
#include <cstdint>

#include "kernels/moh_cuda_check.h"

namespace moh::kernels {

// Which implementation runs. kAuto = tensor cores when the inputs allow (bf16/fp16, d % 8 == 0, d <= 128,
// 16-byte aligned rows, sm_80+), else the SIMT kernel.
enum class AttnKernel : int { kAuto = 0, kSimple = 1, kTensorCore = 2 };

struct SparseAttentionParams {
  // q: [B, h, Nq, d], k/v: [B, h, Nk, d] with any strides (element units); the d stride must be 1 for the
  // tensor-core kernel, the SIMT kernel takes any.
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  int64_t q_stride[4] = {0, 0, 0, 1};
  int64_t k_stride[4] = {0, 0, 0, 1};
  int64_t v_stride[4] = {0, 0, 0, 1};
  // gates: [B, Nq, h], same element type as q (the reference multiplies in the output dtype), any strides.
  const void* gates = nullptr;
  int64_t g_stride[3] = {0, 0, 1};
  // out: [B, Nq, h*d] contiguous, written completely (zeros where the gate is 0).
  void* out = nullptr;
  int64_t B = 0, h = 0, Nq = 0, Nk = 0, d = 0;
  float scale = 1.f;  // softmax scale, d^-0.5 in MoH
  DType dtype = DType::F32;
};

// Largest head dim each kernel handles.
constexpr int64_t kSimpleMaxHeadDim = 256;
constexpr int64_t kTensorCoreMaxHeadDim = 128;

// True when the tensor-core kernel can take these params on a device of compute capability `sm` (e.g. 90).
bool tensor_core_attention_supported(const SparseAttentionParams& p, int sm);

// Runs the chosen kernel on `stream`. kAuto picks tensor cores when supported; kTensorCore on unsupported params
// returns cudaErrorInvalidValue (a wrong path must fail loudly, not fall back silently).
cudaError_t sparse_attention_forward(const SparseAttentionParams& p, AttnKernel which, int sm, cudaStream_t stream);

// The two implementations (exposed for tests and benchmarks).
cudaError_t sparse_attention_simple(const SparseAttentionParams& p, cudaStream_t stream);
cudaError_t sparse_attention_tensor_core(const SparseAttentionParams& p, cudaStream_t stream);

}  // namespace moh::kernels
