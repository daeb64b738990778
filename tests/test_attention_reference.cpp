// CPU checks of the MoH attention references that the CUDA kernels are tested against (kernels/README.md):
// moh::moh_gated_attention_reference vs an independent per-(batch, head, token) loop in double precision, and
// router edge cases of moh::moh_gates (spec/moh-attention.md §2, §7): gate-sum rules per branch, top-k ties,
// a routed head no token picks, every token picking the same heads, saturated router probabilities.
// Shapes come from the official MoH-DiT attention goldens (tests/data/golden/dit_attn_*.safetensors).
#include <torch/torch.h>

#include <cmath>
#include <string>
#include <vector>

#include "parity/golden.h"
#include "common/moh/attention.h"
#include "common/moh/gates.h"
#include "tests/catch_compat.h"
#include "tests/test_support.h"

namespace {

// out[b, t, head*d + i] = gate[b, t, head] * sum_j softmax_j(scale * q_t . k_j) v_j[i], with plain loops.
torch::Tensor loop_reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                             const torch::Tensor& gates, double scale) {
  const auto qd = q.to(torch::kFloat64).contiguous(), kd = k.to(torch::kFloat64).contiguous();
  const auto vd = v.to(torch::kFloat64).contiguous(), gd = gates.to(torch::kFloat64).contiguous();
  const int64_t B = q.size(0), h = q.size(1), N = q.size(2), Nk = k.size(2), d = q.size(3);
  auto out = torch::zeros({B, N, h * d}, torch::kFloat64);
  auto Q = qd.accessor<double, 4>(), K = kd.accessor<double, 4>(), V = vd.accessor<double, 4>();
  auto G = gd.accessor<double, 3>();
  auto O = out.accessor<double, 3>();
  std::vector<double> s(Nk);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t hd = 0; hd < h; ++hd)
      for (int64_t t = 0; t < N; ++t) {
        double mx = -INFINITY;
        for (int64_t j = 0; j < Nk; ++j) {
          double dot = 0;
          for (int64_t i = 0; i < d; ++i) dot += Q[b][hd][t][i] * K[b][hd][j][i];
          s[j] = dot * scale;
          mx = std::max(mx, s[j]);
        }
        double den = 0;
        for (int64_t j = 0; j < Nk; ++j) den += (s[j] = std::exp(s[j] - mx));
        for (int64_t i = 0; i < d; ++i) {
          double acc = 0;
          for (int64_t j = 0; j < Nk; ++j) acc += s[j] * V[b][hd][j][i];
          O[b][t][hd * d + i] = G[b][t][hd] * acc / den;
        }
      }
  return out;
}

std::vector<std::string> dit_attention_goldens() {
  auto files = moh::test::data_glob("golden/dit_attn_*.safetensors");
  REQUIRE_FALSE(files.empty());
  return files;
}

moh::MoHGateConfig gate_config(const nlohmann::json& c) {
  moh::MoHGateConfig cfg;
  cfg.num_heads = c.at("num_heads").get<int64_t>();
  cfg.shared_head = c.at("shared_head").get<int64_t>();
  cfg.routed_head = c.at("routed_head").get<int64_t>();
  return cfg;
}

moh::MoHGateWeights random_gate_weights(const moh::MoHGateConfig& cfg, int64_t C, double w_scale) {
  moh::MoHGateWeights w;
  if (cfg.has_wg()) w.wg = torch::randn({cfg.experts(), C}) * w_scale;
  if (cfg.has_wg0()) w.wg_0 = torch::randn({2, C}) * w_scale;
  if (cfg.has_wg1()) w.wg_1 = torch::randn({cfg.shared_head, C}) * w_scale;
  return w;
}

// Per token: shared gates sum to hs*w0, routed to hr*w1, w0 + w1 = 2 (mixed); hr (routed only); hs (shared only).
// Routed gates: at most hr non-zero per token, all >= 0.
void check_gate_sums(const torch::Tensor& gates, const moh::MoHGateConfig& cfg, const std::string& what) {
  INFO(what << ": h=" << cfg.num_heads << " hs=" << cfg.shared_head << " hr=" << cfg.routed_head);
  const auto g = gates.to(torch::kFloat64).reshape({-1, cfg.num_heads});  // [B, N, h] -> [B*N, h]
  REQUIRE(g.min().item<double>() >= 0.0);
  const auto shared = g.slice(1, 0, cfg.shared_head).sum(1);
  const auto routed = g.slice(1, cfg.shared_head, cfg.num_heads);
  torch::Tensor mix;  // per token: should be 2 (mixed), hr (routed only) or hs (shared only)
  double want = 0;
  if (cfg.routed_head == 0) {
    mix = shared, want = static_cast<double>(cfg.shared_head);
  } else if (cfg.shared_head == 0) {
    mix = routed.sum(1), want = static_cast<double>(cfg.routed_head);
  } else {
    mix = shared / cfg.shared_head + routed.sum(1) / cfg.routed_head, want = 2.0;
  }
  const double err = (mix - want).abs().max().item<double>();
  INFO("max |sum rule - " << want << "| = " << err);
  CHECK(err < 1e-5 * want);
  if (cfg.routed_head > 0) {
    const auto nonzero = routed.ne(0).sum(1);
    CHECK(nonzero.max().item<int64_t>() <= cfg.routed_head);
  }
}

}  // namespace

