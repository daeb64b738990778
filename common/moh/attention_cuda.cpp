// Torch glue of the MoH CUDA kernels: checks tensors, fills the kernels' plain params structs (pointers, element
// strides, sizes) and launches on the current CUDA stream. Compiled only when Torch has CUDA (MOH_WITH_CUDA).
// The math mirrors MoH-DiT/models.py `MoHAttention.forward` (see common/moh/attention.h, common/moh/gates.h).
#include "common/moh/attention_cuda.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include <cstdlib>
#include <cstring>

#include "common/error.h"
#include "common/moh/kernel_dtype_cuda.h"
#include "kernels/moh_attention.h"
#include "kernels/moh_router.h"

namespace moh::cuda {
namespace {

void check_cuda(cudaError_t err, const char* what) {
  MOH_CHECK(err == cudaSuccess, what, " failed: ", cudaGetErrorString(err),
            " (an invalid-value error means the kernel refused its arguments: see kernels/moh_attention.h)");
}

int compute_capability(const torch::Device& dev) {
  const cudaDeviceProp* prop = at::cuda::getDeviceProperties(dev.index());
  return prop->major * 10 + prop->minor;
}

void copy_strides(const torch::Tensor& t, int64_t* dst) {
  for (int64_t i = 0; i < t.dim(); ++i) dst[i] = t.stride(i);
}

}  // namespace

AttnKernelChoice attn_kernel_from_env() {
  const char* env = std::getenv("MOH_ATTN_KERNEL");
  if (env == nullptr || *env == '\0' || std::strcmp(env, "auto") == 0) return AttnKernelChoice::kAuto;
  if (std::strcmp(env, "simple") == 0) return AttnKernelChoice::kSimple;
  if (std::strcmp(env, "tc") == 0) return AttnKernelChoice::kTensorCore;
  throw Error(std::string("MOH_ATTN_KERNEL='") + env + "' is not one of auto, simple, tc: unset it or pick one");
}

bool sparse_attention_supported(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                const torch::Tensor& gates) {
  kernels::DType dt;
  if (!q.is_cuda() || !k.is_cuda() || !v.is_cuda() || !gates.is_cuda()) return false;
  if (k.device() != q.device() || v.device() != q.device() || gates.device() != q.device()) return false;
  if (!kernel_dtype(q.scalar_type(), &dt) || k.scalar_type() != q.scalar_type() || v.scalar_type() != q.scalar_type())
    return false;
  if (!gates.is_floating_point()) return false;
  if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4 || gates.dim() != 3) return false;
  const int64_t d = q.size(3);
  if (d < 1 || d > kernels::kSimpleMaxHeadDim || k.size(3) != d || v.size(3) != d) return false;
  if (k.size(0) != q.size(0) || v.size(0) != q.size(0) || k.size(1) != q.size(1) || v.size(1) != q.size(1) ||
      v.size(2) != k.size(2))
    return false;
  return q.size(0) <= 65535 && q.size(1) <= 65535;  // grid y/z limits
}

torch::Tensor moh_gated_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                  const torch::Tensor& gates, double scale) {
  return moh_gated_attention(q, k, v, gates, scale, attn_kernel_from_env());
}

