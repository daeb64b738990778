// MoH gated attention: LibTorch reference and CUDA dispatch (see the header; the CPU head-skipping path is in
// attention_cpu.cpp).
// Mirrors the attention + gate part of SkyworkAI/MoH MoH-DiT/models.py `MoHAttention.forward`.
#include "common/moh/attention.h"

#include "common/error.h"
#include "common/moh/attention_cuda.h"
#include "common/runtime/autograd.h"

namespace moh {

void check_gated_attention_args(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                 const torch::Tensor& gates) {
  MOH_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4 && gates.dim() == 3,
            "moh_gated_attention: expected q,k,v [B,h,N,d] and gates [B,N,h]");
  MOH_CHECK(gates.size(0) == q.size(0) && gates.size(1) == q.size(2) && gates.size(2) == q.size(1),
            "moh_gated_attention: gates shape does not match q");
}

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
  check_gated_attention_args(q, k, v, gates);
#ifdef MOH_WITH_CUDA
  // The kernels are forward-only: when autograd needs this op (training), the LibTorch reference runs instead.
  if (!needs_autograd({&q, &k, &v, &gates}) && q.is_cuda() && cuda::sparse_attention_supported(q, k, v, gates))
    return cuda::moh_gated_attention(q, k, v, gates, scale);
#endif
  return moh_gated_attention_reference(q, k, v, gates, scale);
}

}  // namespace moh
