// Fused gated residual + LayerNorm + adaLN modulate for MoH-DiT blocks (see kernels/moh_dit_fused.h). One warp per
// token row: pass 1 forms h = x + gate * a (rounded to the stream dtype, written once) and its sum; pass 2 the sum of
// (h - mean)^2; pass 3 writes z. Passes 2 and 3 re-read the row from the inputs (a 1152-wide fp32 row is 4.6 KB, so the
// re-reads hit L1/L2; one DRAM read of x and a, one write of h and z per element). UNRUN on a GPU so far.
#include "kernels/moh_dit_fused.h"
#include "kernels/moh_kernel_common.cuh"

#include <type_traits>

namespace moh::kernels {
namespace {

constexpr int kRowsPerBlock = 8;  // 8 warps, 256 threads

template <typename TX, typename TL>
__global__ void __launch_bounds__(kRowsPerBlock * 32) dit_fused_kernel(const DiTFusedParams p) {
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + (threadIdx.x >> 5);
  if (row >= p.B * p.T) return;
  const int64_t b = row / p.T, C = p.C;
  const TX* x = static_cast<const TX*>(p.x) + row * p.x_row;
  const TL* a = p.a ? static_cast<const TL*>(p.a) + row * p.a_row : nullptr;
  const TL* gate = p.a ? static_cast<const TL*>(p.gate) + b * p.vec_row : nullptr;
  const TL* shift = static_cast<const TL*>(p.shift) + b * p.vec_row;
  const TL* scale = static_cast<const TL*>(p.scale) + b * p.vec_row;
  TX* h = p.h ? static_cast<TX*>(p.h) + row * C : nullptr;
  TL* z = static_cast<TL*>(p.z) + row * C;

  // h as stored (rounded to TX), as a float.
  auto h_at = [&](int64_t c) -> float {
    float v = dev::to_float(x[c]);
    if (a) v = dev::to_float(dev::from_float<TX>(v + dev::to_float(gate[c]) * dev::to_float(a[c])));
    return v;
  };
  float sum = 0.f;
  for (int64_t c = lane; c < C; c += 32) {
    const float v = h_at(c);
    if (h) h[c] = dev::from_float<TX>(v);
    sum += v;
  }
  const float mean = dev::warp_sum(sum) / static_cast<float>(C);
  float sq = 0.f;
  for (int64_t c = lane; c < C; c += 32) {
    const float dv = h_at(c) - mean;
    sq += dv * dv;
  }
  const float rstd = rsqrtf(dev::warp_sum(sq) / static_cast<float>(C) + p.eps);
  for (int64_t c = lane; c < C; c += 32) {
    const float n = (h_at(c) - mean) * rstd;
    // Reference op order: (1 + scale) is formed in the GEMM dtype, then addcmul(shift, n, 1 + scale).
    const float s1 = dev::to_float(dev::from_float<TL>(1.f + dev::to_float(scale[c])));
    z[c] = dev::from_float<TL>(dev::to_float(shift[c]) + n * s1);
  }
}

template <typename TX>
cudaError_t launch_low(const DiTFusedParams& p, cudaStream_t stream, unsigned blocks) {
  constexpr int kThreads = kRowsPerBlock * 32;
  if constexpr (std::is_same<TX, float>::value) {  // fp32 stream: a/gate/shift/scale/z in any of the three dtypes
    switch (p.low_dtype) {
      case DType::F32: dit_fused_kernel<float, float><<<blocks, kThreads, 0, stream>>>(p); break;
      case DType::F16: dit_fused_kernel<float, __half><<<blocks, kThreads, 0, stream>>>(p); break;
      case DType::BF16: dit_fused_kernel<float, __nv_bfloat16><<<blocks, kThreads, 0, stream>>>(p); break;
      default: return cudaErrorInvalidValue;
    }
  } else {  // pure bf16 / fp16: one dtype throughout
    if (p.low_dtype != p.x_dtype) return cudaErrorInvalidValue;
    dit_fused_kernel<TX, TX><<<blocks, kThreads, 0, stream>>>(p);
  }
  MOH_CUDA_RETURN_LAUNCH_ERROR();
  return cudaSuccess;
}

}  // namespace

cudaError_t dit_gated_residual_norm_modulate(const DiTFusedParams& p, cudaStream_t stream) {
  if (p.B <= 0 || p.T <= 0 || p.C <= 0 || !p.x || !p.shift || !p.scale || !p.z) return cudaErrorInvalidValue;
  if (p.a && (!p.gate || !p.h)) return cudaErrorInvalidValue;  // a residual update must be stored
  if (p.low_dtype != p.x_dtype && p.x_dtype != DType::F32) return cudaErrorInvalidValue;
  const int64_t rows = p.B * p.T;
  const int64_t blocks = (rows + kRowsPerBlock - 1) / kRowsPerBlock;
  if (blocks > 0x7fffffff) return cudaErrorInvalidValue;
  const auto nb = static_cast<unsigned>(blocks);
  switch (p.x_dtype) {
    case DType::F32: return launch_low<float>(p, stream, nb);
    case DType::F16: return launch_low<__half>(p, stream, nb);
    case DType::BF16: return launch_low<__nv_bfloat16>(p, stream, nb);
  }
  return cudaErrorInvalidValue;
}

}  // namespace moh::kernels
