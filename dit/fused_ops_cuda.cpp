// Torch glue of the fused MoH-DiT elementwise kernel (see dit/fused_ops_cuda.h). Checks tensors, fills
// kernels::DiTFusedParams and launches on the current stream; every launch's error becomes moh::Error.
// Compiled only when Torch has CUDA. UNRUN on a GPU so far.
#include "dit/fused_ops_cuda.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include <cstdlib>
#include <cstring>

#include "common/error.h"
#include "common/moh/kernel_dtype_cuda.h"
#include "kernels/moh_dit_fused.h"

namespace moh::cuda {

bool dit_fused_kernel_enabled() {
  const char* env = std::getenv("MOH_DIT_FUSED_KERNEL");
  return env != nullptr && std::strcmp(env, "1") == 0;
}

bool dit_fused_supported(const torch::Tensor& x, const torch::Tensor* a,
                         std::initializer_list<const torch::Tensor*> vecs) {
  kernels::DType dx, dl;
  if (!x.is_cuda() || x.dim() != 3 || x.stride(2) != 1 || !kernel_dtype(x.scalar_type(), &dx)) return false;
  if (vecs.size() == 0) return false;
  const auto low = (*vecs.begin())->scalar_type();
  if (!kernel_dtype(low, &dl) || (low != x.scalar_type() && x.scalar_type() != torch::kFloat32)) return false;
  if (x.size(0) > 0 && x.size(1) > 1 && x.stride(0) != x.size(1) * x.stride(1)) return false;  // rows b*T + t
  if (a) {
    if (!a->is_cuda() || a->device() != x.device() || a->scalar_type() != low || a->sizes() != x.sizes() ||
        a->stride(2) != 1 || (a->size(1) > 1 && a->stride(0) != a->size(1) * a->stride(1)))
      return false;
  }
  const int64_t row = (*vecs.begin())->stride(0);
  for (const auto* v : vecs)
    if (!v->is_cuda() || v->device() != x.device() || v->scalar_type() != low || v->dim() != 2 || v->stride(1) != 1 ||
        v->stride(0) != row)
      return false;
  return true;
}

DiTFusedResult dit_gated_residual_norm_modulate(const torch::Tensor& x, const torch::Tensor& a,
                                                const torch::Tensor& gate, const torch::Tensor& shift,
                                                const torch::Tensor& scale, torch::ScalarType z_dtype, double eps) {
  const bool residual = a.defined();
  MOH_CHECK(residual == gate.defined(), "moh::cuda::dit_gated_residual_norm_modulate: a and gate go together");
  const bool ok = residual ? dit_fused_supported(x, &a, {&gate, &shift, &scale})
                           : dit_fused_supported(x, nullptr, {&shift, &scale});
  MOH_CHECK(ok && z_dtype == shift.scalar_type(), "moh::cuda::dit_gated_residual_norm_modulate: unsupported inputs x ",
            x.sizes(), " ", x.scalar_type(), ", shift ", shift.sizes(), " ", shift.scalar_type(), ", z dtype ", z_dtype,
            " (see dit/fused_ops_cuda.h)");
  const c10::cuda::CUDAGuard guard(x.device());
  DiTFusedResult r;
  r.z = torch::empty(x.sizes(), x.options().dtype(z_dtype));  // [B, T, C], every element written
  if (residual) r.h = torch::empty(x.sizes(), x.options());     // [B, T, C]
  if (x.numel() == 0) return r;
  kernels::DiTFusedParams p;
  p.x = x.data_ptr();
  p.x_row = x.stride(1);
  if (residual) {
    p.a = a.data_ptr();
    p.a_row = a.stride(1);
    p.gate = gate.data_ptr();
    p.h = r.h.data_ptr();
  }
  p.shift = shift.data_ptr();
  p.scale = scale.data_ptr();
  p.vec_row = shift.stride(0);
  p.z = r.z.data_ptr();
  p.B = x.size(0);
  p.T = x.size(1);
  p.C = x.size(2);
  p.eps = static_cast<float>(eps);
  kernel_dtype(x.scalar_type(), &p.x_dtype);
  kernel_dtype(z_dtype, &p.low_dtype);
  const cudaError_t err =
      kernels::dit_gated_residual_norm_modulate(p, at::cuda::getCurrentCUDAStream().stream());
  MOH_CHECK(err == cudaSuccess, "MoH-DiT fused residual/LayerNorm/modulate kernel failed: ", cudaGetErrorString(err));
  return r;
}

}  // namespace moh::cuda
