// [attention] MoH-ViT attention modules (vit/attention.h) against every vit_attn_* golden written by the official
// MoH-ViT/attention.py and attention_native.py, plus the CPB tables and window buffers they depend on.
#include <torch/torch.h>

#include "parity/golden.h"
#include "tests/catch_compat.h"
#include "tests/parity_assert.h"
#include "tests/test_support.h"
#include "vit/attention.h"
#include "vit/parity.h"

using moh::test::require_checks_pass;

TEST_CASE("MoH-ViT attention matches every vit_attn golden", "[attention]") {
  const auto files = moh::test::data_glob("golden/vit_attn_*.safetensors");
  REQUIRE(!files.empty());
  const auto runner = moh::vit::parity_runners().at("vit_attn");
  torch::NoGradGuard no_grad;
  for (const auto& f : files) {
    moh::GoldenFile g(f);
    REQUIRE(g.family() == "vit_attn");
    const auto checks = runner(g);
    // Each file must at least compare the output, the gates and the position tables we rebuilt ourselves.
    std::set<std::string> names;
    for (auto& c : checks) names.insert(c.name);
    for (const char* must : {"out.y", "mid.gates", "in.relative_pos_index", "in.relative_coords_table",
                             "buf.seq_length_scale"})
      CHECK(names.count(must) == 1);
    if (g.config().at("routed_head").get<int>() > 0) CHECK(names.count("mid.router_topk_indices") == 1);
    require_checks_pass(checks, f);
  }
}

TEST_CASE("Aggregated attention window gather puts slot a*ws+b at pixel (i+a-p, j+b-p)", "[attention]") {
  // Tokens carry their own flat index, so every gathered slot says where it came from.
  const int64_t H = 4, W = 5, ws = 3, N = H * W;
  auto t = torch::arange(1, N + 1, torch::kFloat32).view({1, N, 1, 1});  // [B=1, N, h=1, d=1]
  auto win = moh::vit::local_windows(t, H, W, ws);                       // [1, 1, N, 1, 9]
  auto mask = moh::vit::local_window_padding_mask(H, W, ws);             // [N, 9]
  REQUIRE(win.sizes() == torch::IntArrayRef({1, 1, N, 1, ws * ws}));
  for (int64_t i = 0; i < H; ++i)
    for (int64_t j = 0; j < W; ++j)
      for (int64_t a = 0; a < ws; ++a)
        for (int64_t b = 0; b < ws; ++b) {
          const int64_t r = i + a - 1, c = j + b - 1;
          const bool inside = r >= 0 && r < H && c >= 0 && c < W;
          const float got = win[0][0][i * W + j][0][a * ws + b].item<float>();
          CHECK(got == (inside ? float(r * W + c + 1) : 0.f));
          CHECK(mask[i * W + j][a * ws + b].item<bool>() == !inside);
        }
}

// ---------------------------------------------------------------------------------------------------------------
// Fused CPU kernel (vit/aggregated_attention_cpu.h) against the unfold reference kept in AggregatedAttention.

namespace {

struct AggShape {
  int64_t B, dim, heads, H, W, ws, pool_h, pool_w, hs, hr;
  const char* what;
};

moh::vit::AggregatedAttention make_agg(const AggShape& s, uint64_t seed) {
  moh::vit::AttentionOptions o;
  o.dim = s.dim;
  o.num_heads = s.heads;
  o.input_resolution = {s.H, s.W};
  o.shared_head = s.hs;
  o.routed_head = s.hr;
  o.window_size = s.ws;
  o.sr_ratio = 2;
  o.pool_size = {s.pool_h, s.pool_w};
  torch::manual_seed(seed);
  moh::vit::AggregatedAttention m(o);
  torch::NoGradGuard no_grad;
  for (auto& p : m->parameters()) p.normal_(0, 0.3);  // every parameter non-trivial (learnable_bias starts at 0)
  m->eval();
  return m;
}

}  // namespace

