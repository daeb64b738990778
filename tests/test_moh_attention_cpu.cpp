// [attention] CPU head-skipping MoH attention (common/moh/attention.h moh_gated_attention_cpu) against the dense
// LibTorch reference on awkward shapes: batch 1, a single token, odd token counts, a head no token selects, a head
// every token selects, key counts different from query counts, more selected rows than one block (128); with
// oneDNN's sgemm and with LibTorch's mm (MOH_CPU_GEMM=torch), on 1 and 2 threads; other dtypes take the reference.
#include <torch/torch.h>

#include <ATen/Parallel.h>

#include "common/cpu_gemm/onednn_linear.h"
#include "common/moh/attention.h"
#include "tests/catch_compat.h"

TEST_CASE("Head-skipping CPU MoH attention equals the dense reference", "[attention]") {
  struct Shape {
    int64_t B, h, N, Nk, d;
  };
  const Shape shapes[] = {{1, 1, 1, 1, 8}, {2, 6, 7, 7, 64}, {1, 5, 33, 33, 16}, {3, 4, 17, 9, 72}, {2, 3, 300, 260, 24}};
  torch::manual_seed(7);
  torch::NoGradGuard no_grad;
  const int threads_before = at::get_num_threads();
  const bool onednn_before = moh::cpu_gemm::enabled();
  const auto gemm = GENERATE(0, 1);  // 0: the build's default GEMM (oneDNN when built with it), 1: LibTorch's mm
  const auto threads = GENERATE(1, 2);
  moh::cpu_gemm::set_enabled(gemm == 0 && onednn_before);
  at::set_num_threads(threads);
  INFO("gemm " << (gemm == 0 ? "default" : "torch") << ", threads " << threads);
  for (const auto& s : shapes) {
    auto q = torch::randn({s.B, s.h, s.N, s.d}), k = torch::randn({s.B, s.h, s.Nk, s.d});
    auto v = torch::randn({s.B, s.h, s.Nk, s.d});
    auto gates = torch::rand({s.B, s.N, s.h}) * torch::rand({s.B, s.N, s.h}).gt(0.4).to(torch::kFloat32);
    if (s.h > 2) {
      gates.select(2, 0).fill_(0.7f);  // every token selects head 0
      gates.select(2, 1).zero_();      // no token selects head 1
    }
    const double scale = 1.0 / std::sqrt(static_cast<double>(s.d));
    INFO("B=" << s.B << " h=" << s.h << " N=" << s.N << " Nk=" << s.Nk << " d=" << s.d);
    const auto ref = moh::moh_gated_attention_reference(q, k, v, gates, scale);
    const auto ours = moh::moh_gated_attention_cpu(q, k, v, gates, scale);
    REQUIRE(ours.sizes() == ref.sizes());
    const double err = (ours - ref).abs().max().item<double>();
    CAPTURE(err);
    CHECK(err <= 1e-5 + 1e-4 * ref.abs().max().item<double>());
    const auto zero_slots = gates.eq(0).unsqueeze(-1).expand({s.B, s.N, s.h, s.d}).reshape({s.B, s.N, s.h * s.d});
    CHECK(ours.masked_select(zero_slots).abs().sum().item<double>() == 0.0);  // skipped pairs are exactly 0
  }
  // Strided q/k/v views, as MoH-DiT's qkv split hands them over: [B, N, 3, h, d] -> 3 x [B, h, N, d].
  auto qkv = torch::randn({2, 10, 3, 4, 8}).permute({2, 0, 3, 1, 4});
  auto gates = torch::rand({2, 10, 4}) * torch::rand({2, 10, 4}).gt(0.5).to(torch::kFloat32);
  const auto ref = moh::moh_gated_attention_reference(qkv[0], qkv[1], qkv[2], gates, 0.35);
  const auto ours = moh::moh_gated_attention_cpu(qkv[0], qkv[1], qkv[2], gates, 0.35);
  CHECK((ours - ref).abs().max().item<double>() <= 1e-5 + 1e-4 * ref.abs().max().item<double>());
  moh::cpu_gemm::set_enabled(onednn_before);
  at::set_num_threads(threads_before);
}

TEST_CASE("Head-skipping CPU MoH attention: bf16 in fp32, other dtypes and layouts to the reference", "[attention]") {
  torch::manual_seed(3);
  torch::NoGradGuard no_grad;
  auto q = torch::randn({2, 3, 9, 8}, torch::kFloat64), k = torch::randn({2, 3, 9, 8}, torch::kFloat64);
  auto v = torch::randn({2, 3, 9, 8}, torch::kFloat64);
  auto gates = torch::rand({2, 9, 3}, torch::kFloat64) * torch::rand({2, 9, 3}).gt(0.5).to(torch::kFloat64);
  CHECK(torch::equal(moh::moh_gated_attention_cpu(q, k, v, gates, 0.3),
                     moh::moh_gated_attention_reference(q, k, v, gates, 0.3)));
  // fp32 with a last dimension that is not contiguous
  auto every_other = [](const torch::Tensor& t) {  // [2, 3, 9, 16] -> [2, 3, 9, 8], last stride 2
    return t.to(torch::kFloat32).repeat_interleave(2, 3).slice(3, 0, 16, 2);
  };
  auto qt = every_other(q), kt = every_other(k), vt = every_other(v), gf = gates.to(torch::kFloat32);
  REQUIRE(qt.stride(3) == 2);
  CHECK(torch::equal(moh::moh_gated_attention_cpu(qt, kt, vt, gf, 0.3),
                     moh::moh_gated_attention_reference(qt, kt, vt, gf, 0.3)));
  // bf16 q/k/v/gates (MoH-DiT under mixed precision): attended in fp32, so equal to fp32 on the rounded inputs
  auto qb = q.to(torch::kBFloat16), kb = k.to(torch::kBFloat16), vb = v.to(torch::kBFloat16);
  auto gb = gates.to(torch::kBFloat16);
  const auto mixed = moh::moh_gated_attention_cpu(qb, kb, vb, gb, 0.3);
  CHECK(mixed.scalar_type() == torch::kFloat32);
  const auto ref32 = moh::moh_gated_attention_reference(qb.to(torch::kFloat32), kb.to(torch::kFloat32),
                                                        vb.to(torch::kFloat32), gb.to(torch::kFloat32), 0.3);
  CHECK((mixed - ref32).abs().max().item<double>() <= 1e-5 + 1e-4 * ref32.abs().max().item<double>());
  CHECK_THROWS_WITH(moh::moh_gated_attention_cpu(q[0], k, v, gates, 0.3), Catch::Contains("q,k,v"));
}
