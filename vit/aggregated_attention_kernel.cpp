// Fused per-pixel aggregated attention (CPU, fp32), see vit/aggregated_attention_kernel.h. Mirrors the math of
// SkyworkAI/MoH MoH-ViT/attention_native.py `AggregatedAttention.forward` after the q / kv projections, in the
// official op order where it matters: q_s = ((q_hat + query_embedding) * softplus(t)) * seq_scale; logits =
// q_s . k_hat + bias; one softmax over [window | pool]; w_local = q_hat . learnable_tokens + learnable_bias + A_local;
// out = (sum_z w_local[z] v[nbr z] + sum_p A_pool[p] v_pool[p]) * gate.
// The head dim is a template parameter for the common sizes (24 in every released model) so that the per-head
// accumulators stay in registers; D = 0 is the generic runtime-d version.
#include "vit/aggregated_attention_kernel.h"

#include <algorithm>
#include <cmath>

#include "common/runtime/cpu_simd.h"

namespace moh::vit::cpu {
namespace {

constexpr int kW = 16;  // lane block: pooled keys and window slots are processed 16 at a time

// lanes[0..n16) = sum_i s[i] * m[i * stride + 0..n16): a [D] x [D, n16] product, 16 columns per register block.
template <int D>
MOH_SIMD_INLINE void vec_mat(const float* __restrict s, const float* __restrict m, int64_t stride, int64_t n16,
                             int64_t d_rt, float* __restrict lanes) {
  const int64_t d = D > 0 ? D : d_rt;
  for (int64_t c = 0; c < n16; c += kW) {
    float acc[kW] = {};
    for (int64_t i = 0; i < d; ++i)
      for (int l = 0; l < kW; ++l) acc[l] += s[i] * m[i * stride + c + l];
    for (int l = 0; l < kW; ++l) lanes[c + l] = acc[l];
  }
}

template <int D>
MOH_SIMD_INLINE void agg_rows_impl(const AggParams& p, int64_t begin, int64_t end, float* scratch) {
  const int64_t d = D > 0 ? D : p.d;
  const int64_t N = p.N, W = p.W, H = p.H, ws = p.ws, L = p.L(), Lp = p.Lp(), h = p.h, P = p.P, Pp = p.Pp();
  const int64_t C = h * d, pad = ws / 2;
  float* qh = scratch;        // [d] normalised query
  float* qs = qh + d;         // [d] scaled query
  float* ll = qs + d;         // [Lp] window logits -> probabilities
  float* lp = ll + Lp;        // [Pp] pooled logits -> probabilities
  float* wl = lp + Pp;        // [Lp] local weights
  bool valid[kMaxWindowSlots];
  int64_t nbr[kMaxWindowSlots];  // flat pixel index of each in-grid window slot

  for (int64_t r = begin; r < end; ++r) {
    const int64_t b = r / N, n = r % N, pi = n / W, pj = n % W;
    const float* qrow = p.q + r * C;
    const float* grow = p.gates + r * h;
    float* orow = p.out + r * C;
    for (int64_t a = 0; a < ws; ++a)
      for (int64_t c = 0; c < ws; ++c) {
        const int64_t rr = pi + a - pad, cc = pj + c - pad, z = a * ws + c;
        valid[z] = rr >= 0 && rr < H && cc >= 0 && cc < W;
        nbr[z] = b * N + rr * W + cc;
      }
    for (int64_t hd = 0; hd < h; ++hd) {
      float* o = orow + hd * d;
      const float g = grow[hd];
      if (g == 0.f) {  // unselected routed head: the reference multiplies a finite output by exactly 0
        for (int64_t i = 0; i < d; ++i) o[i] = 0.f;
        continue;
      }
      // q_hat = q / max(||q||, eps); q_s = ((q_hat + qe) * softplus(t)) * seq_scale[n].
      const float* qv = qrow + hd * d;
      const float den = std::max(std::sqrt(simd::dot(qv, qv, d)), 1e-12f);
      const float* qeh = p.qe + hd * d;
      const float sph = p.sp[hd], sc = p.scale[n];
      for (int64_t i = 0; i < d; ++i) {
        qh[i] = qv[i] / den;
        qs[i] = ((qh[i] + qeh[i]) * sph) * sc;
      }

      // Window logits q_s . k_hat[nbr] + rpb; out-of-grid slots are excluded (official: -inf, softmax weight 0).
      const float* rpb = p.rpb + hd * L;
      float mx = -INFINITY;
      for (int64_t z = 0; z < L; ++z) {
        if (!valid[z]) continue;
        ll[z] = simd::dot(qs, p.khat + nbr[z] * C + hd * d, d) + rpb[z];
        mx = ll[z] > mx ? ll[z] : mx;
      }
      // Pooled logits: q_s @ k_pool^T (16 keys per register block) + CPB bias.
      vec_mat<D>(qs, p.kp_t + (b * h + hd) * d * Pp, Pp, Pp, d, lp);
      simd::add(lp, p.bias + (hd * N + n) * P, P);
      mx = std::max(mx, simd::max(lp, P));

      // One softmax over [window | pool].
      float sum = 0.f;
      for (int64_t z = 0; z < L; ++z) {
        ll[z] = valid[z] ? simd::exp_nonpositive(ll[z] - mx) : 0.f;
        sum += ll[z];
      }
      simd::exp_sub(lp, P, mx);
      const float inv = 1.f / (sum + simd::sum(lp, P));
      simd::scale(ll, L, inv);
      simd::scale(lp, P, inv);

      // w_local = q_hat @ learnable_tokens + learnable_bias + A_local.
      vec_mat<D>(qh, p.lt + hd * d * Lp, Lp, Lp, d, wl);
      const float* lb = p.lb + hd * L;
      for (int64_t z = 0; z < L; ++z) wl[z] = (wl[z] + lb[z]) + ll[z];

      // Aggregate in registers: window values weighted by w_local, pooled values weighted by A_pool.
      float acc[D > 0 ? D : 1], accp[D > 0 ? D : 1];
      float* A = D > 0 ? acc : wl + Lp;  // generic d: accumulators in scratch
      float* Ap = D > 0 ? accp : wl + Lp + d;
      for (int64_t i = 0; i < d; ++i) A[i] = Ap[i] = 0.f;
      for (int64_t z = 0; z < L; ++z) {
        if (!valid[z]) continue;
        const float w = wl[z];
        const float* vv = p.v + nbr[z] * p.v_row + hd * d;
        for (int64_t i = 0; i < d; ++i) A[i] += w * vv[i];
      }
      const float* vp = p.vp + b * P * p.v_row + hd * d;
      for (int64_t q = 0; q < P; ++q) {
        const float w = lp[q];
        const float* vv = vp + q * p.v_row;
        for (int64_t i = 0; i < d; ++i) Ap[i] += w * vv[i];
      }
      for (int64_t i = 0; i < d; ++i) o[i] = (A[i] + Ap[i]) * g;
    }
  }
}

#ifdef MOH_HAVE_V8
// out[0..n) = sum_i s[i] * m[i * n + 0..n) for n a multiple of 16: 64 columns (8 independent accumulators, enough
// to hide the FMA latency) per pass, then 16-column blocks.
template <int64_t D>
MOH_SIMD_INLINE void vec_mat8(const float* __restrict s, const float* __restrict m, int64_t n, float* __restrict out) {
  using simd::v8f;
  int64_t c = 0;
  for (; c + 64 <= n; c += 64) {
    v8f a[8] = {};
    for (int64_t i = 0; i < D; ++i) {
      const v8f si = simd::splat8(s[i]);
      for (int k = 0; k < 8; ++k) a[k] += si * simd::load8(m + i * n + c + 8 * k);
    }
    for (int k = 0; k < 8; ++k) simd::store8(out + c + 8 * k, a[k]);
  }
  for (; c < n; c += 16) {
    v8f a0{}, a1{};
    for (int64_t i = 0; i < D; ++i) {
      const v8f si = simd::splat8(s[i]);
      a0 += si * simd::load8(m + i * n + c);
      a1 += si * simd::load8(m + i * n + c + 8);
    }
    simd::store8(out + c, a0);
    simd::store8(out + c + 8, a1);
  }
}

// The same computation for d = 8 * NV with the per-head vectors held in 8-float registers.
template <int NV>
MOH_SIMD_INLINE void agg_rows_v8(const AggParams& p, int64_t begin, int64_t end, float* scratch) {
  using simd::v8f;
  using simd::load8;
  using simd::splat8;
  using simd::store8;
  constexpr int64_t D = 8 * NV;
  const int64_t N = p.N, W = p.W, H = p.H, ws = p.ws, L = p.L(), Lp = p.Lp(), h = p.h, P = p.P, Pp = p.Pp();
  const int64_t C = h * D, pad = ws / 2;
  float* lp = scratch;  // [Pp] pooled logits -> probabilities
  float* wl = lp + Pp;  // [Lp] local weights
  float qh[D], qs[D], ll[kMaxWindowSlots + 16] = {};  // window logits, padded to whole 8-lane blocks
  bool valid[kMaxWindowSlots];
  int64_t nbr[kMaxWindowSlots];

  for (int64_t r = begin; r < end; ++r) {
    const int64_t b = r / N, n = r % N, pi = n / W, pj = n % W;
    const float* qrow = p.q + r * C;
    const float* grow = p.gates + r * h;
    float* orow = p.out + r * C;
    for (int64_t a = 0; a < ws; ++a)
      for (int64_t c = 0; c < ws; ++c) {
        const int64_t rr = pi + a - pad, cc = pj + c - pad, z = a * ws + c;
        valid[z] = rr >= 0 && rr < H && cc >= 0 && cc < W;
        nbr[z] = b * N + rr * W + cc;
      }
    for (int64_t hd = 0; hd < h; ++hd) {
      float* o = orow + hd * D;
      const float g = grow[hd];
      if (g == 0.f) {  // unselected routed head: the reference multiplies a finite output by exactly 0
        for (int j = 0; j < NV; ++j) store8(o + 8 * j, v8f{});
        continue;
      }
      const float* qv = qrow + hd * D;
      v8f ss{};
      for (int j = 0; j < NV; ++j) ss += load8(qv + 8 * j) * load8(qv + 8 * j);
      const float den = std::max(std::sqrt(simd::hsum8(ss)), 1e-12f);
      const float sph = p.sp[hd], sc = p.scale[n];
      for (int j = 0; j < NV; ++j) {
        const v8f qhj = load8(qv + 8 * j) / den;
        store8(qh + 8 * j, qhj);
        store8(qs + 8 * j, ((qhj + load8(p.qe + hd * D + 8 * j)) * sph) * sc);
      }

      const float* rpb = p.rpb + hd * L;
      float mx = -INFINITY;
      for (int64_t z = 0; z < L; ++z) {
        ll[z] = -INFINITY;
        if (!valid[z]) continue;
        const float* kk = p.khat + nbr[z] * C + hd * D;
        v8f acc{};
        for (int j = 0; j < NV; ++j) acc += load8(qs + 8 * j) * load8(kk + 8 * j);
        ll[z] = simd::hsum8(acc) + rpb[z];
        mx = ll[z] > mx ? ll[z] : mx;
      }
      vec_mat8<D>(qs, p.kp_t + (b * h + hd) * D * Pp, Pp, lp);
      simd::add(lp, p.bias + (hd * N + n) * P, P);
      mx = std::max(mx, simd::max(lp, P));

      for (int64_t c = 0; c < Lp; c += 8) store8(ll + c, simd::exp8_nonpositive(load8(ll + c) - mx));
      float sum = 0.f;
      for (int64_t z = 0; z < L; ++z) {
        ll[z] = valid[z] ? ll[z] : 0.f;  // masked slot: exactly 0, as exp(-inf) in the reference
        sum += ll[z];
      }
      for (int64_t c = 0; c < Pp; c += 8) store8(lp + c, simd::exp8_nonpositive(load8(lp + c) - mx));
      const float inv = 1.f / (sum + simd::sum(lp, P));

      vec_mat8<D>(qh, p.lt + hd * D * Lp, Lp, wl);
      const float* lb = p.lb + hd * L;
      v8f A[NV] = {}, Ap[NV] = {};
      for (int64_t z = 0; z < L; ++z) {
        if (!valid[z]) continue;
        const v8f w = splat8((wl[z] + lb[z]) + ll[z] * inv);
        const float* vv = p.v + nbr[z] * p.v_row + hd * D;
        for (int j = 0; j < NV; ++j) A[j] += w * load8(vv + 8 * j);
      }
      // Two interleaved accumulator sets halve the FMA dependency chains over the P pooled values.
      const float* vp = p.vp + b * P * p.v_row + hd * D;
      v8f Aq[NV] = {};
      int64_t q = 0;
      for (; q + 2 <= P; q += 2) {
        const v8f w0 = splat8(lp[q] * inv), w1 = splat8(lp[q + 1] * inv);
        for (int j = 0; j < NV; ++j) {
          Ap[j] += w0 * load8(vp + q * p.v_row + 8 * j);
          Aq[j] += w1 * load8(vp + (q + 1) * p.v_row + 8 * j);
        }
      }
      if (q < P) {
        const v8f w0 = splat8(lp[q] * inv);
        for (int j = 0; j < NV; ++j) Ap[j] += w0 * load8(vp + q * p.v_row + 8 * j);
      }
      for (int j = 0; j < NV; ++j) store8(o + 8 * j, (A[j] + (Ap[j] + Aq[j])) * g);
    }
  }
}
#endif

}  // namespace

MOH_CPU_CLONES void agg_rows_any(const AggParams& p, int64_t b, int64_t e, float* s) { agg_rows_impl<0>(p, b, e, s); }
#ifdef MOH_HAVE_V8
MOH_CPU_CLONES void agg_rows_d8(const AggParams& p, int64_t b, int64_t e, float* s) { agg_rows_v8<1>(p, b, e, s); }
MOH_CPU_CLONES void agg_rows_d24(const AggParams& p, int64_t b, int64_t e, float* s) { agg_rows_v8<3>(p, b, e, s); }
MOH_CPU_CLONES void agg_rows_d32(const AggParams& p, int64_t b, int64_t e, float* s) { agg_rows_v8<4>(p, b, e, s); }
#endif

void agg_rows(const AggParams& p, int64_t begin, int64_t end, float* scratch) {
#ifdef MOH_HAVE_V8
  switch (p.d) {
    case 24: return agg_rows_d24(p, begin, end, scratch);
    case 8: return agg_rows_d8(p, begin, end, scratch);
    case 32: return agg_rows_d32(p, begin, end, scratch);
    default: break;
  }
#endif
  agg_rows_any(p, begin, end, scratch);
}

MOH_CPU_CLONES void l2_normalize_heads(const float* in, int64_t in_row, float* out, int64_t h, int64_t d,
                                       int64_t begin, int64_t end) {
  for (int64_t r = begin; r < end; ++r)
    for (int64_t hd = 0; hd < h; ++hd) {
      const float* x = in + r * in_row + hd * d;
      float* y = out + r * h * d + hd * d;
      const float den = std::max(std::sqrt(simd::dot(x, x, d)), 1e-12f);
      for (int64_t i = 0; i < d; ++i) y[i] = x[i] / den;
    }
}

void pack_pooled_keys(const float* kv_pool, int64_t row, float* kp_t, int64_t h, int64_t d, int64_t P, int64_t Pp,
                      int64_t b) {
  for (int64_t hd = 0; hd < h; ++hd) {
    float* dst = kp_t + (b * h + hd) * d * Pp;  // [d, Pp] block of (b, hd)
    for (int64_t q = 0; q < P; ++q) {
      const float* x = kv_pool + (b * P + q) * row + hd * d;
      const float den = std::max(std::sqrt(simd::dot(x, x, d)), 1e-12f);
      for (int64_t i = 0; i < d; ++i) dst[i * Pp + q] = x[i] / den;
    }
  }
}

}  // namespace moh::vit::cpu
