// Torch-free API of the fused elementwise MoH-DiT kernel: gated residual + LayerNorm (no affine) + adaLN modulate in
// one pass over each token row. Mirrors SkyworkAI/MoH MoH-DiT/models.py `DiTBlock.forward` (x + gate_msa * attn(...),
// then modulate(norm2(x), shift_mlp, scale_mlp)) and `modulate`; the LibTorch reference is
// moh::dit::gated_residual_norm_modulate_reference (dit/fused_ops.h). UNRUN on a GPU so far (compiles for sm_80,
// sm_90, sm_90a; docs/perf/kernel-resources.txt).
#pragma once
#include <cstdint>

#include "kernels/moh_cuda_check.h"

namespace moh::kernels {

struct DiTFusedParams {
  // Residual stream x [rows, C] (rows = B*T, row stride x_row, unit column stride), dtype x_dtype.
  const void* x = nullptr;
  int64_t x_row = 0;
  // Branch a [rows, C] (row stride a_row) and gate [B, C], dtype low_dtype; both nullptr for plain LayerNorm +
  // modulate (h = x).
  const void* a = nullptr;
  int64_t a_row = 0;
  const void* gate = nullptr;
  // shift, scale [B, C] in low_dtype; gate/shift/scale rows of batch b start at ptr + b * vec_row (chunks of the
  // [B, 6C] adaLN output share one row stride).
  const void* shift = nullptr;
  const void* scale = nullptr;
  int64_t vec_row = 0;
  void* h = nullptr;  // out: [rows, C] contiguous, x_dtype (nullptr: not written; needs a == nullptr)
  void* z = nullptr;  // out: [rows, C] contiguous, low_dtype: LN(h) * (1 + scale) + shift
  int64_t B = 0, T = 0, C = 0;
  float eps = 1e-6f;
  DType x_dtype = DType::F32;    // residual stream (and h)
  DType low_dtype = DType::F32;  // a, gate, shift, scale and z; equal to x_dtype or x_dtype == F32
};

// One warp per token row; all arithmetic in fp32. h is rounded to x_dtype before the LayerNorm statistics (as the
// reference, which normalises the stored h); the variance is the two-pass (h - mean)^2 mean, biased, like torch.
cudaError_t dit_gated_residual_norm_modulate(const DiTFusedParams& p, cudaStream_t stream);

}  // namespace moh::kernels
