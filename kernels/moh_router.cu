// MoH router kernels: gates from router logits (one warp per token) and the per-(batch, head) selected-token lists
// (one block per (batch, head)). Mirrors the gate code of MoH-DiT/models.py `MoHAttention.forward` /
// MoH-ViT/attention.py `Attention.forward` (spec/moh-attention.md §2); see kernels/moh_router.h.
#include <cmath>

#include "kernels/moh_kernel_common.cuh"
#include "kernels/moh_router.h"

namespace moh::kernels {
namespace {

constexpr int kRouterWarps = 4;

// Softmax over `n` (<= 64) values held two per lane (index lane and lane + 32); entries >= n come back 0.
__device__ __forceinline__ void warp_softmax2(float (&x)[2], int n, int lane) {
  const bool in0 = lane < n, in1 = lane + 32 < n;
  const float mx = dev::warp_max(fmaxf(in0 ? x[0] : -INFINITY, in1 ? x[1] : -INFINITY));
  x[0] = in0 ? expf(x[0] - mx) : 0.f;
  x[1] = in1 ? expf(x[1] - mx) : 0.f;
  const float inv = 1.f / dev::warp_sum(x[0] + x[1]);
  x[0] *= inv;
  x[1] *= inv;
}

template <typename T>
__global__ void __launch_bounds__(kRouterWarps * 32) moh_router_kernel(const RouterParams p) {
  const int lane = threadIdx.x % 32;
  const int64_t t = static_cast<int64_t>(blockIdx.x) * kRouterWarps + threadIdx.x / 32;
  if (t >= p.T) return;  // warp-uniform
  const T* row = static_cast<const T*>(p.logits) + t * p.logit_stride;
  T* g = static_cast<T*>(p.gates) + t * p.h;
  const int E = p.h - p.hs;

  // Routed gates r (candidate e = lane, lane + 32).
  float r[2] = {0.f, 0.f};
  if (p.hr > 0) {
    float prob[2];
    for (int i = 0; i < 2; ++i) {
      const int e = lane + 32 * i;
      prob[i] = e < E ? dev::to_float(row[p.col_wg + e]) : 0.f;
    }
    warp_softmax2(prob, E, lane);
    // top-k: hr rounds of a warp argmax over the not yet chosen candidates; ties -> lowest index.
    bool chosen[2] = {false, false};
    for (int k = 0; k < p.hr; ++k) {
      float bv = -1.f;  // probabilities are >= 0, so -1 loses to every real candidate
      int bi = 0x7fffffff;
      for (int i = 0; i < 2; ++i) {
        const int e = lane + 32 * i;
        if (e < E && !chosen[i] && prob[i] > bv) {  // strict: on a tie the lower index (i = 0) stays
          bv = prob[i];
          bi = e;
        }
      }
      for (int o = 16; o > 0; o >>= 1) {
        const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
        const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
        if (ov > bv || (ov == bv && oi < bi)) {
          bv = ov;
          bi = oi;
        }
      }
      if (bi == lane) chosen[0] = true;
      if (bi == lane + 32) chosen[1] = true;
    }
    const float k0 = chosen[0] ? prob[0] : 0.f, k1 = chosen[1] ? prob[1] : 0.f;
    const float f = static_cast<float>(p.hr) / fmaxf(dev::warp_sum(k0 + k1), p.eps);  // renormalise, x hr
    r[0] = k0 * f;
    r[1] = k1 * f;
  }

  // Shared gates s (head j = lane, lane + 32): softmax(wg_1) x hs; the ViT hs == 1 case is the constant 1.
  float s[2] = {0.f, 0.f};
  if (p.hs > 1) {
    for (int i = 0; i < 2; ++i) {
      const int j = lane + 32 * i;
      s[i] = j < p.hs ? dev::to_float(row[p.col_wg1 + j]) : 0.f;
    }
    warp_softmax2(s, p.hs, lane);
    s[0] *= static_cast<float>(p.hs);
    s[1] *= static_cast<float>(p.hs);
  } else if (p.hs == 1) {
    s[0] = lane == 0 ? 1.f : 0.f;
  }

  if (p.hr > 0 && p.hs > 0) {  // two-way mix w = softmax(wg_0) x 2: shared x w0, routed x w1
    const float a = dev::to_float(row[p.col_wg0]), c = dev::to_float(row[p.col_wg0 + 1]);
    const float mx = fmaxf(a, c), ea = expf(a - mx), ec = expf(c - mx);
    const float w0 = 2.f * ea / (ea + ec), w1 = 2.f * ec / (ea + ec);
    for (int i = 0; i < 2; ++i) {
      const int j = lane + 32 * i;
      if (j < p.hs) g[j] = dev::from_float<T>(s[i] * w0);
      if (j < E) g[p.hs + j] = dev::from_float<T>(r[i] * w1);
    }
  } else if (p.hr > 0) {  // routed only: G = r
    for (int i = 0; i < 2; ++i)
      if (lane + 32 * i < E) g[lane + 32 * i] = dev::from_float<T>(r[i]);
  } else {  // shared only (hs == h): G = s
    for (int i = 0; i < 2; ++i)
      if (lane + 32 * i < p.hs) g[lane + 32 * i] = dev::from_float<T>(s[i]);
  }
}

constexpr int kCompactThreads = 256;

template <typename T>
__global__ void __launch_bounds__(kCompactThreads) compact_kernel(const CompactParams p) {
  __shared__ int warp_counts[kCompactThreads / 32];
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int64_t b = blockIdx.y, hd = blockIdx.x;
  const T* gates = static_cast<const T*>(p.gates);
  int32_t* idx = p.indices + (b * p.h + hd) * p.N;
  int64_t running = 0;  // block-uniform
  for (int64_t c0 = 0; c0 < p.N; c0 += kCompactThreads) {
    const int64_t t = c0 + tid;
    const bool sel = t < p.N && dev::load_gate(gates, p.g_stride[0], p.g_stride[1], p.g_stride[2], b, t, hd) != 0.f;
    const unsigned bal = __ballot_sync(0xffffffffu, sel);
    if (lane == 0) warp_counts[warp] = __popc(bal);
    __syncthreads();
    int before = 0, total = 0;
    for (int w = 0; w < kCompactThreads / 32; ++w) {
      before += w < warp ? warp_counts[w] : 0;
      total += warp_counts[w];
    }
    if (sel) idx[running + before + __popc(bal & ((1u << lane) - 1u))] = static_cast<int32_t>(t);
    running += total;
    __syncthreads();
  }
  for (int64_t i = running + tid; i < p.N; i += kCompactThreads) idx[i] = -1;
  if (tid == 0) p.counts[b * p.h + hd] = static_cast<int32_t>(running);
}

}  // namespace

cudaError_t moh_router_forward(const RouterParams& p, cudaStream_t stream) {
  const int E = p.h - p.hs;
  if (p.T <= 0 || p.h <= 0 || p.hs < 0 || p.hr < 0 || E < 0 || p.hr > E || E > kRouterMaxWidth ||
      p.hs > kRouterMaxWidth)
    return cudaErrorInvalidValue;
  if (p.hr > 0 && p.col_wg < 0) return cudaErrorInvalidValue;
  if (p.hr > 0 && p.hs > 0 && p.col_wg0 < 0) return cudaErrorInvalidValue;
  if (p.hs > 1 && p.col_wg1 < 0) return cudaErrorInvalidValue;
  if (p.hr == 0 && (p.hs != p.h || p.hs < 2)) return cudaErrorInvalidValue;  // spec §2: needs hs == h and wg_1
  const int64_t blocks = (p.T + kRouterWarps - 1) / kRouterWarps;
  if (blocks > 0x7fffffff) return cudaErrorInvalidValue;
  return MOH_DISPATCH_DTYPE(p.dtype, [&] {
    moh_router_kernel<scalar_t><<<static_cast<unsigned>(blocks), kRouterWarps * 32, 0, stream>>>(p);
    MOH_CUDA_RETURN_LAUNCH_ERROR();
    return cudaSuccess;
  });
}

cudaError_t compact_selected_tokens(const CompactParams& p, cudaStream_t stream) {
  if (p.B <= 0 || p.h <= 0 || p.N <= 0 || p.B > 65535 || p.h > 0x7fffffff || p.N > 0x7fffffff)
    return cudaErrorInvalidValue;
  return MOH_DISPATCH_DTYPE(p.dtype, [&] {
    compact_kernel<scalar_t><<<dim3(static_cast<unsigned>(p.h), static_cast<unsigned>(p.B)), kCompactThreads, 0,
                               stream>>>(p);
    MOH_CUDA_RETURN_LAUNCH_ERROR();
    return cudaSuccess;
  });
}

}  // namespace moh::kernels
