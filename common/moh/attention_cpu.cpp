// MoH gated attention, CPU fp32 inference path with head skipping (moh_gated_attention_cpu, see attention.h).
// Mirrors the attention + gate part of SkyworkAI/MoH MoH-DiT/models.py `MoHAttention.forward` in its op order:
// (q * scale) @ k^T, softmax, @ v, then x gate; only the (token, head) pairs whose gate is non-zero are computed.
//
// One task per (image, head) on raw buffers: gather the selected query rows (scaled), two row-major GEMMs per block
// of rows (common/cpu_gemm/row_major_sgemm.h) around an in-place SIMD softmax, and a gated scatter into the output.
// k and v are read in place (their rows may be strided, as MoH-DiT's qkv split hands them over).
#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "common/cpu_gemm/row_major_sgemm.h"
#include "common/moh/attention.h"
#include "common/runtime/cpu_simd.h"

namespace moh {
namespace {

// Query rows per block: bounds the score buffer at kRowBlock * Nk floats (128 x 256 = 128 KiB for MoH-DiT at 256²).
constexpr int64_t kRowBlock = 128;

// In-place softmax of every row of a contiguous fp32 [rows, n] matrix (max-subtracted; SIMD exp within ~2 ulp).
MOH_CPU_CLONES void softmax_rows(float* p, int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r) {
    float* x = p + r * n;
    simd::exp_sub(x, n, simd::max(x, n));
    simd::scale(x, n, 1.f / simd::sum(x, n));
  }
}

bool is_f32_or_bf16(const torch::Tensor& t) {
  return t.scalar_type() == torch::kFloat32 || t.scalar_type() == torch::kBFloat16;
}

bool kernel_applies(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                    const torch::Tensor& gates) {
  for (const auto* t : {&q, &k, &v, &gates})
    if (!t->device().is_cpu() || !is_f32_or_bf16(*t)) return false;
  return q.stride(3) == 1 && k.stride(3) == 1 && v.stride(3) == 1 && k.size(2) == v.size(2) && k.size(2) > 0 &&
         q.size(3) == k.size(3) && k.size(0) == q.size(0) && v.size(0) == q.size(0) && k.size(1) == q.size(1) &&
         v.size(1) == q.size(1);
}

torch::Tensor as_f32(const torch::Tensor& t) { return t.scalar_type() == torch::kFloat32 ? t : t.to(torch::kFloat32); }

// Strided view of one (image, head) slice of a [B, h, N, d] tensor whose rows are contiguous.
struct Rows {
  const float* p;
  int64_t stride;  // floats between consecutive rows
  const float* row(int64_t i) const { return p + i * stride; }
};

Rows head_rows(const torch::Tensor& t, int64_t b, int64_t hd) {
  return {t.data_ptr<float>() + b * t.stride(0) + hd * t.stride(1), t.stride(2)};
}

}  // namespace

torch::Tensor moh_gated_attention_cpu(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                      const torch::Tensor& gates, double scale) {
  RECORD_FUNCTION("moh::gated_attention_cpu", std::vector<c10::IValue>());
  check_gated_attention_args(q, k, v, gates);
  if (!kernel_applies(q, k, v, gates)) return moh_gated_attention_reference(q, k, v, gates, scale);
  for (const auto* t : {&q, &k, &v, &gates})
    if (t->scalar_type() != torch::kFloat32)  // bf16 (mixed precision): attend in fp32, as the ViT's attention does
      return moh_gated_attention_cpu(as_f32(q), as_f32(k), as_f32(v), as_f32(gates), scale);
  const int64_t B = q.size(0), h = q.size(1), N = q.size(2), Nk = k.size(2), d = q.size(3), dv = v.size(3);
  auto out = torch::empty({B, N, h, dv}, q.options());
  const auto g = gates.contiguous();  // [B, N, h]
  const float* gp = g.data_ptr<float>();
  float* op = out.data_ptr<float>();
  const float s = static_cast<float>(scale);
  // One task per (image, head); inside a task every GEMM runs on the calling thread.
  at::parallel_for(0, B * h, 1, [&](int64_t t0, int64_t t1) {
    std::vector<int64_t> sel;                  // tokens that selected this head
    std::vector<float> qs, scores, attended;   // [rows, d], [rows, Nk], [rows, dv]
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / h, hd = t % h;
      const float* gh = gp + b * N * h + hd;  // gate of token i: gh[i * h]
      float* oh = op + b * N * h * dv + hd * dv;  // out[b, i, hd, :] at oh + i * h * dv
      sel.clear();
      for (int64_t i = 0; i < N; ++i) {
        if (gh[i * h] != 0.f) sel.push_back(i);
        else std::memset(oh + i * h * dv, 0, sizeof(float) * dv);  // skipped pairs are exactly 0
      }
      const Rows qh = head_rows(q, b, hd), kh = head_rows(k, b, hd), vh = head_rows(v, b, hd);
      for (size_t r0 = 0; r0 < sel.size(); r0 += kRowBlock) {
        const int64_t rows = std::min<int64_t>(kRowBlock, int64_t(sel.size() - r0));
        qs.resize(rows * d);
        scores.resize(rows * Nk);
        attended.resize(rows * dv);
        for (int64_t r = 0; r < rows; ++r) {  // official op order: q * scale first
          const float* src = qh.row(sel[r0 + r]);
          for (int64_t c = 0; c < d; ++c) qs[r * d + c] = src[c] * s;
        }
        // [rows, d] x [Nk, d]^T -> [rows, Nk]
        cpu_gemm::sgemm_row_major(true, rows, Nk, d, qs.data(), d, kh.p, kh.stride, scores.data(), Nk);
        softmax_rows(scores.data(), rows, Nk);
        // [rows, Nk] x [Nk, dv] -> [rows, dv]
        cpu_gemm::sgemm_row_major(false, rows, dv, Nk, scores.data(), Nk, vh.p, vh.stride, attended.data(), dv);
        for (int64_t r = 0; r < rows; ++r) {  // gate per token, scattered to out[b, token, hd, :]
          const int64_t i = sel[r0 + r];
          const float gate = gh[i * h];
          const float* src = attended.data() + r * dv;
          float* dst = oh + i * h * dv;
          for (int64_t c = 0; c < dv; ++c) dst[c] = src[c] * gate;
        }
      }
    }
  });
  return out.view({B, N, h * dv});  // [B, N, h, dv] -> [B, N, h*dv]
}

}  // namespace moh