TEST_CASE("moh_gated_attention_reference equals an independent per-head loop", "[attention]") {
  torch::manual_seed(1234);
  for (const auto& path : dit_attention_goldens()) {
    moh::GoldenFile gf(path);
    const auto& c = gf.config();
    const int64_t B = c.at("batch").get<int64_t>(), h = c.at("num_heads").get<int64_t>();
    const int64_t d = c.at("resolved_head_dim").get<int64_t>();
    const double scale = c.at("scale").get<double>();
    const auto golden_gates = gf.get("mid.gates");  // [B, N, h], zeros where a routed head was not picked
    // The golden token count, plus odd and single-token cases with random gates that contain exact zeros.
    for (int64_t N : {golden_gates.size(1), int64_t{1}, int64_t{7}}) {
      INFO(path << " B=" << B << " h=" << h << " N=" << N << " d=" << d);
      auto q = torch::randn({B, h, N, d}), k = torch::randn({B, h, N, d}), v = torch::randn({B, h, N, d});
      auto gates = N == golden_gates.size(1)
                       ? golden_gates
                       : torch::rand({B, N, h}) * torch::rand({B, N, h}).gt(0.4).to(torch::kFloat32);
      const auto ours = moh::moh_gated_attention_reference(q, k, v, gates, scale);
      const auto ref = loop_reference(q, k, v, gates, scale);
      REQUIRE(ours.sizes() == ref.sizes());
      const double err = (ours.to(torch::kFloat64) - ref).abs().max().item<double>();
      const double tol = 1e-5 + 1e-4 * ref.abs().max().item<double>();
      INFO("max abs err " << err << " (tol " << tol << ")");
      CHECK(err <= tol);
      // Skipped (token, head) slots must be exactly zero (spec §7: 0 * O).
      const auto zero_slots = gates.eq(0).unsqueeze(-1).expand({B, N, h, d}).reshape({B, N, h * d});
      CHECK(ours.masked_select(zero_slots).abs().sum().item<double>() == 0.0);
      // The public entry point and the head-skipping CPU path, each against the independent loop.
      for (const auto& other : {moh::moh_gated_attention(q, k, v, gates, scale),
                                moh::moh_gated_attention_cpu(q, k, v, gates, scale)}) {
        const double e = (other.to(torch::kFloat64) - ref).abs().max().item<double>();
        INFO("entry point max abs err " << e << " (tol " << tol << ")");
        CHECK(e <= tol);
      }
    }
  }
}

TEST_CASE("MoH gates: sum rules and top-k count on the official goldens and every branch", "[attention]") {
  // The official gates (golden mid.gates) obey the rules, and so do ours on the same inputs.
  for (const auto& path : dit_attention_goldens()) {
    moh::GoldenFile gf(path);
    const auto cfg = gate_config(gf.config());
    check_gate_sums(gf.get("mid.gates"), cfg, path + " (official)");
    moh::MoHGateWeights w;
    if (gf.has("wg.weight")) w.wg = gf.get("wg.weight");
    if (gf.has("wg_0.weight")) w.wg_0 = gf.get("wg_0.weight");
    if (gf.has("wg_1.weight")) w.wg_1 = gf.get("wg_1.weight");
    const auto ours = moh::moh_gates(gf.get("in.x"), cfg, w);
    check_gate_sums(ours, cfg, path + " (ours)");
    const auto cmp = moh::compare_tensors(ours, gf.get("mid.gates"), gf.tolerance());
    INFO(path << ": max abs diff vs official gates " << cmp.max_abs << " " << cmp.note);
    CHECK(cmp.pass);
  }
  // Branches the goldens do not all cover, with random weights: the ViT-only hs == 1 constant gate too.
  torch::manual_seed(99);
  const int64_t B = 2, N = 33, C = 40;
  const auto u = torch::randn({B, N, C});
  struct Case { int64_t h, hs, hr; bool single; };
  for (const Case& cs : {Case{24, 16, 3, false}, Case{6, 0, 2, false}, Case{5, 5, 0, false}, Case{4, 1, 2, true},
                         Case{8, 2, 6, false}}) {
    moh::MoHGateConfig cfg;
    cfg.num_heads = cs.h, cfg.shared_head = cs.hs, cfg.routed_head = cs.hr, cfg.allow_single_shared = cs.single;
    cfg.validate("test");
    const auto g = moh::moh_gates(u, cfg, random_gate_weights(cfg, C, 0.5));
    REQUIRE(g.sizes() == torch::IntArrayRef({B, N, cs.h}));
    check_gate_sums(g, cfg, "random weights");
    if (cs.hr > 0) {  // with continuous scores exactly hr routed heads are on per token
      const auto on = g.reshape({B * N, cs.h}).slice(1, cs.hs, cs.h).ne(0).sum(1);  // [B, N, h] -> [B*N, h]
      CHECK(on.min().item<int64_t>() == cs.hr);
    }
  }
}

