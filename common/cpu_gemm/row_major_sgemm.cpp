// Single-threaded row-major fp32 GEMM (see row_major_sgemm.h): oneDNN's dnnl_sgemm, LibTorch's mm as the fallback.
#include "common/cpu_gemm/row_major_sgemm.h"

#include <torch/torch.h>

#include "common/cpu_gemm/onednn_linear.h"

#ifdef MOH_WITH_ONEDNN
#include <oneapi/dnnl/dnnl.h>
#endif

namespace moh::cpu_gemm {
namespace {

void torch_sgemm(bool trans_b, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                 int64_t ldb, float* C, int64_t ldc) {
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  auto a = torch::from_blob(const_cast<float*>(A), {M, K}, {lda, 1}, f32);
  auto b = trans_b ? torch::from_blob(const_cast<float*>(B), {N, K}, {ldb, 1}, f32).t()  // [N, K] -> [K, N] view
                   : torch::from_blob(const_cast<float*>(B), {K, N}, {ldb, 1}, f32);
  auto c = torch::from_blob(C, {M, N}, {ldc, 1}, f32);
  torch::mm_out(c, a, b);
}

}  // namespace

void sgemm_row_major(bool trans_b, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                     int64_t ldb, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
#ifdef MOH_WITH_ONEDNN
  // Inside an OpenMP parallel region (our callers' at::parallel_for) oneDNN runs the call on this thread.
  if (enabled() && K > 0 &&
      dnnl_sgemm('N', trans_b ? 'T' : 'N', M, N, K, 1.f, A, lda, B, ldb, 0.f, C, ldc) == dnnl_success)
    return;
#endif
  torch_sgemm(trans_b, M, N, K, A, lda, B, ldb, C, ldc);
}

}  // namespace moh::cpu_gemm
