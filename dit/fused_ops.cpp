// Fused elementwise ops of the MoH-DiT block: LibTorch references and the dispatch to the CPU kernels
// (dit/fused_ops_cpu.h) and the CUDA kernel (see dit/fused_ops.h).
#include "dit/fused_ops.h"

#include "common/cpu_gemm/onednn_linear.h"
#include "common/error.h"
#include "common/runtime/autograd.h"
#include "common/runtime/precision.h"
#include "dit/fused_ops_cpu.h"
#ifdef MOH_WITH_CUDA
#include "dit/fused_ops_cuda.h"
#endif

namespace moh::dit {
namespace {

torch::Tensor plain_layer_norm(const torch::Tensor& x) {
  return torch::layer_norm(x, {x.size(-1)}, /*weight=*/{}, /*bias=*/{}, kDiTNormEps);
}

// modulate(z, shift, scale) = z * (1 + scale[:, None]) + shift[:, None], as one addcmul.
torch::Tensor modulate(const torch::Tensor& z, const torch::Tensor& shift, const torch::Tensor& scale) {
  return torch::addcmul(shift.unsqueeze(1), z, scale.unsqueeze(1) + 1);  // [B, 1, C] + [B, T, C] * [B, 1, C]
}

void check_shapes(const torch::Tensor& x, const torch::Tensor* a, std::initializer_list<const torch::Tensor*> vecs) {
  MOH_CHECK(x.dim() == 3, "DiT fused op: x must be [B, T, C], got ", x.sizes());
  if (a) MOH_CHECK(a->sizes() == x.sizes(), "DiT fused op: branch ", a->sizes(), " does not match x ", x.sizes());
  for (const auto* v : vecs)
    MOH_CHECK(v->dim() == 2 && v->size(0) == x.size(0) && v->size(1) == x.size(2), "DiT fused op: modulation ",
              v->sizes(), " must be [B, C] = [", x.size(0), ", ", x.size(2), "]");
}

#ifdef MOH_WITH_CUDA
bool use_kernel(const torch::Tensor& x, const torch::Tensor* a, std::initializer_list<const torch::Tensor*> vecs,
                torch::ScalarType z_dtype) {
  if (!x.is_cuda() || z_dtype != (*vecs.begin())->scalar_type() || !cuda::dit_fused_kernel_enabled()) return false;
  if (needs_autograd({&x, a}) || needs_autograd(vecs)) return false;  // forward-only kernel: training keeps the reference
  return cuda::dit_fused_supported(x, a, vecs);
}
#endif

}  // namespace

torch::Tensor layer_norm_modulate_reference(const torch::Tensor& x, const torch::Tensor& shift,
                                            const torch::Tensor& scale, torch::ScalarType z_dtype) {
  return as_dtype(modulate(plain_layer_norm(x), shift, scale), z_dtype);
}

ResidualAndNormed gated_residual_norm_modulate_reference(const torch::Tensor& x, const torch::Tensor& a,
                                                         const torch::Tensor& gate, const torch::Tensor& shift,
                                                         const torch::Tensor& scale, torch::ScalarType z_dtype) {
  ResidualAndNormed r;
  r.h = gated_residual_reference(x, gate, a);  // fp32 x + bf16 branch stays fp32
  r.z = layer_norm_modulate_reference(r.h, shift, scale, z_dtype);
  return r;
}

torch::Tensor layer_norm_modulate(const torch::Tensor& x, const torch::Tensor& shift, const torch::Tensor& scale,
                                  torch::ScalarType z_dtype) {
  check_shapes(x, nullptr, {&shift, &scale});
#ifdef MOH_WITH_CUDA
  if (use_kernel(x, nullptr, {&shift, &scale}, z_dtype))
    return cuda::dit_gated_residual_norm_modulate(x, {}, {}, shift, scale, z_dtype, kDiTNormEps).z;
#endif
  if (cpu::fused_supported(x, nullptr, {&shift, &scale}, z_dtype))
    return cpu::gated_residual_norm_modulate(x, {}, {}, shift, scale, kDiTNormEps).z;
  return layer_norm_modulate_reference(x, shift, scale, z_dtype);
}

ResidualAndNormed gated_residual_norm_modulate(const torch::Tensor& x, const torch::Tensor& a,
                                               const torch::Tensor& gate, const torch::Tensor& shift,
                                               const torch::Tensor& scale, torch::ScalarType z_dtype) {
  check_shapes(x, &a, {&gate, &shift, &scale});
#ifdef MOH_WITH_CUDA
  if (use_kernel(x, &a, {&gate, &shift, &scale}, z_dtype)) {
    auto r = cuda::dit_gated_residual_norm_modulate(x, a, gate, shift, scale, z_dtype, kDiTNormEps);
    return {r.h, r.z};
  }
#endif
  if (cpu::fused_supported(x, &a, {&gate, &shift, &scale}, z_dtype))
    return cpu::gated_residual_norm_modulate(x, a, gate, shift, scale, kDiTNormEps);
  return gated_residual_norm_modulate_reference(x, a, gate, shift, scale, z_dtype);
}

torch::Tensor gated_residual_reference(const torch::Tensor& x, const torch::Tensor& gate, const torch::Tensor& a) {
  return torch::addcmul(x, gate.unsqueeze(1), a);  // x + gate[:, None] * a
}

torch::Tensor gated_residual(const torch::Tensor& x, const torch::Tensor& gate, const torch::Tensor& a) {
  check_shapes(x, &a, {&gate});
  if (cpu::fused_supported(x, &a, {&gate}, x.scalar_type())) return cpu::gated_residual(x, gate, a);
  return gated_residual_reference(x, gate, a);
}

torch::Tensor fc1_gelu_reference(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  return torch::gelu(torch::linear(as_dtype(x, w.scalar_type()), w, b), "tanh");
}

torch::Tensor stack_adaln_weights(const std::vector<torch::Tensor>& weights) {
  MOH_CHECK(!weights.empty(), "stack_adaln_weights: no blocks");
  return torch::cat(weights, 0);  // n x [6C, C] -> [n*6C, C]
}

torch::Tensor stack_adaln_biases(const std::vector<torch::Tensor>& biases) {
  MOH_CHECK(!biases.empty(), "stack_adaln_biases: no blocks");
  return torch::cat(biases, 0);  // n x [6C] -> [n*6C]
}

std::vector<torch::Tensor> batched_adaln(const torch::Tensor& silu_c, const torch::Tensor& w_stacked,
                                         const torch::Tensor& b_stacked, int64_t blocks) {
  MOH_CHECK(blocks > 0 && w_stacked.dim() == 2 && w_stacked.size(0) % blocks == 0 &&
                w_stacked.size(1) == silu_c.size(-1),
            "batched_adaln: stacked weights ", w_stacked.sizes(), " do not split into ", blocks, " blocks of [6C, ",
            silu_c.size(-1), "]");
  auto all = cpu_gemm::linear(silu_c, w_stacked, b_stacked);  // [B, n*6C]
  return all.chunk(blocks, 1);  // n x [B, 6C] (strided views)
}

}  // namespace moh::dit
