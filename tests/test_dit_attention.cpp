// [attention] MoH-DiT MoHAttention (dit/moh_attention.h) against every dit_attn_* golden written by the official
// MoH-DiT/models.py MoHAttention (output, gates, router probabilities and top-k indices, fp32), and the
// configurations the official code cannot build (dit_attn_expected_errors.json) are rejected with a clear message.
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "parity/golden.h"
#include "common/weights/state_dict.h"
#include "dit/moh_attention.h"
#include "dit/parity.h"
#include "tests/catch_compat.h"
#include "tests/parity_assert.h"
#include "tests/expect_error.h"
#include "tests/test_support.h"

using moh::test::require_checks_pass;

TEST_CASE("MoH-DiT attention matches every dit_attn golden (output, gates, router top-k)", "[attention]") {
  const auto files = moh::test::data_glob("golden/dit_attn_*.safetensors");
  REQUIRE(!files.empty());
  const auto runner = moh::dit::model_parity_runners().at("dit_attn");
  torch::NoGradGuard no_grad;
  for (const auto& f : files) {
    moh::GoldenFile g(f);
    REQUIRE(g.family() == "dit_attn");
    const auto checks = runner(g);
    std::set<std::string> names;
    for (auto& c : checks) names.insert(c.name);
    CHECK(names.count("out.y") == 1);
    CHECK(names.count("mid.gates") == 1);
    const bool routed = g.config().at("routed_head").get<int64_t>() > 0;
    CHECK(names.count("mid.router_topk_indices") == (routed ? 1u : 0u));
    CHECK(names.count("mid.router_probs") == (routed ? 1u : 0u));
    require_checks_pass(checks, f);
    // Router decisions are discrete: the indices must be identical, not merely close.
    for (auto& c : checks)
      if (c.name == "mid.router_topk_indices") {
        INFO(f << ": top-k indices differ");
        CHECK(torch::equal(c.ours.to(torch::kLong), c.ref.to(torch::kLong)));
      }
  }
}

TEST_CASE("MoH-DiT attention registers exactly the official parameters of each golden", "[attention]") {
  for (const auto& f : moh::test::data_glob("golden/dit_attn_*.safetensors")) {
    moh::GoldenFile g(f);
    const auto& c = g.config();
    moh::dit::MoHAttentionOptions o;
    o.dim = c.at("dim").get<int64_t>();
    o.num_heads = c.at("num_heads").get<int64_t>();
    o.shared_head = c.at("shared_head").get<int64_t>();
    o.routed_head = c.at("routed_head").get<int64_t>();
    o.head_dim = c.at("head_dim").is_null() ? 0 : c.at("head_dim").get<int64_t>();
    o.qkv_bias = c.at("qkv_bias").get<bool>();
    o.qk_norm = c.at("qk_norm").get<bool>();
    moh::dit::MoHAttention attn(o);
    CHECK(attn->head_dim() == c.at("resolved_head_dim").get<int64_t>());
    std::map<std::string, std::vector<int64_t>> ours, ref;
    for (auto& [n, t] : moh::state_dict(*attn)) ours[n] = t.sizes().vec();
    for (auto& [n, t] : g.weights()) ref[n] = t.sizes().vec();
    INFO(f);
    CHECK(ours == ref);
  }
}

TEST_CASE("MoH-DiT attention rejects the configurations the official code cannot run", "[attention]") {
  std::ifstream in(moh::test::data_path("golden/dit_attn_expected_errors.json"));
  REQUIRE(in.good());
  nlohmann::json j;
  in >> j;
  const int64_t dim = j.at("dim").get<int64_t>();
  REQUIRE(!j.at("cases").empty());
  for (auto it = j.at("cases").begin(); it != j.at("cases").end(); ++it) {
    const auto& c = it.value().at("config");
    moh::dit::MoHAttentionOptions o;
    o.dim = dim;
    o.num_heads = c.at("num_heads").get<int64_t>();
    o.shared_head = c.at("shared_head").get<int64_t>();
    o.routed_head = c.at("routed_head").get<int64_t>();
    o.head_dim = c.at("head_dim").is_null() ? 0 : c.at("head_dim").get<int64_t>();
    const std::string msg = moh::test::error_message([&] { moh::dit::MoHAttention attn(o); });
    INFO(it.key() << ": " << msg);
    // The message names the layer configuration and the missing wg_1 the official code would call.
    CHECK(moh::test::contains(msg, "shared_head=" + std::to_string(o.shared_head)));
    CHECK(moh::test::contains(msg, "wg_1"));
  }
}

TEST_CASE("MoH-DiT attention equals an independent contiguous per-head computation (odd token count)", "[attention]") {
  // Our path uses strided q/k/v views of one GEMM; the reference copies them contiguous and gates explicitly.
  moh::dit::MoHAttentionOptions o{24, 4, 2, 1, 0, true, false};
  moh::dit::MoHAttention attn(o);
  moh::dit::init_random_weights(*attn, 7);
  torch::NoGradGuard no_grad;
  auto x = torch::randn({2, 7, 24}, torch::TensorOptions().dtype(torch::kFloat32));
  moh::dit::MoHAttentionDebug dbg;
  auto y = attn->forward(x, &dbg);
  // Independent path: contiguous q, k, v per head and an explicit gate multiply.
  auto qkv = torch::linear(x, attn->qkv->weight, attn->qkv->bias).view({2, 7, 3, 4, 6}).permute({2, 0, 3, 1, 4})
                 .contiguous();  // [3, B, h, N, d]
  auto att = torch::softmax(torch::matmul(qkv[0], qkv[1].transpose(-2, -1)) / std::sqrt(6.0), -1);
  auto o_h = torch::matmul(att, qkv[2]).transpose(1, 2) * dbg.gates.unsqueeze(-1);  // [B, N, h, d]
  auto ref = torch::linear(o_h.reshape({2, 7, 24}), attn->proj->weight, attn->proj->bias);
  CHECK(torch::allclose(y, ref, 1e-5, 1e-5));
}
