// [vit] MoH-TransNeXt model (vit/model.h): the tiny official model golden (logits, every intermediate, every
// buffer), every preset's parameter names/shapes/order against its official state_dict manifest, and the config
// (JSON round trip, aliases, rejected configurations).
#include <torch/torch.h>

#include <fstream>
#include <set>

#include "common/error.h"
#include "parity/golden.h"
#include "common/weights/state_dict.h"
#include "tests/catch_compat.h"
#include "tests/parity_assert.h"
#include "tests/test_support.h"
#include "vit/config.h"
#include "vit/model.h"
#include "vit/parity.h"

namespace {

using moh::test::read_json;

std::vector<int64_t> shape_of(const torch::Tensor& t) { return t.sizes().vec(); }

}  // namespace

TEST_CASE("Tiny MoH-TransNeXt matches the official model golden", "[vit]") {
  const auto files = moh::test::data_glob("golden/vit_model*.safetensors");
  REQUIRE(!files.empty());
  const auto runner = moh::vit::parity_runners().at("vit_model");
  torch::NoGradGuard no_grad;
  for (const auto& f : files) {
    moh::GoldenFile g(f);
    REQUIRE(g.family() == "vit_model");
    const auto checks = runner(g);
    const auto compared = moh::test::require_checks_pass(checks, f);
    // Every output, intermediate and buffer the file holds was compared.
    for (const char* prefix : {"out.", "mid.", "buf."})
      for (const auto& n : g.names_with_prefix(prefix)) {
        INFO(n);
        CHECK(compared.count(n) == 1);
      }
  }
}

TEST_CASE("Every MoH-ViT preset has the official state_dict names, shapes and order", "[vit]") {
  const auto manifests = moh::test::data_glob("golden/manifests/*transnext_*.json");
  REQUIRE(manifests.size() >= 8);  // 4 MoH-ViT + 4 dense TransNeXt
  std::set<std::string> seen;
  for (const auto& path : manifests) {
    const auto m = read_json(path);
    const std::string name = m.at("name");
    INFO(path);
    auto cfg = moh::vit::vit_preset(name);
    seen.insert(cfg.name);
    const auto& mc = m.at("config");
    cfg.img_size = mc.at("img_size");
    cfg.num_classes = mc.at("num_classes");
    CHECK(cfg.embed_dims == mc.at("embed_dims").get<std::vector<int64_t>>());
    CHECK(cfg.num_heads == mc.at("num_heads").get<std::vector<int64_t>>());
    CHECK(cfg.depths == mc.at("depths").get<std::vector<int64_t>>());
    CHECK(cfg.shared_head == mc.at("shared_head").get<std::vector<int64_t>>());
    CHECK(cfg.routed_head == mc.at("routed_head").get<std::vector<int64_t>>());
    CHECK(cfg.sr_ratios == mc.at("sr_ratios").get<std::vector<int64_t>>());
    CHECK(cfg.norm_eps == mc.at("norm_eps").get<double>());
    CHECK(cfg.pretrain() == mc.at("pretrain_size").get<int64_t>());
    for (int s = 0; s < moh::vit::kNumStages; ++s) {
      CHECK(cfg.mlp_hidden(s) == mc.at("mlp_hidden")[s].get<int64_t>());
      const auto& ws = mc.at("window_size")[s];
      CHECK(cfg.window_size[s] == (ws.is_null() ? 0 : ws.get<int64_t>()));
      CHECK(cfg.aggregated(s) == (mc.at("attention_class")[s] == "AggregatedAttention"));
    }

    moh::vit::TransNeXt model(cfg);
    const auto params = model->named_parameters(true);
    const auto& sd = m.at("state_dict");
    REQUIRE(params.size() == sd.size());
    REQUIRE((int64_t)sd.size() == m.at("num_tensors").get<int64_t>());
    int64_t numel = 0;
    for (size_t i = 0; i < sd.size(); ++i) {
      INFO("entry " << i);
      CHECK(params[i].key() == sd[i].at("key").get<std::string>());
      CHECK(shape_of(params[i].value()) == sd[i].at("shape").get<std::vector<int64_t>>());
      numel += params[i].value().numel();
    }
    CHECK(numel == m.at("num_params").get<int64_t>());
    CHECK(model->named_buffers(true).size() == 0);  // checkpoints hold parameters only

    // The non-persistent buffers at 224 (not in checkpoints) have the official names and shapes.
    const auto bufs = model->official_buffers();
    const auto& mb = m.at("nonpersistent_buffers_at_img_size_224");
    CHECK(bufs.size() == mb.size());
    for (const auto& b : mb) {
      const std::string key = b.at("key");
      INFO(key);
      auto it = bufs.find(key);
      REQUIRE(it != bufs.end());
      auto expect = b.at("shape").get<std::vector<int64_t>>();
      auto got = shape_of(it->second);
      if (expect.empty()) expect = {1};  // 0-dim official scalar; ours is a 1-element tensor
      if (got.empty()) got = {1};
      CHECK(got == expect);
    }
  }
  CHECK(seen.size() == moh::vit::vit_preset_names().size());
}

