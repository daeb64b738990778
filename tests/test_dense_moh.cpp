// [dense] The dense baselines (plain multi-head DiT / TransNeXt: gates, presets, configs) and their conversion to MoH
// (common/moh/dense_to_moh.h, moh-convert --to-moh, moh-train --init-from's loader). The dense models' parity with
// the official facebookresearch/DiT and DaiShiResearch/TransNeXt code is checked by [dit] / [vit] on the golden files
// dit_model_dense / vit_model_dense (scripts/make-dense-goldens.py).
#include <torch/torch.h>

#include <cstdio>
#include <fstream>

#include "common/moh/dense_to_moh.h"
#include "common/moh/gates.h"
#include "common/train/checkpoint.h"
#include "common/weights/safetensors.h"
#include "common/weights/state_dict.h"
#include "dit/config.h"
#include "dit/model.h"
#include "dit/moh_attention.h"
#include "dit/routes.h"
#include "parity/golden.h"
#include "tests/catch_compat.h"
#include "tests/expect_error.h"
#include "tests/test_support.h"
#include "vit/config.h"

using moh::test::contains;
using moh::test::error_message;

namespace {

// The dense DiT golden's config and weights (official facebookresearch/DiT, tiny: 3 layers of 6 heads, C = 72).
struct DenseDiT {
  moh::dit::DiTConfig cfg;
  std::vector<std::pair<std::string, torch::Tensor>> weights;  // official state_dict order
};

DenseDiT dense_dit() {
  moh::GoldenFile g(moh::test::data_path("golden/dit_model_dense.safetensors"));
  DenseDiT d;
  d.cfg = moh::dit::DiTConfig::from_json(g.config()["model"]);
  const auto w = g.weights();
  moh::dit::DiT model(d.cfg);
  for (const auto& [name, t] : moh::state_dict(*model)) d.weights.emplace_back(name, w.at(name));
  return d;
}

// The MoH target of the tiny dense DiT: layer 0 all heads shared (soft gates), layer 1 two shared + top-2 of 4,
// layer 2 top-3 of 6 routed only.
moh::dit::DiTConfig moh_target(moh::dit::DiTConfig c) {
  c.moh = true;
  c.shared_head = {6, 2, 0};
  c.routed_head = {0, 2, 3};
  c.validate("test target");
  return c;
}

std::vector<moh::AttentionLayerGates> attention_layers(const moh::dit::DiTConfig& c) {
  std::vector<moh::AttentionLayerGates> out;
  for (const auto& l : moh::dit::dit_route_layers(c)) out.push_back({l.name + ".attn", l.gates});
  return out;
}

}  // namespace

TEST_CASE("Dense gate config: no router layers, every gate exactly 1; wrong head counts are refused", "[dense]") {
  moh::MoHGateConfig cfg{4, 4, 0, false, /*dense=*/true};
  CHECK_FALSE(cfg.has_wg());
  CHECK_FALSE(cfg.has_wg0());
  CHECK_FALSE(cfg.has_wg1());
  cfg.validate("dense");
  const auto gates = moh::moh_gates(torch::randn({2, 5, 8}), cfg, {});
  REQUIRE(gates.sizes() == torch::IntArrayRef({2, 5, 4}));
  CHECK(torch::equal(gates, torch::ones({2, 5, 4})));
  const auto msg = error_message([] { moh::MoHGateConfig{4, 3, 1, false, true}.validate("layer 7"); });
  CHECK(contains(msg, "layer 7"));
  CHECK(contains(msg, "dense"));
}