TEST_CASE("MoH gates: a routed head no token picks, all tokens picking the same heads, ties, saturation",
          "[attention]") {
  torch::manual_seed(7);
  const int64_t B = 2, N = 17, C = 16;
  moh::MoHGateConfig cfg;
  cfg.num_heads = 6, cfg.shared_head = 2, cfg.routed_head = 2;  // E = 4 candidates
  const auto u = torch::rand({B, N, C}) + 0.5;                  // positive rows: the signs below decide
  auto w = random_gate_weights(cfg, C, 0.1);

  SECTION("candidate 1 is never picked, candidates 0 and 3 always are") {
    w.wg[1].fill_(-2.0);
    w.wg[0].fill_(2.0);
    w.wg[3].fill_(1.5);
    const auto g = moh::moh_gates(u, cfg, w);
    CHECK(g.select(2, cfg.shared_head + 1).abs().max().item<double>() == 0.0);
    CHECK(g.select(2, cfg.shared_head + 0).min().item<double>() > 0.0);
    CHECK(g.select(2, cfg.shared_head + 3).min().item<double>() > 0.0);
    check_gate_sums(g, cfg, "forced routing");
    // The attention reference then writes exact zeros for the never-picked head.
    const int64_t d = 8;
    auto q = torch::randn({B, cfg.num_heads, N, d}), k = torch::randn_like(q), v = torch::randn_like(q);
    const auto y = moh::moh_gated_attention_reference(q, k, v, g, 0.35);  // [B, N, h*d]
    const int64_t head = cfg.shared_head + 1;
    CHECK(y.slice(2, head * d, head * d + d).abs().max().item<double>() == 0.0);
    CHECK(y.slice(2, 0, d).abs().max().item<double>() > 0.0);
  }
  SECTION("tied router probabilities still select exactly hr heads and keep the sum rule") {
    w.wg[2].copy_(w.wg[1]);  // candidates 1 and 2 have identical probabilities for every token
    w.wg[1].add_(1.0);
    w.wg[2].add_(1.0);  // ... and they are the two largest, so both are picked
    auto g = moh::moh_gates(u, cfg, w);
    check_gate_sums(g, cfg, "tie, both picked");
    CHECK(torch::equal(g.select(2, cfg.shared_head + 1), g.select(2, cfg.shared_head + 2)));
    cfg.routed_head = 1;  // now the tie decides: exactly one of the two, with the full routed weight
    g = moh::moh_gates(u, cfg, w);
    check_gate_sums(g, cfg, "tie, one picked");
    const auto picked = g.slice(2, cfg.shared_head + 1, cfg.shared_head + 3).ne(0).sum(2);  // [B, N]
    CHECK(picked.min().item<int64_t>() == 1);
    CHECK(picked.max().item<int64_t>() == 1);
  }
  SECTION("saturated probabilities: a picked head can get an exact 0 gate; gates stay finite") {
    w.wg.zero_();
    w.wg[0].fill_(200.0);  // softmax = [1, 0, 0, 0] in fp32: the second pick is a zero-probability tie
    const auto g = moh::moh_gates(u, cfg, w);
    CHECK(torch::isfinite(g).all().item<bool>());
    const auto routed = g.slice(2, cfg.shared_head, cfg.num_heads);
    CHECK(routed.ne(0).sum(2).max().item<int64_t>() == 1);
    check_gate_sums(g, cfg, "saturated");
  }
}