TEST_CASE("ViT config: aliases, JSON round trip, base + overrides", "[vit]") {
  using namespace moh::vit;
  CHECK(vit_preset("moh-vit-s-80").name == "moh_transnext_small_80");
  CHECK(vit_preset("MoH-ViT-B-75").name == "moh_transnext_base_75");
  CHECK(vit_preset("moh_transnext_base_50").shared_head == std::vector<int64_t>{2, 2, 2, 4});
  CHECK_THROWS_AS(vit_preset("moh-vit-xl"), moh::Error);

  for (const auto& name : vit_preset_names()) {
    const auto c = vit_preset(name);
    const auto back = vit_config_from_json(vit_config_to_json(c));
    CHECK(vit_config_to_json(back) == vit_config_to_json(c));
  }
  const auto dir = moh::test::temp_dir("vitcfg");
  auto tiny = vit_config_from_json(nlohmann::json::parse(
      R"({"base": "moh-vit-s-80", "img_size": 64, "num_classes": 3, "class_names": ["a", "b", "c"]})"));
  CHECK(tiny.embed_dims == vit_preset("moh-vit-s-80").embed_dims);
  CHECK(tiny.num_classes == 3);
  CHECK(tiny.class_name(1) == "b");
  save_vit_config(tiny, dir + "/tiny.json");
  CHECK(vit_config_to_json(resolve_vit_config(dir + "/tiny.json")) == vit_config_to_json(tiny));
}

TEST_CASE("ViT config rejects what the official constructor cannot build", "[vit]") {
  using namespace moh::vit;
  auto bad = [](const std::string& patch) {
    auto j = vit_config_to_json(vit_preset("moh-vit-s-75"));
    j.merge_patch(nlohmann::json::parse(patch));
    return j;
  };
  CHECK_NOTHROW(vit_config_from_json(bad("{}")));
  CHECK_THROWS_AS(vit_config_from_json(bad(R"({"window_size": [2, 3, 3, null]})")), moh::Error);
  CHECK_THROWS_AS(vit_config_from_json(bad(R"({"img_size": 200})")), moh::Error);     // 200/32 not integral
  CHECK_THROWS_AS(vit_config_from_json(bad(R"({"shared_head": [2, 6, 3, 4]})")), moh::Error);  // hr 0, hs < h
  CHECK_THROWS_AS(vit_config_from_json(bad(R"({"routed_head": [0, 0, 10, 12]})")), moh::Error);  // 10 > 12 - 3
  CHECK_THROWS_AS(vit_config_from_json(bad(R"({"embed_dims": [72, 144, 288]})")), moh::Error);
  CHECK_THROWS_AS(vit_config_from_json(bad(R"({"fixed_pool_size": 14})")), moh::Error);  // >= stage-3 grid 14
  CHECK_THROWS_AS(vit_config_from_json(bad(R"({"qkv_bais": true})")), moh::Error);       // typo
}

TEST_CASE("MoH-ViT refuses inputs of another size with a clear error", "[vit]") {
  auto cfg = moh::vit::vit_config_from_json(nlohmann::json::parse(
      R"({"img_size": 64, "num_classes": 4, "embed_dims": [24, 32, 48, 64], "num_heads": [3, 4, 4, 8],
          "depths": [1, 1, 1, 1], "mlp_ratios": [2, 2, 2, 2], "shared_head": [3, 4, 2, 8], "routed_head": [0, 0, 1, 0]})"));
  moh::vit::TransNeXt model(cfg);
  model->eval();
  torch::NoGradGuard no_grad;
  CHECK(model->forward(torch::randn({2, 3, 64, 64})).sizes() == torch::IntArrayRef({2, 4}));
  CHECK_THROWS_AS(model->forward(torch::randn({1, 3, 96, 96})), moh::Error);
}

TEST_CASE("Cached position bias follows weight changes made after a forward pass", "[vit]") {
  auto cfg = moh::vit::vit_config_from_json(nlohmann::json::parse(
      R"({"img_size": 64, "num_classes": 4, "embed_dims": [24, 32, 48, 64], "num_heads": [3, 4, 4, 8],
          "depths": [1, 1, 1, 1], "mlp_ratios": [2, 2, 2, 2], "shared_head": [3, 4, 2, 8], "routed_head": [0, 0, 1, 0]})"));
  torch::manual_seed(3);
  moh::vit::TransNeXt a(cfg), b(cfg);
  a->eval();
  b->eval();
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({1, 3, 64, 64});
  const auto before = a->forward(x);
  // In-place edits (what loading a checkpoint does) to both CPB MLP kinds: aggregated (stage 1) and full (stage 4).
  a->blocks[0]->ptr<moh::vit::BlockImpl>(0)->attn_agg->cpb_fc2->bias.add_(0.5);
  a->blocks[3]->ptr<moh::vit::BlockImpl>(0)->attn_full->cpb_fc2->bias.sub_(0.5);
  const auto after = a->forward(x);
  std::map<std::string, torch::Tensor> state;
  for (const auto& p : a->named_parameters()) state[p.key()] = p.value();
  moh::load_state_dict(*b, state);
  const auto fresh = b->forward(x);
  CHECK_FALSE(torch::allclose(before, after));
  CHECK(torch::equal(after, fresh));
}
