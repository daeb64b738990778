// Fused MoH-ViT aggregated attention (see kernels/moh_vit_aggregated.h). One warp per (b, n, head), 8 warps a block.
// Phases, with per-warp shared scratch (q_hat, q_s, and the L + P logits/probabilities):
//   1. lane i < d: q_hat_i = q_i / max(||q||, 1e-12); q_s_i = ((q_hat_i + qe_i) * softplus(t)) * seq_scale[n];
//   2. lane per key j (window slots first, then pooled keys): logit_j = (q_s . k_j) / max(||k_j||, 1e-12) + bias_j
//      (the keys are L2-normalised on the fly); out-of-grid window slots get -inf (weight 0, as the official mask);
//   3. one softmax over the L + P logits (warp max / sum);
//   4. lane per window slot z: w_z = q_hat . learnable_tokens[:, z] + learnable_bias[z] + A_local[z];
//   5. lane i < d: out_i = gate * (sum_z valid w_z v[nbr_z]_i + sum_p A_pool[p] v_pool[p]_i).
// Pairs with gate 0 write zeros after one gate load. UNRUN on a GPU so far.
#include "kernels/moh_kernel_common.cuh"
#include "kernels/moh_vit_aggregated.h"

namespace moh::kernels {
namespace {

constexpr int kWarps = 8;

template <typename T>
__global__ void __launch_bounds__(kWarps * 32) vit_agg_kernel(const VitAggParams p) {
  __shared__ float s_qh[kWarps][kVitAggMaxHeadDim];
  __shared__ float s_qs[kWarps][kVitAggMaxHeadDim];
  __shared__ float s_l[kWarps][kVitAggMaxKeys];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t N = p.H * p.W, C = p.h * p.d;
  const int64_t pair = static_cast<int64_t>(blockIdx.x) * kWarps + warp;  // ((b * N) + n) * h + head
  if (pair >= p.B * N * p.h) return;
  const int64_t hd = pair % p.h, r = pair / p.h, b = r / N, n = r % N;
  const int d = static_cast<int>(p.d), ws = p.ws, L = ws * ws, pad = ws / 2;
  const int64_t P = p.P;
  T* out = static_cast<T*>(p.out) + r * C + hd * d;
  const float g = p.gates[r * p.h + hd];
  if (g == 0.f) {  // unselected routed head: 0 * finite output in the reference
    if (lane < d) out[lane] = dev::from_float<T>(0.f);
    return;
  }
  const T* qrow = static_cast<const T*>(p.q) + r * p.q_row + hd * d;
  const T* kvb = static_cast<const T*>(p.kv) + b * N * p.kv_row;        // image b's kv rows
  const T* kvpb = static_cast<const T*>(p.kv_pool) + b * P * p.kvp_row;  // image b's pooled kv rows
  const int64_t pi = n / p.W, pj = n % p.W;

  // 1. normalised and scaled query.
  const float qv = lane < d ? dev::to_float(qrow[lane]) : 0.f;
  const float qn = fmaxf(sqrtf(dev::warp_sum(qv * qv)), 1e-12f);
  if (lane < d) {
    const float qh = qv / qn;
    s_qh[warp][lane] = qh;
    s_qs[warp][lane] = ((qh + p.qe[hd * d + lane]) * p.sp[hd]) * p.scale[n];
  }
  __syncwarp();

  // 2. logits, one key per lane.
  float mx = -INFINITY;
  for (int j = lane; j < L + P; j += 32) {
    const T* k;
    float bias;
    bool valid = true;
    if (j < L) {
      const int64_t rr = pi + j / ws - pad, cc = pj + j % ws - pad;
      valid = rr >= 0 && rr < p.H && cc >= 0 && cc < p.W;
      k = kvb + (valid ? (rr * p.W + cc) : 0) * p.kv_row + hd * d;
      bias = p.rpb[hd * L + j];
    } else {
      k = kvpb + (j - L) * p.kvp_row + hd * d;
      bias = p.pool_bias[(hd * N + n) * P + (j - L)];
    }
    float logit = -INFINITY;
    if (valid) {
      float dot = 0.f, kk = 0.f;
      for (int i = 0; i < d; ++i) {
        const float kv = dev::to_float(k[i]);
        dot += s_qs[warp][i] * kv;
        kk += kv * kv;
      }
      logit = dot / fmaxf(sqrtf(kk), 1e-12f) + bias;
    }
    s_l[warp][j] = logit;
    mx = fmaxf(mx, logit);
  }
  mx = dev::warp_max(mx);

  // 3. softmax over [window | pool].
  float sum = 0.f;
  for (int j = lane; j < L + P; j += 32) {
    const float e = expf(s_l[warp][j] - mx);  // exp(-inf) = 0 for masked slots
    s_l[warp][j] = e;
    sum += e;
  }
  const float inv = 1.f / dev::warp_sum(sum);
  __syncwarp();

  // 4. local weights w_z = q_hat . learnable_tokens[:, z] + learnable_bias[z] + A_local[z].
  for (int z = lane; z < L; z += 32) {
    float w = 0.f;
    for (int i = 0; i < d; ++i) w += s_qh[warp][i] * p.lt[(hd * d + i) * L + z];
    s_l[warp][z] = (w + p.lb[hd * L + z]) + s_l[warp][z] * inv;
  }
  __syncwarp();

  // 5. values: lane = channel.
  if (lane < d) {
    float acc = 0.f, accp = 0.f;
    for (int z = 0; z < L; ++z) {
      const int64_t rr = pi + z / ws - pad, cc = pj + z % ws - pad;
      if (rr < 0 || rr >= p.H || cc < 0 || cc >= p.W) continue;  // zero-padded values in the reference
      acc += s_l[warp][z] * dev::to_float(kvb[(rr * p.W + cc) * p.kv_row + C + hd * d + lane]);
    }
    for (int64_t q = 0; q < P; ++q)
      accp += (s_l[warp][L + q] * inv) * dev::to_float(kvpb[q * p.kvp_row + C + hd * d + lane]);
    out[lane] = dev::from_float<T>((acc + accp) * g);
  }
}

}  // namespace

cudaError_t vit_aggregated_attention_forward(const VitAggParams& p, cudaStream_t stream) {
  if (p.B <= 0 || p.H <= 0 || p.W <= 0 || p.h <= 0 || p.d <= 0 || p.P <= 0 || p.ws <= 0 || p.ws % 2 == 0)
    return cudaErrorInvalidValue;
  if (p.d > kVitAggMaxHeadDim || p.ws * p.ws + p.P > kVitAggMaxKeys) return cudaErrorInvalidValue;
  if (!p.q || !p.kv || !p.kv_pool || !p.pool_bias || !p.qe || !p.sp || !p.scale || !p.rpb || !p.lt || !p.lb ||
      !p.gates || !p.out)
    return cudaErrorInvalidValue;
  const int64_t pairs = p.B * p.H * p.W * p.h;
  const int64_t blocks = (pairs + kWarps - 1) / kWarps;
  if (blocks > 0x7fffffff) return cudaErrorInvalidValue;
  return MOH_DISPATCH_DTYPE(p.dtype, [&] {
    vit_agg_kernel<scalar_t><<<static_cast<unsigned>(blocks), kWarps * 32, 0, stream>>>(p);
    MOH_CUDA_RETURN_LAUNCH_ERROR();
    return cudaSuccess;
  });
}

}  // namespace moh::kernels
