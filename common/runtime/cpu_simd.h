// Small fp32 loop helpers for the fused CPU kernels (vit/aggregated_attention_kernel.cpp, dit/dit_layers.cpp; our
// own code, no official counterpart). Each loop
// keeps independent lanes (fixed-width partial sums instead of one running sum) so GCC vectorises it without
// -ffast-math; callers are compiled per ISA through MOH_CPU_CLONES and these inline into every clone.
#pragma once
#include <cstdint>
#include <cstring>

// Function multi-versioning: x86-64-v4 (AVX-512) / v3 (AVX2 + FMA) / baseline copies of a hot kernel, chosen once
// at load time (GCC ifunc). fp-contract=fast lets those clones fuse a*b+c into FMAs (rounding differs from separate
// mul/add in the last bit, well inside the fp32 parity tolerances).
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define MOH_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"), optimize("fp-contract=fast")))
#else
#define MOH_CPU_CLONES
#endif
#if defined(__GNUC__)
#define MOH_SIMD_INLINE inline __attribute__((always_inline))
#else
#define MOH_SIMD_INLINE inline
#endif

namespace moh::simd {

constexpr int kLanes = 16;

// sum_i a[i] * b[i]
MOH_SIMD_INLINE float dot(const float* a, const float* b, int64_t n) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += a[i + l] * b[i + l];
  float s = 0.f;
  for (; i + 8 <= n; i += 8)  // head dims are usually multiples of 8 (24, 72)
    for (int l = 0; l < 8; ++l) acc[l] += a[i + l] * b[i + l];
  for (int l = 0; l < kLanes; ++l) s += acc[l];
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

// y[i] += s * x[i]
MOH_SIMD_INLINE void axpy(float s, const float* __restrict x, float* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += s * x[i];
}

// y[i] += x[i]
MOH_SIMD_INLINE void add(float* __restrict y, const float* __restrict x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

// x[i] *= s
MOH_SIMD_INLINE void scale(float* x, int64_t n, float s) {
  for (int64_t i = 0; i < n; ++i) x[i] *= s;
}

// max_i x[i] (n >= 1)
MOH_SIMD_INLINE float max(const float* x, int64_t n) {
  float m[kLanes];
  for (int l = 0; l < kLanes; ++l) m[l] = x[0];
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) m[l] = x[i + l] > m[l] ? x[i + l] : m[l];
  float r = m[0];
  for (int l = 1; l < kLanes; ++l) r = m[l] > r ? m[l] : r;
  for (; i < n; ++i) r = x[i] > r ? x[i] : r;
  return r;
}

// e^x for finite x <= 0: Cody-Waite range reduction x = k ln2 + r (k rounded to nearest with the 1.5*2^23 trick)
// and a degree-6 polynomial for e^r (the classic Cephes expf coefficients), within ~2 ulp of std::exp. Inputs
// below -87.3 (including -inf) are clamped there and give ~1e-38, not 0: callers zero masked slots themselves.
MOH_SIMD_INLINE float exp_nonpositive(float x) {
  x = x > -87.3f ? x : -87.3f;
  const float k = (x * 1.44269504088896341f + 12582912.f) - 12582912.f;  // round(x / ln2), in [-126, 0]
  float r = x - k * 0.693359375f;
  r = r - k * -2.12194440e-4f;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * r * r + r + 1.f;
  const int32_t bits = (static_cast<int32_t>(k) + 127) << 23;  // 2^k as a float bit pattern
  float two_k;
  std::memcpy(&two_k, &bits, sizeof two_k);
  return y * two_k;
}

// GELU with the exact (erf) form, as torch.nn.GELU(): 0.5 x (1 + erf(x / sqrt 2)). erf by Abramowitz & Stegun 7.1.26
// (|error| <= 1.5e-7, plus fp32 rounding), so the result is within about 3e-7 * |x| of the exact GELU.
MOH_SIMD_INLINE float gelu_erf(float x) {
  const float z = x * 0.70710678118654752f;
  const float az = z < 0.f ? -z : z;
  const float t = 1.f / (1.f + 0.3275911f * az);
  const float p = ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t + 0.254829592f) * t;
  const float e = 1.f - p * exp_nonpositive(-az * az);  // erf(|z|)
  return 0.5f * x * (1.f + (z < 0.f ? -e : e));
}

// x[i] = exp(x[i] - m) for every x[i] <= m.
MOH_SIMD_INLINE void exp_sub(float* x, int64_t n, float m) {
  for (int64_t i = 0; i < n; ++i) x[i] = exp_nonpositive(x[i] - m);
}

// sum_i x[i]
MOH_SIMD_INLINE float sum(const float* x, int64_t n) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += x[i + l];
  float s = 0.f;
  for (int l = 0; l < kLanes; ++l) s += acc[l];
  for (; i < n; ++i) s += x[i];
  return s;
}

#if defined(__GNUC__)
// 8-float vectors (GCC/Clang vector extensions): one ymm register on AVX2/AVX-512, two xmm on baseline x86-64.
// Used where auto-vectorisation of short fixed-size loops fails (per-head accumulators of d = 24).
#define MOH_HAVE_V8 1
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"  // always inlined: the by-value vector ABI never applies
typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

MOH_SIMD_INLINE v8f load8(const float* p) {
  v8f r;
  std::memcpy(&r, p, sizeof r);
  return r;
}
MOH_SIMD_INLINE void store8(float* p, v8f v) { std::memcpy(p, &v, sizeof v); }
MOH_SIMD_INLINE v8f splat8(float x) { return v8f{} + x; }
MOH_SIMD_INLINE float hsum8(v8f v) { return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7])); }
MOH_SIMD_INLINE v8f max8(v8f a, v8f b) { return a > b ? a : b; }
MOH_SIMD_INLINE float hmax8(v8f v) {
  float m = v[0];
  for (int l = 1; l < 8; ++l) m = v[l] > m ? v[l] : m;
  return m;
}

// exp_nonpositive on 8 lanes (same formula and constants).
MOH_SIMD_INLINE v8f exp8_nonpositive(v8f x) {
  const v8f lo = splat8(-87.3f);
  x = x > lo ? x : lo;
  const v8f k = (x * 1.44269504088896341f + 12582912.f) - 12582912.f;
  v8f r = x - k * 0.693359375f;
  r = r - k * -2.12194440e-4f;
  v8f y = splat8(1.9875691500e-4f);
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * r * r + r + 1.f;
  const v8i bits = (__builtin_convertvector(k, v8i) + 127) << 23;
  return y * (v8f)bits;  // same-size vector cast: reinterprets the bits
}
#pragma GCC diagnostic pop
#endif

}  // namespace moh::simd
