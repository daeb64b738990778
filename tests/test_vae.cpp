// [vae] Stable Diffusion VAE decoder (dit/vae.h): golden parity with diffusers' AutoencoderKL incl. intermediates,
// the three checkpoint namings (current diffusers, legacy diffusers, CompVis/ldm with first_stage_model. prefix),
// and the full-size sd-vae-ft-ema key set against the manifest written by the official code.
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "common/error.h"
#include "parity/golden.h"
#include "common/weights/safetensors.h"
#include "dit/parity.h"
#include "dit/vae.h"
#include "tests/catch_compat.h"
#include "tests/parity_assert.h"
#include "tests/test_support.h"

using namespace moh;
using namespace moh::dit;

namespace {

std::vector<std::string> vae_goldens() {
  auto files = test::data_glob("golden/vae_*.safetensors");
  REQUIRE(!files.empty());
  return files;
}

VaeConfig golden_config(const GoldenFile& g) {
  auto vc = g.config().at("vae");
  vc["scaling_factor"] = g.config().value("scaling_factor", 0.18215);
  return VaeConfig::from_json(vc);
}

// Current diffusers key -> CompVis/ldm key, written independently of dit/vae.cpp's rename list (spec §3.1).
std::string to_ldm_key(std::string k, int64_t num_blocks) {
  static const std::vector<std::pair<std::regex, std::string>> fixed = {
      {std::regex(R"(^decoder\.mid_block\.resnets\.0\.)"), "decoder.mid.block_1."},
      {std::regex(R"(^decoder\.mid_block\.resnets\.1\.)"), "decoder.mid.block_2."},
      {std::regex(R"(^decoder\.mid_block\.attentions\.0\.group_norm\.)"), "decoder.mid.attn_1.norm."},
      {std::regex(R"(^decoder\.mid_block\.attentions\.0\.to_q\.)"), "decoder.mid.attn_1.q."},
      {std::regex(R"(^decoder\.mid_block\.attentions\.0\.to_k\.)"), "decoder.mid.attn_1.k."},
      {std::regex(R"(^decoder\.mid_block\.attentions\.0\.to_v\.)"), "decoder.mid.attn_1.v."},
      {std::regex(R"(^decoder\.mid_block\.attentions\.0\.to_out\.0\.)"), "decoder.mid.attn_1.proj_out."},
      {std::regex(R"(^decoder\.conv_norm_out\.)"), "decoder.norm_out."},
      {std::regex(R"(\.conv_shortcut\.)"), ".nin_shortcut."}};
  for (const auto& [re, rep] : fixed) k = std::regex_replace(k, re, rep);
  std::smatch m;
  static const std::regex up(R"(^decoder\.up_blocks\.(\d+)\.(resnets|upsamplers\.0)\.(.*)$)");
  if (std::regex_match(k, m, up)) {
    const int64_t i = std::stoll(m[1]);
    k = "decoder.up." + std::to_string(num_blocks - 1 - i) + (m[2] == "resnets" ? ".block." : ".upsample.") +
        m[3].str();
  }
  return k;
}

std::string to_legacy_key(std::string k) {
  static const std::vector<std::pair<std::string, std::string>> m = {
      {".to_q.", ".query."}, {".to_k.", ".key."}, {".to_v.", ".value."}, {".to_out.0.", ".proj_attn."}};
  for (const auto& [a, b] : m) {
    auto p = k.find(a);
    if (p != std::string::npos) k.replace(p, a.size(), b);
  }
  return k;
}

bool is_attn_qkvo_weight(const std::string& current_key) {
  return std::regex_match(current_key, std::regex(R"(.*attentions\.0\.(to_q|to_k|to_v|to_out\.0)\.weight$)"));
}

}  // namespace

TEST_CASE("VAE decoder matches the official diffusers decode, incl. intermediates", "[vae]") {
  for (const auto& path : vae_goldens()) {
    GoldenFile g(path);
    REQUIRE(g.family() == "vae");
    auto runners = vae_parity_runners();
    REQUIRE(runners.count("vae") == 1);
    auto checks = runners.at("vae")(g);
    // Every stored output and intermediate is compared (none silently skipped).
    size_t refs = g.names_with_prefix("out.").size() + g.names_with_prefix("mid.").size();
    size_t compared = 0;
    for (const auto& n : moh::test::require_checks_pass(checks, path)) compared += n.rfind("in.", 0) != 0;
    CHECK(compared == refs);
  }
}