torch::Tensor moh_gated_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                  const torch::Tensor& gates, double scale, AttnKernelChoice which,
                                  torch::Tensor out) {
  MOH_CHECK(sparse_attention_supported(q, k, v, gates),
            "moh::cuda::moh_gated_attention: unsupported inputs (need CUDA q,k,v [B,h,N,d] of one fp32/fp16/bf16 "
            "dtype on one device, d <= ", kernels::kSimpleMaxHeadDim, ", gates [B,N,h]); got q ", q.sizes(), " ",
            q.scalar_type(), ", k ", k.sizes(), ", v ", v.sizes(), ", gates ", gates.sizes());
  const int64_t B = q.size(0), h = q.size(1), Nq = q.size(2), Nk = k.size(2), d = q.size(3);
  MOH_CHECK(gates.size(0) == B && gates.size(1) == Nq && gates.size(2) == h, "moh::cuda::moh_gated_attention: gates ",
            gates.sizes(), " do not match q ", q.sizes(), " (expected [B, N, h])");
  const c10::cuda::CUDAGuard guard(q.device());
  if (out.defined()) {
    MOH_CHECK(out.device() == q.device() && out.scalar_type() == q.scalar_type() && out.is_contiguous() &&
                  out.dim() == 3 && out.size(0) == B && out.size(1) == Nq && out.size(2) == h * d,
              "moh::cuda::moh_gated_attention: `out` must be a contiguous [", B, ", ", Nq, ", ", h * d, "] ",
              q.scalar_type(), " tensor on ", q.device(), ", got ", out.sizes(), " ", out.scalar_type(), " on ",
              out.device());
  } else {
    out = torch::empty({B, Nq, h * d}, q.options());  // [B, Nq, h*d], every slot written by the kernel
  }
  if (out.numel() == 0) return out;
  MOH_CHECK(Nk > 0, "moh::cuda::moh_gated_attention: no keys (k has N = 0)");
  // The reference multiplies the gates in the output dtype; a no-op when they already match.
  const auto g = gates.to(q.scalar_type());

  kernels::SparseAttentionParams p;
  p.q = q.data_ptr();
  p.k = k.data_ptr();
  p.v = v.data_ptr();
  copy_strides(q, p.q_stride);
  copy_strides(k, p.k_stride);
  copy_strides(v, p.v_stride);
  p.gates = g.data_ptr();
  copy_strides(g, p.g_stride);
  p.out = out.data_ptr();
  p.B = B;
  p.h = h;
  p.Nq = Nq;
  p.Nk = Nk;
  p.d = d;
  p.scale = static_cast<float>(scale);
  kernel_dtype(q.scalar_type(), &p.dtype);

  const int sm = compute_capability(q.device());
  kernels::AttnKernel kind = kernels::AttnKernel::kAuto;
  if (which == AttnKernelChoice::kSimple) kind = kernels::AttnKernel::kSimple;
  if (which == AttnKernelChoice::kTensorCore) {
    MOH_CHECK(kernels::tensor_core_attention_supported(p, sm),
              "moh::cuda::moh_gated_attention: the tensor-core kernel (MOH_ATTN_KERNEL=tc) needs bf16/fp16, head dim "
              "a multiple of 8 up to ", kernels::kTensorCoreMaxHeadDim, ", unit d stride, 16-byte aligned rows and "
              "sm_80+; got ", q.scalar_type(), " d=", d, " q strides ", q.strides(), " on sm_", sm,
              ". Use MOH_ATTN_KERNEL=auto or simple");
    kind = kernels::AttnKernel::kTensorCore;
  }
  check_cuda(kernels::sparse_attention_forward(p, kind, sm, at::cuda::getCurrentCUDAStream().stream()),
             "MoH sparse attention kernel");
  return out;
}

void selected_token_lists(const torch::Tensor& gates, torch::Tensor* counts, torch::Tensor* indices) {
  kernels::CompactParams p;
  MOH_CHECK(gates.is_cuda() && gates.dim() == 3 && kernel_dtype(gates.scalar_type(), &p.dtype),
            "moh::cuda::selected_token_lists: need CUDA fp32/fp16/bf16 gates [B, N, h], got ", gates.sizes(), " ",
            gates.scalar_type(), " on ", gates.device());
  const c10::cuda::CUDAGuard guard(gates.device());
  const int64_t B = gates.size(0), N = gates.size(1), h = gates.size(2);
  auto iopt = gates.options().dtype(torch::kInt32);
  *counts = torch::zeros({B, h}, iopt);
  *indices = torch::full({B, h, N}, -1, iopt);
  if (gates.numel() == 0) return;
  p.gates = gates.data_ptr();
  copy_strides(gates, p.g_stride);
  p.B = B;
  p.N = N;
  p.h = h;
  p.counts = counts->data_ptr<int32_t>();
  p.indices = indices->data_ptr<int32_t>();
  check_cuda(kernels::compact_selected_tokens(p, at::cuda::getCurrentCUDAStream().stream()),
             "MoH token-list kernel");
}

