// CPU kernels of the fused MoH-DiT elementwise ops (see dit/fused_ops_cpu.h). Our own code; the LibTorch references
// in dit/fused_ops.cpp mirror the official op order and stay what the tests compare with.
#include "dit/fused_ops_cpu.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>

#include "common/runtime/autograd.h"
#include "common/runtime/cpu_simd.h"

namespace moh::dit::cpu {
namespace {

// Pointers of one call; modulation rows are [B, C] with row strides (chunks of the adaLN output).
struct RowArgs {
  const float* x = nullptr;
  const float* a = nullptr;  // null: no residual branch
  const float* gate = nullptr;
  const float* shift = nullptr;
  const float* scale = nullptr;
  int64_t gate_stride = 0, shift_stride = 0, scale_stride = 0;
  float* h = nullptr;  // written only when a is set
  float* z = nullptr;  // null: residual only
  int64_t T = 0, C = 0;
  float eps = 0.f;
};

// Rows [r0, r1) of the flattened [B*T, C] stream.
MOH_CPU_CLONES void fused_rows(const RowArgs& p, int64_t r0, int64_t r1) {
  const int64_t C = p.C;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t b = r / p.T;
    const float* hr = p.x + r * C;
    if (p.a) {
      const float* xr = hr;
      const float* ar = p.a + r * C;
      const float* g = p.gate + b * p.gate_stride;
      float* hw = p.h + r * C;
      for (int64_t c = 0; c < C; ++c) hw[c] = xr[c] + g[c] * ar[c];
      hr = hw;
    }
    if (!p.z) continue;
    const float mean = simd::sum(hr, C) / static_cast<float>(C);
    float acc[simd::kLanes] = {};  // biased variance, two-pass (as the fp64 formula of the tests)
    int64_t c = 0;
    for (; c + simd::kLanes <= C; c += simd::kLanes)
      for (int l = 0; l < simd::kLanes; ++l) {
        const float d = hr[c + l] - mean;
        acc[l] += d * d;
      }
    float ss = 0.f;
    for (int l = 0; l < simd::kLanes; ++l) ss += acc[l];
    for (; c < C; ++c) ss += (hr[c] - mean) * (hr[c] - mean);
    const float rstd = 1.f / std::sqrt(ss / static_cast<float>(C) + p.eps);
    const float* sh = p.shift + b * p.shift_stride;
    const float* sc = p.scale + b * p.scale_stride;
    float* zr = p.z + r * C;
    for (int64_t k = 0; k < C; ++k) zr[k] = (hr[k] - mean) * rstd * (1.f + sc[k]) + sh[k];
  }
}

void run_rows(const RowArgs& p, int64_t rows) {
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(p.C, 1));  // about 32k elements per task
  at::parallel_for(0, rows, grain, [&](int64_t r0, int64_t r1) { fused_rows(p, r0, r1); });
}

}  // namespace

bool fused_supported(const torch::Tensor& x, const torch::Tensor* a, std::initializer_list<const torch::Tensor*> vecs,
                     torch::ScalarType z_dtype) {
  if (z_dtype != torch::kFloat32 || needs_autograd({&x, a}) || needs_autograd(vecs)) return false;
  for (const auto* t : {&x, a})
    if (t && (!t->device().is_cpu() || t->scalar_type() != torch::kFloat32 || !t->is_contiguous())) return false;
  for (const auto* v : vecs)
    if (!v->device().is_cpu() || v->scalar_type() != torch::kFloat32 || v->stride(1) != 1) return false;
  return true;
}

ResidualAndNormed gated_residual_norm_modulate(const torch::Tensor& x, const torch::Tensor& a,
                                               const torch::Tensor& gate, const torch::Tensor& shift,
                                               const torch::Tensor& scale, double eps) {
  RowArgs p;
  p.T = x.size(1);
  p.C = x.size(2);
  p.eps = static_cast<float>(eps);
  p.x = x.data_ptr<float>();
  ResidualAndNormed r;
  if (a.defined()) {
    r.h = torch::empty(x.sizes(), x.options());
    p.a = a.data_ptr<float>();
    p.gate = gate.data_ptr<float>();
    p.gate_stride = gate.stride(0);
    p.h = r.h.data_ptr<float>();
  } else {
    r.h = x;
  }
  r.z = torch::empty(x.sizes(), x.options());
  p.z = r.z.data_ptr<float>();
  p.shift = shift.data_ptr<float>();
  p.shift_stride = shift.stride(0);
  p.scale = scale.data_ptr<float>();
  p.scale_stride = scale.stride(0);
  run_rows(p, x.size(0) * p.T);
  return r;
}

torch::Tensor gated_residual(const torch::Tensor& x, const torch::Tensor& gate, const torch::Tensor& a) {
  RowArgs p;
  p.T = x.size(1);
  p.C = x.size(2);
  p.x = x.data_ptr<float>();
  p.a = a.data_ptr<float>();
  p.gate = gate.data_ptr<float>();
  p.gate_stride = gate.stride(0);
  auto h = torch::empty(x.sizes(), x.options());
  p.h = h.data_ptr<float>();
  run_rows(p, x.size(0) * p.T);
  return h;
}

}  // namespace moh::dit::cpu