TEST_CASE("Fused CPU aggregated attention matches the unfold reference on awkward shapes", "[attention]") {
  const AggShape shapes[] = {
      {1, 72, 3, 5, 7, 3, 2, 3, 3, 0, "d=24 (released head dim), batch 1, odd grid, all heads shared"},
      {2, 15, 3, 4, 6, 5, 2, 2, 1, 1, "d=5 (generic kernel), window 5, one shared head + top-1"},
      {3, 32, 4, 9, 9, 3, 3, 3, 0, 2, "d=8, routed only"},
      {2, 48, 2, 3, 4, 7, 1, 2, 2, 0, "d=24, window 7 larger than the 3x4 grid"},
      {1, 64, 2, 6, 5, 3, 5, 5, 0, 1, "d=32, pool grid = almost the token grid (P=25)"},
      {2, 192, 8, 8, 8, 3, 7, 7, 2, 4, "d=24, S-80 stage-3-like gates, P=49"},
  };
  torch::NoGradGuard no_grad;
  uint64_t seed = 100;
  for (const auto& s : shapes) {
    INFO(s.what);
    auto m = make_agg(s, seed++);
    const auto tables = moh::vit::relative_position_cpb({s.H, s.W}, {s.pool_h, s.pool_w}, {s.H, s.W});
    auto x = torch::randn({s.B, s.H * s.W, s.dim});
    moh::vit::AttentionDebug d_ref, d_fused;
    auto ref = m->forward_reference(x, s.H, s.W, tables, &d_ref);
    auto fused = m->forward_fused_cpu(x, s.H, s.W, tables, &d_fused);
    REQUIRE(fused.sizes() == ref.sizes());
    const double err = (fused - ref).abs().max().item<double>();
    const double tol = 1e-5 + 1e-4 * ref.abs().max().item<double>();
    CAPTURE(err, tol);
    CHECK(err <= tol);
    CHECK(torch::equal(d_ref.gates, d_fused.gates));
  }
}

TEST_CASE("Fused aggregated attention: heads no token selects and heads every token selects", "[attention]") {
  // wg = 0: all router logits tie, so every token picks the same routed heads and the others are never selected.
  const AggShape s{2, 48, 6, 6, 8, 3, 3, 4, 2, 2, "ties"};
  auto m = make_agg(s, 7);
  torch::NoGradGuard no_grad;
  m->gate.wg->weight.zero_();
  const auto tables = moh::vit::relative_position_cpb({s.H, s.W}, {s.pool_h, s.pool_w}, {s.H, s.W});
  auto x = torch::randn({s.B, s.H * s.W, s.dim});
  moh::vit::AttentionDebug dbg;
  auto ref = m->forward_reference(x, s.H, s.W, tables);
  auto fused = m->forward_fused_cpu(x, s.H, s.W, tables, &dbg);
  const auto selected = (dbg.gates != 0).to(torch::kInt64).sum(torch::IntArrayRef{0, 1});  // [h]: tokens per head
  CHECK((selected == 0).any().item<bool>());
  CHECK((selected == s.B * s.H * s.W).sum().item<int64_t>() == s.hs + s.hr);
  CHECK((fused - ref).abs().max().item<double>() <= 1e-5 + 1e-4 * ref.abs().max().item<double>());
}

TEST_CASE("AggregatedAttention::forward runs the fused kernel only for CPU fp32 inference", "[attention]") {
  const AggShape s{1, 72, 3, 5, 7, 3, 2, 3, 3, 0, "dispatch"};
  auto m = make_agg(s, 11);
  const auto tables = moh::vit::relative_position_cpb({s.H, s.W}, {s.pool_h, s.pool_w}, {s.H, s.W});
  auto x = torch::randn({s.B, s.H * s.W, s.dim});
  {
    torch::NoGradGuard no_grad;
    CHECK(torch::equal(m->forward(x, s.H, s.W, tables), m->forward_fused_cpu(x, s.H, s.W, tables)));
    m->set_use_fused_cpu(false);
    CHECK(torch::equal(m->forward(x, s.H, s.W, tables), m->forward_reference(x, s.H, s.W, tables)));
    m->set_use_fused_cpu(true);
  }
  // Gradients on and parameters that want them (training): the autograd-capable reference, and backward works.
  auto y = m->forward(x, s.H, s.W, tables);
  REQUIRE(y.requires_grad());
  y.sum().backward();
  CHECK(m->learnable_tokens.grad().defined());
  {
    torch::NoGradGuard no_grad;
    CHECK(torch::equal(y, m->forward_reference(x, s.H, s.W, tables)));
  }
}