StackedRouterWeights stack_router_weights(const MoHGateConfig& cfg, const MoHGateWeights& w,
                                          const torch::TensorOptions& options) {
  cfg.validate("moh::cuda::stack_router_weights");
  const int64_t E = cfg.experts(), hs = cfg.shared_head;
  MOH_CHECK(E <= kernels::kRouterMaxWidth && hs <= kernels::kRouterMaxWidth, "moh::cuda::moh_router: at most ",
            kernels::kRouterMaxWidth, " routed candidates and shared heads (got ", E, " and ", hs, ")");
  const torch::Tensor& any = cfg.has_wg() ? w.wg : w.wg_1;
  MOH_CHECK(any.defined() && any.dim() == 2, "moh::cuda::stack_router_weights: missing router weight ",
            cfg.has_wg() ? "wg" : "wg_1");
  const int64_t C = any.size(1);
  StackedRouterWeights out;
  std::vector<torch::Tensor> ws;
  int col = 0;
  auto add = [&](const torch::Tensor& wt, int64_t rows, const char* name, int* col_out) {
    MOH_CHECK(wt.defined() && wt.dim() == 2 && wt.size(0) == rows && wt.size(1) == C, "moh::cuda::moh_router: ",
              name, " must be [", rows, ", ", C, "], got ", wt.defined() ? wt.sizes() : torch::IntArrayRef{});
    ws.push_back(wt.to(options));
    *col_out = col;
    col += static_cast<int>(rows);
  };
  if (cfg.has_wg()) add(w.wg, E, "wg", &out.col_wg);
  if (cfg.has_wg0()) add(w.wg_0, 2, "wg_0", &out.col_wg0);
  if (cfg.has_wg1()) add(w.wg_1, hs, "wg_1", &out.col_wg1);
  // Zero rows pad L to a multiple of 8: 16-byte aligned logit rows keep cuBLAS on its vectorised kernels
  // (measured on an H200: [16384,1152]x[1152,26] 24.8 us, x[1152,32] 18.4 us).
  if (col % 8 != 0) ws.push_back(torch::zeros({8 - col % 8, C}, options));
  out.w = torch::cat(ws, 0);  // [L, C]
  return out;
}

RouterResult moh_router(const torch::Tensor& u, const MoHGateConfig& cfg, const MoHGateWeights& w,
                        bool want_token_lists) {
  return moh_router(u, cfg, stack_router_weights(cfg, w, u.options()), want_token_lists);
}

RouterResult moh_router(const torch::Tensor& u, const MoHGateConfig& cfg, const StackedRouterWeights& w,
                        bool want_token_lists) {
  kernels::RouterParams p;
  MOH_CHECK(u.is_cuda() && u.dim() == 3 && kernel_dtype(u.scalar_type(), &p.dtype),
            "moh::cuda::moh_router: need CUDA fp32/fp16/bf16 u [B, N, C], got ", u.sizes(), " ", u.scalar_type(),
            " on ", u.device());
  const int64_t B = u.size(0), N = u.size(1), C = u.size(2);
  MOH_CHECK(w.w.defined() && w.w.dim() == 2 && w.w.size(1) == C && w.w.scalar_type() == u.scalar_type() &&
                w.w.device() == u.device(),
            "moh::cuda::moh_router: stacked router weights must be [L, ", C, "] ", u.scalar_type(), " on ",
            u.device(), " (build them with stack_router_weights)");
  const c10::cuda::CUDAGuard guard(u.device());
  const auto flat = u.reshape({B * N, C});                         // [B, N, C] -> [B*N, C]
  const auto logits = torch::matmul(flat, w.w.t()).contiguous();  // [B*N, L]
  RouterResult res;
  res.gates = torch::empty({B, N, cfg.num_heads}, u.options());    // [B, N, h]
  if (B * N > 0) {
    p.logits = logits.data_ptr();
    p.logit_stride = logits.stride(0);
    p.col_wg = w.col_wg;
    p.col_wg0 = w.col_wg0;
    p.col_wg1 = w.col_wg1;
    p.T = B * N;
    p.h = static_cast<int>(cfg.num_heads);
    p.hs = static_cast<int>(cfg.shared_head);
    p.hr = static_cast<int>(cfg.routed_head);
    p.eps = static_cast<float>(finfo_eps(u.scalar_type()));  // the one table shared with moh::moh_gates
    p.gates = res.gates.data_ptr();
    check_cuda(kernels::moh_router_forward(p, at::cuda::getCurrentCUDAStream().stream()), "MoH router kernel");
  }
  if (want_token_lists) selected_token_lists(res.gates, &res.counts, &res.indices);
  return res;
}

}  // namespace moh::cuda