TEST_CASE("Dense presets and configs: DiT_models and transnext_*, moh false survives JSON", "[dense]") {
  const auto xl = moh::dit::resolve_dit_config("dit-xl-2");
  CHECK(xl.name == "DiT-XL/2");
  CHECK_FALSE(xl.moh);
  CHECK(xl.num_heads == std::vector<int64_t>(28, 16));
  CHECK(xl.head_dim == std::vector<int64_t>(28, 72));
  CHECK(moh::dit::resolve_dit_config("MoH-DiT-XL/2-90").moh);
  const auto back = moh::dit::DiTConfig::from_json(xl.to_json());
  CHECK_FALSE(back.moh);
  CHECK(back.shared_head == xl.num_heads);
  // A dense JSON needs no shared_head / routed_head (the official DiT has none); a MoH one does.
  const nlohmann::json dense_json = {{"hidden_size", 64}, {"depth", 2}, {"num_heads", 4}, {"moh", false}};
  CHECK(moh::dit::DiTConfig::from_json(dense_json).routed_head == std::vector<int64_t>{0, 0});
  auto moh_json = dense_json;
  moh_json["moh"] = true;
  CHECK(contains(error_message([&] { moh::dit::DiTConfig::from_json(moh_json); }), "shared_head"));

  const auto micro = moh::vit::resolve_vit_config("transnext-micro");
  CHECK(micro.name == "transnext_micro");
  CHECK_FALSE(micro.moh);
  CHECK(micro.shared_head == micro.num_heads);
  const auto micro_back = moh::vit::vit_config_from_json(moh::vit::vit_config_to_json(micro));
  CHECK_FALSE(micro_back.moh);
  // A dense TransNeXt with routed heads is contradictory.
  auto bad = moh::vit::vit_config_to_json(micro);
  bad["routed_head"] = {0, 1, 0, 0};
  CHECK(contains(error_message([&] { moh::vit::vit_config_from_json(bad); }), "dense TransNeXt"));
}

TEST_CASE("Dense -> MoH: router layers in the official order, starting close to the dense model", "[dense]") {
  torch::NoGradGuard no_grad;
  const auto d = dense_dit();
  const auto target = moh_target(d.cfg);
  const auto converted = moh::add_router_layers(d.weights, attention_layers(target), /*seed=*/3);

  // Exactly the MoH model's state_dict: names, order and shapes; the dense tensors are unchanged.
  moh::dit::DiT moh_model(target);
  const auto expect = moh::state_dict(*moh_model);
  REQUIRE(converted.size() == expect.size());
  for (size_t i = 0; i < expect.size(); ++i) {
    INFO(expect[i].first);
    CHECK(converted[i].first == expect[i].first);
    CHECK(converted[i].second.sizes() == expect[i].second.sizes());
  }
  std::map<std::string, torch::Tensor> dense_by_name(d.weights.begin(), d.weights.end());
  for (const auto& [name, t] : converted)
    if (dense_by_name.count(name)) CHECK(torch::equal(t, dense_by_name.at(name)));
  moh::load_state_dict(*moh_model, {converted.begin(), converted.end()});

  // Per layer, on the same input: shared heads at gate 1, hr routed heads near gate 1 per token (summing to hr;
  // exactly 1 when hr = 1), the rest exactly 0; the all-shared layer equals the dense attention.
  moh::dit::DiT dense_model(d.cfg);
  moh::load_state_dict(*dense_model, {d.weights.begin(), d.weights.end()});
  const auto x = torch::randn({2, d.cfg.num_patches(), d.cfg.hidden_size});
  for (int64_t i = 0; i < d.cfg.depth; ++i) {
    INFO("layer " << i);
    moh::dit::MoHAttentionDebug dbg;
    const auto y_moh = moh_model->blocks[i]->as<moh::dit::DiTBlock>()->attn->forward(x, &dbg);
    const auto y_dense = dense_model->blocks[i]->as<moh::dit::DiTBlock>()->attn->forward(x);
    const auto g = dbg.gates;  // [B, N, h]
    const int64_t hs = target.shared_head[i], hr = target.routed_head[i];
    CHECK(torch::allclose(g.slice(2, 0, hs), torch::ones_like(g.slice(2, 0, hs)), 0, 1e-6));
    if (hr > 0) {
      const auto routed = g.slice(2, hs);  // [B, N, E]
      CHECK(torch::allclose(routed.sum(-1), torch::full_like(routed.sum(-1), double(hr)), 0, 1e-5));
      INFO("largest distance of a kept routed gate from 1: "
           << torch::where(routed > 0, (routed - 1).abs(), torch::zeros_like(routed)).max().item<double>());
      CHECK(torch::logical_or(routed == 0, (routed - 1).abs() < 0.5).all().item<bool>());
      CHECK(((routed > 0).sum(-1) == hr).all().item<bool>());
    }
    if (hr == 0) CHECK(torch::allclose(y_moh, y_dense, 1e-5, 1e-6));
    else CHECK_FALSE(torch::allclose(y_moh, y_dense, 1e-5, 1e-6));  // routed heads were dropped
  }
  // Routing differs between tokens from the start (random wg, no ties).
  moh::dit::MoHAttentionDebug dbg;
  moh_model->blocks[2]->as<moh::dit::DiTBlock>()->attn->forward(x, &dbg);
  const auto chosen = std::get<0>(torch::sort(dbg.topk_indices, -1));  // [B*N, hr], each token's set
  CHECK((chosen != chosen[0]).any().item<bool>());
}

