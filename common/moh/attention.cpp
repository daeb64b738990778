// MoH gated attention: LibTorch reference, CPU head-skipping inference path and CUDA dispatch (see the header).
// Mirrors the attention + gate part of SkyworkAI/MoH MoH-DiT/models.py `MoHAttention.forward`.
#include "common/moh/attention.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <vector>

#include "common/error.h"
#include "common/moh/attention_cuda.h"
#include "common/runtime/cpu_simd.h"

namespace moh {
namespace {

// In-place softmax of every row of a contiguous fp32 [rows, n] matrix (max-subtracted; SIMD exp within ~2 ulp).
MOH_CPU_CLONES void softmax_rows(float* p, int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r) {
    float* x = p + r * n;
    simd::exp_sub(x, n, simd::max(x, n));
    simd::scale(x, n, 1.f / simd::sum(x, n));
  }
}

// softmax(scores, -1) in place where the SIMD rows apply (fp32, contiguous), else LibTorch's.
torch::Tensor softmax_last_dim(torch::Tensor scores) {
  if (scores.scalar_type() != torch::kFloat32 || !scores.is_contiguous() || scores.dim() != 2 || scores.size(1) == 0)
    return torch::softmax(scores, -1);
  softmax_rows(scores.data_ptr<float>(), scores.size(0), scores.size(1));
  return scores;
}

}  // namespace

torch::Tensor moh_gated_attention_reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                            const torch::Tensor& gates, double scale) {
  const int64_t B = q.size(0), h = q.size(1), N = q.size(2), d = v.size(3);
  // Same op order as the official fallback path: (q * scale) @ k^T, softmax, @ v.
  auto attn = torch::softmax(torch::matmul(q * scale, k.transpose(-2, -1)), -1);  // [B, h, N, Nk]
  auto out = torch::matmul(attn, v).transpose(1, 2);                               // [B, h, N, d] -> [B, N, h, d]
  out = out * gates.unsqueeze(-1).to(out.scalar_type());                          // gate per (token, head)
  return out.reshape({B, N, h * d});                                               // [B, N, h, d] -> [B, N, h*d]
}

torch::Tensor moh_gated_attention_cpu(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                      const torch::Tensor& gates, double scale) {
  RECORD_FUNCTION("moh::gated_attention_cpu", std::vector<c10::IValue>());
  const int64_t B = q.size(0), h = q.size(1), N = q.size(2), d = v.size(3);
  auto out = torch::zeros({B, N, h, d}, q.options());  // skipped (token, head) pairs stay exactly 0
  const auto g = gates.to(q.scalar_type()).contiguous();
  // One task per (image, head); inside a task every op runs on one thread (ATen and OpenMP BLAS do not nest).
  at::parallel_for(0, B * h, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / h, hd = t % h;
      auto gh = g[b].select(1, hd);                             // [N] gates of this head
      auto idx = gh.nonzero().view({-1});                       // tokens that selected it
      const int64_t n_sel = idx.size(0);
      if (n_sel == 0) continue;
      const bool all = n_sel == N;
      auto qh = q[b][hd];                                       // [N, d] (strided rows: no copy)
      auto qs = (all ? qh : qh.index_select(0, idx)) * scale;  // [n_sel, d], official op order (q * scale) @ k^T
      auto attn = softmax_last_dim(torch::mm(qs, k[b][hd].t()));           // [n_sel, Nk]
      auto o = torch::mm(attn, v[b][hd]);                                  // [n_sel, d]
      o.mul_((all ? gh : gh.index_select(0, idx)).unsqueeze(1));           // gate per token
      auto dst = out[b].select(1, hd);                                     // [N, d] view of out[b, :, hd, :]
      if (all) dst.copy_(o);
      else dst.index_copy_(0, idx, o);
    }
  });
  return out.view({B, N, h * d});  // [B, N, h, d] -> [B, N, h*d]
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

}  // namespace moh
