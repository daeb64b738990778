// SIMT MoH sparse-head attention: the obviously-correct kernel (fp32 math, one warp per (batch, head, query token)).
// Used for fp32 inputs, head dims the tensor-core kernel does not take, strided d, and as the cross-check of the
// tensor-core kernel (MOH_ATTN_KERNEL=simple). Mirrors the math of MoH-DiT/models.py `MoHAttention.forward`
// (softmax((q*scale) k^T) v, then x gate), see kernels/moh_attention.h.
#include <cmath>

#include "kernels/moh_attention.h"
#include "kernels/moh_kernel_common.cuh"

namespace moh::kernels {
namespace {

constexpr int kWarpsPerBlock = 4;

// DCHUNKS = ceil(d / 32): each lane owns head-dim columns lane + 32*i, i < DCHUNKS (registers, unrolled).
template <typename T, int DCHUNKS>
__global__ void __launch_bounds__(kWarpsPerBlock * 32) sparse_attention_simple_kernel(const SparseAttentionParams p) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t t = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + warp;  // query token
  const int64_t hd = blockIdx.y, b = blockIdx.z;
  if (t >= p.Nq) return;  // whole warp leaves together (t is warp-uniform)
  const int64_t d = p.d;
  T* out = static_cast<T*>(p.out) + (b * p.Nq + t) * (p.h * d) + hd * d;  // slot of [B, Nq, h*d]
  const float gate = dev::load_gate(static_cast<const T*>(p.gates), p.g_stride[0], p.g_stride[1], p.g_stride[2], b, t, hd);
  if (gate == 0.f) {  // skipped (token, head): the dense reference yields 0 * O = 0 here
    for (int64_t c = lane; c < d; c += 32) out[c] = dev::from_float<T>(0.f);
    return;
  }
  const T* qrow = static_cast<const T*>(p.q) + b * p.q_stride[0] + hd * p.q_stride[1] + t * p.q_stride[2];
  const T* kb = static_cast<const T*>(p.k) + b * p.k_stride[0] + hd * p.k_stride[1];
  const T* vb = static_cast<const T*>(p.v) + b * p.v_stride[0] + hd * p.v_stride[1];
  float qf[DCHUNKS], o[DCHUNKS];
#pragma unroll
  for (int i = 0; i < DCHUNKS; ++i) {
    const int64_t c = lane + 32 * i;
    qf[i] = c < d ? dev::to_float(qrow[c * p.q_stride[3]]) : 0.f;
    o[i] = 0.f;
  }
  float m = -INFINITY, l = 0.f;  // running max (scaled scores) and running softmax denominator
  for (int64_t j0 = 0; j0 < p.Nk; j0 += 32) {
    // Scores of keys j0..j0+31: the warp reduces one dot product at a time; lane jj keeps key j0+jj's score.
    float my_s = -INFINITY;
    const int nkeys = static_cast<int>(p.Nk - j0 < 32 ? p.Nk - j0 : 32);
    for (int jj = 0; jj < nkeys; ++jj) {
      const T* krow = kb + (j0 + jj) * p.k_stride[2];
      float part = 0.f;
#pragma unroll
      for (int i = 0; i < DCHUNKS; ++i) {
        const int64_t c = lane + 32 * i;
        if (c < d) part += qf[i] * dev::to_float(krow[c * p.k_stride[3]]);
      }
      const float s = dev::warp_sum(part) * p.scale;
      if (lane == jj) my_s = s;
    }
    const float m_new = fmaxf(m, dev::warp_max(my_s));  // finite: key j0 exists
    const float corr = expf(m - m_new);                 // 0 on the first chunk (m = -inf)
    const float pj = expf(my_s - m_new);                // 0 for lanes past the last key
    l = l * corr + dev::warp_sum(pj);
#pragma unroll
    for (int i = 0; i < DCHUNKS; ++i) o[i] *= corr;
    for (int jj = 0; jj < nkeys; ++jj) {
      const float pb = __shfl_sync(0xffffffffu, pj, jj);
      const T* vrow = vb + (j0 + jj) * p.v_stride[2];
#pragma unroll
      for (int i = 0; i < DCHUNKS; ++i) {
        const int64_t c = lane + 32 * i;
        if (c < d) o[i] += pb * dev::to_float(vrow[c * p.v_stride[3]]);
      }
    }
    m = m_new;
  }
  const float f = gate / l;
#pragma unroll
  for (int i = 0; i < DCHUNKS; ++i) {
    const int64_t c = lane + 32 * i;
    if (c < d) out[c] = dev::from_float<T>(o[i] * f);
  }
}

template <typename T, int DCHUNKS>
cudaError_t launch_simple(const SparseAttentionParams& p, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>((p.Nq + kWarpsPerBlock - 1) / kWarpsPerBlock), static_cast<unsigned>(p.h),
                  static_cast<unsigned>(p.B));
  sparse_attention_simple_kernel<T, DCHUNKS><<<grid, kWarpsPerBlock * 32, 0, stream>>>(p);
  MOH_CUDA_RETURN_LAUNCH_ERROR();
  return cudaSuccess;
}

}  // namespace

cudaError_t sparse_attention_simple(const SparseAttentionParams& p, cudaStream_t stream) {
  if (p.d <= 0 || p.d > kSimpleMaxHeadDim || p.B <= 0 || p.h <= 0 || p.Nq <= 0 || p.Nk <= 0 || p.B > 65535 ||
      p.h > 65535 || (p.Nq + kWarpsPerBlock - 1) / kWarpsPerBlock > 0x7fffffff)
    return cudaErrorInvalidValue;
  return MOH_DISPATCH_DTYPE(p.dtype, [&] {
    if (p.d <= 32) return launch_simple<scalar_t, 1>(p, stream);
    if (p.d <= 64) return launch_simple<scalar_t, 2>(p, stream);
    if (p.d <= 128) return launch_simple<scalar_t, 4>(p, stream);
    return launch_simple<scalar_t, 8>(p, stream);
  });
}

}  // namespace moh::kernels