TEST_CASE("VAE loads legacy diffusers and CompVis/ldm namings to the same decoder", "[vae]") {
  for (const auto& path : vae_goldens()) {
    GoldenFile g(path);
    const auto cfg = golden_config(g);
    const auto n = static_cast<int64_t>(cfg.block_out_channels.size());
    const auto ref = g.get("out.sample");
    const auto weights = g.weights();
    const auto dir = test::temp_dir("vae_dialects");

    struct Variant {
      std::string name;
      VaeDialect dialect;
    };
    for (const auto& v : {Variant{"legacy", VaeDialect::DiffusersLegacy}, Variant{"ldm", VaeDialect::Ldm},
                          Variant{"current", VaeDialect::DiffusersCurrent}}) {
      std::vector<std::pair<std::string, torch::Tensor>> tensors;
      for (const auto& [k, t] : weights) {
        if (v.dialect == VaeDialect::Ldm) {
          // ldm stores the attention projections as 1x1 convs and, in a full SD checkpoint, under first_stage_model.
          auto tt = is_attn_qkvo_weight(k) ? t.reshape({t.size(0), t.size(1), 1, 1}) : t;
          tensors.emplace_back("first_stage_model." + to_ldm_key(k, n), tt);
        } else {
          tensors.emplace_back(v.dialect == VaeDialect::DiffusersLegacy ? to_legacy_key(k) : k, t);
        }
      }
      // Encoder-side tensors and (ldm) unrelated model parts must be ignored.
      const std::string pre = v.dialect == VaeDialect::Ldm ? "first_stage_model." : "";
      tensors.emplace_back(pre + "encoder.conv_in.weight", torch::randn({8, 3, 3, 3}));
      tensors.emplace_back(pre + "quant_conv.weight", torch::randn({8, 8, 1, 1}));
      if (v.dialect == VaeDialect::Ldm) tensors.emplace_back("model.diffusion_model.out.0.weight", torch::randn({4}));
      const auto file = dir + "/vae_" + v.name + ".safetensors";
      write_safetensors(file, tensors, {{"vae_config", cfg.to_json().dump()}});

      std::vector<std::string> keys;
      for (auto& kv : tensors) keys.push_back(kv.first);
      CHECK(detect_vae_dialect(keys) == v.dialect);
      Vae vae = load_vae(file);
      torch::NoGradGuard ng;
      auto out = vae->decode_scaled(g.get("in.z"));
      auto r = compare_tensors(out, ref, g.tolerance("out.sample"));
      INFO(v.name << " max_abs " << r.max_abs);
      CHECK(r.pass);
    }
  }
}

TEST_CASE("VAE loading fails loudly on missing keys and wrong architecture", "[vae]") {
  const auto path = vae_goldens().front();
  GoldenFile g(path);
  const auto cfg = golden_config(g);
  auto weights = g.weights();
  const auto dir = test::temp_dir("vae_errors");

  SECTION("a missing tensor is named") {
    weights.erase("decoder.conv_out.bias");
    Vae vae(cfg);
    try {
      load_vae_weights(vae, weights, "test-file");
      FAIL("expected an error");
    } catch (const Error& e) {
      const std::string msg = e.what();
      CHECK(msg.find("decoder.conv_out.bias") != std::string::npos);
      CHECK(msg.find("test-file") != std::string::npos);
    }
  }
  SECTION("the sd-vae preset does not accept the tiny weights (shape mismatches listed)") {
    std::vector<std::pair<std::string, torch::Tensor>> v(weights.begin(), weights.end());
    const auto file = dir + "/no_config.safetensors";
    write_safetensors(file, v);  // no vae_config metadata -> default sd-vae-ft-ema architecture
    try {
      load_vae(file);
      FAIL("expected an error");
    } catch (const Error& e) {
      const std::string msg = e.what();
      CHECK(msg.find("shape mismatches") != std::string::npos);
      CHECK(msg.find(file) != std::string::npos);
    }
  }
}

