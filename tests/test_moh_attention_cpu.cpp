// [attention] CPU head-skipping MoH attention (common/moh/attention.h moh_gated_attention_cpu) against the dense
// LibTorch reference on awkward shapes: batch 1, a single token, odd token counts, a head no token selects, a head
// every token selects, and key counts different from query counts.
#include <torch/torch.h>

#include "common/moh/attention.h"
#include "tests/catch_compat.h"

TEST_CASE("Head-skipping CPU MoH attention equals the dense reference", "[attention]") {
  struct Shape {
    int64_t B, h, N, Nk, d;
  };
  const Shape shapes[] = {{1, 1, 1, 1, 8}, {2, 6, 7, 7, 64}, {1, 5, 33, 33, 16}, {3, 4, 17, 9, 72}, {2, 3, 256, 256, 24}};
  torch::manual_seed(7);
  torch::NoGradGuard no_grad;
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
}
