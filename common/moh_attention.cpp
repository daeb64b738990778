#include "common/moh_attention.h"

#include "common/error.h"
#include "common/moh_attention_cuda.h"

namespace moh {

torch::Tensor moh_gated_attention_reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                            const torch::Tensor& gates, double scale) {
  const int64_t B = q.size(0), h = q.size(1), N = q.size(2), d = v.size(3);
  // Same op order as the official fallback path: (q * scale) @ k^T, softmax, @ v.
  auto attn = torch::softmax(torch::matmul(q * scale, k.transpose(-2, -1)), -1);  // [B, h, N, Nk]
  auto out = torch::matmul(attn, v).transpose(1, 2);                               // [B, h, N, d] -> [B, N, h, d]
  out = out * gates.unsqueeze(-1).to(out.scalar_type());                          // gate per (token, head)
  return out.reshape({B, N, h * d});                                               // [B, N, h, d] -> [B, N, h*d]
}

torch::Tensor moh_gated_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                  const torch::Tensor& gates, double scale) {
  MOH_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4 && gates.dim() == 3,
            "moh_gated_attention: expected q,k,v [B,h,N,d] and gates [B,N,h]");
  MOH_CHECK(gates.size(0) == q.size(0) && gates.size(1) == q.size(2) && gates.size(2) == q.size(1),
            "moh_gated_attention: gates shape does not match q");
#ifdef MOH_WITH_CUDA
  // The kernels are forward-only: when autograd needs this op (training), the LibTorch reference runs instead.
  const bool needs_grad = torch::GradMode::is_enabled() &&
                          (q.requires_grad() || k.requires_grad() || v.requires_grad() || gates.requires_grad());
  if (!needs_grad && q.is_cuda() && cuda::sparse_attention_supported(q, k, v, gates))
    return cuda::moh_gated_attention(q, k, v, gates, scale);
#endif
  return moh_gated_attention_reference(q, k, v, gates, scale);
}

bool moh_cuda_kernels_available() {
#ifdef MOH_WITH_CUDA
  return torch::cuda::is_available();
#else
  return false;
#endif
}

}  // namespace moh