TEST_CASE("VAE config: presets, JSON round trip, scaling factor in decode", "[vae]") {
  auto ema = VaeConfig::preset("sd-vae-ft-ema");
  CHECK(ema.scaling_factor == 0.18215);
  CHECK(ema.downscale() == 8);
  auto back = VaeConfig::from_json(ema.to_json());
  CHECK(back.to_json() == ema.to_json());
  CHECK_THROWS_AS(VaeConfig::preset("sd-vae-ft-nope"), Error);
  CHECK_THROWS_AS(VaeConfig::parse("{\"act_fn\": \"relu\"}"), Unsupported);

  // decode(x) == decode_scaled(x / scaling_factor): the division lives in decode.
  const auto path = vae_goldens().front();
  GoldenFile g(path);
  auto cfg = golden_config(g);
  cfg.scaling_factor = 0.5;
  Vae vae(cfg);
  load_vae_weights(vae, g.weights(), path);
  torch::NoGradGuard ng;
  auto z = g.get("in.z");
  CHECK(torch::equal(vae->decode(z * 0.5), vae->decode_scaled(z)));
}

TEST_CASE("full-size sd-vae-ft-ema decoder has exactly the manifest's keys and shapes, in every naming", "[vae]") {
  std::ifstream in(test::data_path("golden/manifests/sd_vae_ft_ema_decoder.json"));
  REQUIRE(in.good());
  const auto man = nlohmann::json::parse(in);
  const auto cfg = VaeConfig::from_json(man.at("config"));
  CHECK(cfg.to_json().at("block_out_channels") == VaeConfig::preset("sd-vae-ft-ema").to_json().at("block_out_channels"));
  Vae vae(VaeConfig::preset("sd-vae-ft-ema"));

  std::map<std::string, std::vector<int64_t>> ours, theirs;
  int64_t numel = 0;
  for (auto& [k, t] : state_dict(*vae)) {
    ours[k] = t.sizes().vec();
    numel += t.numel();
  }
  for (const auto& e : man.at("state_dict")) theirs[e.at("key").get<std::string>()] = e.at("shape").get<std::vector<int64_t>>();
  CHECK(ours.size() == man.at("num_tensors").get<size_t>());
  CHECK(numel == man.at("num_params").get<int64_t>());
  for (const auto& [k, s] : theirs) {
    INFO(k);
    REQUIRE(ours.count(k) == 1);
    CHECK(ours[k] == s);
  }
  CHECK(ours.size() == theirs.size());

  // Every naming of the full-size key set loads (zero-stride tensors: no 200 MB of data needed); the manifest's
  // own legacy aliases are used for the legacy naming; encoder keys from the manifest are ignored.
  const auto n = static_cast<int64_t>(cfg.block_out_channels.size());
  auto zeros = [](const std::vector<int64_t>& shape) { return torch::zeros({1}).expand(shape); };
  std::map<std::string, std::string> legacy;
  for (auto& [old_key, new_key] : man.at("legacy_attention_key_aliases").items()) legacy[new_key.get<std::string>()] = old_key;
  for (auto dialect : {VaeDialect::DiffusersCurrent, VaeDialect::DiffusersLegacy, VaeDialect::Ldm}) {
    std::map<std::string, torch::Tensor> tensors;
    for (const auto& [k, s] : theirs) {
      if (dialect == VaeDialect::Ldm) {
        auto shape = s;
        if (is_attn_qkvo_weight(k)) shape = {s[0], s[1], 1, 1};
        tensors[to_ldm_key(k, n)] = zeros(shape);
      } else if (dialect == VaeDialect::DiffusersLegacy && legacy.count(k)) {
        tensors[legacy[k]] = zeros(s);
      } else {
        tensors[k] = zeros(s);
      }
    }
    for (const auto& e : man.at("not_needed_for_decoding"))
      tensors[e.at("key").get<std::string>()] = zeros(e.at("shape").get<std::vector<int64_t>>());
    INFO(vae_dialect_name(dialect));
    CHECK(load_vae_weights(vae, tensors, "manifest") == dialect);
  }
}