TEST_CASE("Dense -> MoH refuses MoH inputs and mismatched targets", "[dense]") {
  const auto d = dense_dit();
  const auto target = moh_target(d.cfg);
  const auto converted = moh::add_router_layers(d.weights, attention_layers(target), 0);
  CHECK(contains(error_message([&] { moh::add_router_layers(converted, attention_layers(target), 0); }),
                 "already has router weights"));
  auto deeper = target;
  deeper.depth = 4;
  for (auto* v : {&deeper.num_heads, &deeper.shared_head, &deeper.routed_head, &deeper.head_dim})
    v->push_back(v->back());
  CHECK(contains(error_message([&] { moh::add_router_layers(d.weights, attention_layers(deeper), 0); }),
                 "blocks.3.attn.proj.weight"));
  CHECK(contains(error_message([&] { moh::add_router_layers(d.weights, attention_layers(d.cfg), 0); }),
                 "is dense"));
}

TEST_CASE("moh-convert --to-moh writes a loadable MoH model; --init-from's loader checks kind and format",
          "[dense]") {
  const auto d = dense_dit();
  const auto dir = moh::test::temp_dir("dense_moh");
  const auto dense_path = dir + "/dense.safetensors", moh_path = dir + "/moh.safetensors";
  moh::write_safetensors(dense_path, d.weights, {{"kind", "dit"}, {"config", d.cfg.to_json().dump()},
                                                 {"class_names", "[]"}, {"test_accuracy", "0.5"}});
  const auto target = moh_target(d.cfg);
  const auto target_path = dir + "/target.json";
  moh::dit::save_dit_config(target, target_path);
  std::string out;
  REQUIRE(moh::test::run_command(moh::test::bin_path("moh-convert") + " --to-moh " + target_path + " " + dense_path +
                                     " " + moh_path + " 2>&1",
                                 &out) == 0);
  INFO(out);
  CHECK(contains(out, "router layers added"));
  moh::SafetensorsFile f(moh_path);
  CHECK(f.meta("kind") == "dit");
  CHECK(moh::dit::DiTConfig::from_json(nlohmann::json::parse(f.meta("config"))).routed_head == target.routed_head);
  CHECK(f.meta("class_names") == "[]");   // the dense model's descriptive metadata is kept
  CHECK(f.meta("test_accuracy").empty());  // its measured numbers are not
  CHECK(contains(f.meta("moh_conversion"), "router_init"));
  CHECK_FALSE(std::ifstream(moh_path + ".dense.tmp").good());

  // The MoH model loads it (what moh-train --init-from does); a wrong kind and a checkpoint are refused.
  moh::dit::DiT model(target);
  moh::load_init_weights(moh_path, "dit", *model);
  CHECK(torch::equal(model->named_parameters()["blocks.1.attn.qkv.weight"],
                     f.tensor("blocks.1.attn.qkv.weight")));
  CHECK(contains(error_message([&] { moh::load_init_weights(moh_path, "vit", *model); }), "'dit' model"));
  moh::dit::DiT dense_model(d.cfg);
  CHECK(contains(error_message([&] { moh::load_init_weights(moh_path, "dit", *dense_model); }), "wg"));

  // A target whose widths differ is refused with the key, and nothing is written.
  auto wider = target;
  wider.hidden_size = 96;
  for (auto& hd : wider.head_dim) hd = 16;
  moh::dit::save_dit_config(wider, target_path);
  const auto bad_path = dir + "/bad.safetensors";
  CHECK(moh::test::run_command(moh::test::bin_path("moh-convert") + " --to-moh " + target_path + " " + dense_path +
                                   " " + bad_path + " 2>&1",
                               &out) == 1);
  CHECK(contains(out, "shape"));
  CHECK_FALSE(std::ifstream(bad_path).good());
  CHECK_FALSE(std::ifstream(bad_path + ".dense.tmp").good());
}
