// [dit] MoH-DiT model (dit/model.h, dit/config.h): the tiny official DiT golden (forward, forward_with_cfg and every
// intermediate), the sin-cos position table, every preset's state_dict against its official manifest, config
// JSON/aliases/validation, a pixel-space (1-channel) model, and bf16 agreement on CPU.
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "parity/golden.h"
#include "common/weights/safetensors.h"
#include "common/weights/state_dict.h"
#include "dit/config.h"
#include "dit/model.h"
#include "dit/parity.h"
#include "tests/catch_compat.h"
#include "tests/parity_assert.h"
#include "tests/expect_error.h"
#include "tests/test_support.h"

using moh::test::require_checks_pass;

namespace {


using moh::test::read_json;

std::string golden_model_path() { return moh::test::data_path("golden/dit_model.safetensors"); }

}  // namespace

TEST_CASE("Tiny MoH-DiT and dense DiT match the official forward, forward_with_cfg and every intermediate",
          "[dit]") {
  // dit_model.safetensors: MoH-DiT (SkyworkAI/MoH); dit_model_dense.safetensors: facebookresearch/DiT.
  const auto files = moh::test::data_glob("golden/dit_model*.safetensors");
  REQUIRE(files.size() >= 2);
  torch::NoGradGuard no_grad;
  for (const auto& f : files) {
    moh::GoldenFile g(f);
    REQUIRE(g.family() == "dit_model");
    const auto checks = moh::dit::model_parity_runners().at("dit_model")(g);
    std::set<std::string> names;
    for (auto& c : checks) names.insert(c.name);
    // Every mid.* tensor of the file must have been compared, plus both outputs.
    for (const auto& n : g.names_with_prefix("mid.")) {
      INFO(f << ": intermediate not compared: " << n);
      CHECK(names.count(n) == 1);
    }
    CHECK(names.count("out.y") == 1);
    CHECK(names.count("out.cfg_y") == 1);
    require_checks_pass(checks, g.path());
  }
}

TEST_CASE("forward_with_cfg guides 3 channels by default and all eps channels on request", "[dit]") {
  moh::GoldenFile g(golden_model_path());
  auto cfg = moh::dit::DiTConfig::from_json(g.config().at("model"));
  moh::dit::DiT model(cfg);
  moh::load_state_dict(*model, g.weights());
  torch::NoGradGuard no_grad;
  const double s = g.get("in.cfg_scale").item<double>();
  auto x = g.get("in.cfg_x"), t = g.get("in.cfg_t"), y = g.get("in.cfg_y");
  // Expected values derived from the official plain forward stored in the file (cond half, uncond half).
  auto plain = g.get("mid.cfg_plain_forward");
  const int64_t n = plain.size(0) / 2, C = cfg.in_channels;
  auto cond = plain.slice(0, 0, n), uncond = plain.slice(0, n);
  auto guided = uncond + s * (cond - uncond);
  auto all = model->forward_with_cfg(x, t, y, s, /*guide_all_channels=*/true);
  const moh::Tolerance tol = g.tolerance();
  for (int64_t half = 0; half < 2; ++half) {
    auto ours = all.slice(0, half * n, (half + 1) * n);
    CHECK(moh::compare_tensors(ours.slice(1, 0, C), guided.slice(1, 0, C), tol).pass);
    // Variance channels pass through unguided: cond in the first half, uncond in the second.
    CHECK(moh::compare_tensors(ours.slice(1, C), plain.slice(0, half * n, (half + 1) * n).slice(1, C), tol).pass);
  }
  // The default (official) variant differs from the all-channel one exactly in eps channels [3, C).
  auto official = model->forward_with_cfg(x, t, y, s);
  CHECK(moh::compare_tensors(official.slice(1, 0, 3), all.slice(1, 0, 3), tol).pass);
  CHECK(moh::compare_tensors(official.slice(1, 3, C).slice(0, 0, n), cond.slice(1, 3, C), tol).pass);
  CHECK_FALSE(moh::compare_tensors(official.slice(1, 3, C), all.slice(1, 3, C), tol).pass);
}

TEST_CASE("pos_embed is initialised with the official 2-D sin-cos table", "[dit]") {
  moh::GoldenFile g(golden_model_path());  // its pos_embed is the official fixed table (not re-initialised)
  auto cfg = moh::dit::DiTConfig::from_json(g.config().at("model"));
  moh::dit::DiT model(cfg);
  auto ref = g.get("pos_embed");
  REQUIRE(model->pos_embed.sizes() == ref.sizes());
  CHECK(moh::compare_tensors(model->pos_embed, ref, {1e-6, 1e-6}).pass);
  CHECK_FALSE(model->pos_embed.requires_grad());
}

TEST_CASE("Every MoH-DiT and dense DiT preset has exactly the official state_dict names, shapes and order", "[dit]") {
  // moh_dit_*.json: SkyworkAI/MoH DiT_models; dit_*.json: facebookresearch/DiT DiT_models.
  const auto files = moh::test::data_glob("golden/manifests/*dit_*.json");
  REQUIRE(files.size() == moh::dit::dit_preset_names().size());
  std::set<std::string> seen;
  for (const auto& f : files) {
    const auto j = read_json(f);
    const std::string name = j.at("name").get<std::string>();
    INFO(f << " (" << name << ")");
    auto cfg = moh::dit::dit_preset(name);
    seen.insert(cfg.name);
    cfg.input_size = j.at("config").at("input_size").get<int64_t>();
    cfg.num_classes = j.at("config").at("num_classes").get<int64_t>();
    // The manifest's resolved config parses to the same per-layer structure.
    auto from_manifest = moh::dit::DiTConfig::from_json(j.at("config"));
    CHECK(from_manifest.num_heads == cfg.num_heads);
    CHECK(from_manifest.shared_head == cfg.shared_head);
    CHECK(from_manifest.routed_head == cfg.routed_head);
    CHECK(from_manifest.head_dim == cfg.head_dim);
    CHECK(from_manifest.hidden_size == cfg.hidden_size);
    CHECK(from_manifest.depth == cfg.depth);
    CHECK(from_manifest.out_channels() == j.at("config").at("out_channels").get<int64_t>());
    CHECK(from_manifest.moh == cfg.moh);
    CHECK(cfg.patch_size == j.at("config").at("patch_size").get<int64_t>());

    moh::dit::DiT model(cfg);  // parameters are not initialised: instant even for XL
    const auto ours = moh::state_dict(*model);
    const auto& ref = j.at("state_dict");
    REQUIRE(ours.size() == ref.size());
    CHECK((int64_t)ours.size() == j.at("num_tensors").get<int64_t>());
    int64_t numel = 0;
    for (size_t i = 0; i < ours.size(); ++i) {
      INFO("entry " << i);
      CHECK(ours[i].first == ref[i].at("key").get<std::string>());
      CHECK(ours[i].second.sizes().vec() == ref[i].at("shape").get<std::vector<int64_t>>());
      numel += ours[i].second.numel();
    }
    CHECK(numel == j.at("num_params").get<int64_t>());
  }
  CHECK(seen.size() == files.size());
}

TEST_CASE("DiT config: aliases, JSON round trip, --model resolver, validation messages", "[dit]") {
  using moh::dit::DiTConfig;
  for (const auto& name : moh::dit::dit_preset_names()) {
    std::string alias;
    for (char ch : name) alias += ch == '/' ? '-' : static_cast<char>(std::tolower((unsigned char)ch));
    CHECK(moh::dit::resolve_dit_config(alias).name == name);
    CHECK(moh::dit::dit_preset(name).name == name);
  }
  CHECK(moh::dit::resolve_dit_config("MoH_DiT_XL_2_90").name == "MoH-DiT-XL/2-90");
  auto unknown = moh::test::error_message([] { moh::dit::resolve_dit_config("MoH-DiT-XXL/2-90"); });
  CHECK(moh::test::contains(unknown, "MoH-DiT-XL/2-90"));  // lists the known presets

  // Save a custom config (the tiny golden one) and load it back through the resolver.
  moh::GoldenFile g(golden_model_path());
  auto cfg = DiTConfig::from_json(g.config().at("model"));
  CHECK(cfg.head_dim == g.config().at("resolved_head_dim").get<std::vector<int64_t>>());
  const std::string path = moh::test::temp_dir("dit_config") + "/tiny.json";
  moh::dit::save_dit_config(cfg, path);
  auto back = moh::dit::resolve_dit_config(path);
  CHECK(back.to_json() == cfg.to_json());

  auto j = cfg.to_json();
  j["shared_head"][0] = 1;  // official DiT cannot build shared_head == 1 with routed heads
  auto m1 = moh::test::error_message([&] { DiTConfig::from_json(j); });
  CHECK(moh::test::contains(m1, "layer 0"));
  CHECK(moh::test::contains(m1, "shared_head=1"));
  j = cfg.to_json();
  j["num_heads"] = {4, 6};
  CHECK(moh::test::contains(moh::test::error_message([&] { DiTConfig::from_json(j); }), "depth"));
  j = cfg.to_json();
  j["hiden_size"] = 72;
  CHECK(moh::test::contains(moh::test::error_message([&] { DiTConfig::from_json(j); }), "hiden_size"));
  j = cfg.to_json();
  j["input_size"] = 9;
  CHECK(moh::test::contains(moh::test::error_message([&] { DiTConfig::from_json(j); }), "patch_size"));
  auto missing = moh::test::error_message([] { moh::dit::resolve_dit_config("/nonexistent/dir/model.json"); });
  CHECK(moh::test::contains(missing, "/nonexistent/dir/model.json"));
}

TEST_CASE("A pixel-space DiT (1 channel, no VAE) builds and runs; bf16 agrees with fp32 on CPU", "[dit]") {
  moh::GoldenFile g(golden_model_path());
  auto j = g.config().at("model");
  j["in_channels"] = 1;
  j["input_size"] = 6;  // 3x3 tokens: odd token count
  auto cfg = moh::dit::DiTConfig::from_json(j);
  moh::dit::DiT model(cfg);
  moh::dit::init_random_weights(*model, 11);
  torch::NoGradGuard no_grad;
  torch::manual_seed(5);  // the input must not depend on what earlier tests drew
  auto x = torch::randn({4, 1, 6, 6});
  auto t = torch::tensor(std::vector<int64_t>{999, 500, 999, 500});
  auto y = torch::tensor(std::vector<int64_t>{2, 5, cfg.null_class(), cfg.null_class()});
  auto out = model->forward(x, t, y);
  REQUIRE(out.sizes() == torch::IntArrayRef({4, 2, 6, 6}));
  CHECK(torch::isfinite(out).all().item<bool>());
  auto cfg_out = model->forward_with_cfg(x, t, y, 1.5, /*guide_all_channels=*/true);
  REQUIRE(cfg_out.sizes() == out.sizes());
  // With one eps channel, guide_all guides channel 0 only; the variance channel is the plain output.
  auto plain = model->forward(torch::cat({x.slice(0, 0, 2), x.slice(0, 0, 2)}), t, y);
  CHECK(torch::allclose(cfg_out.slice(1, 1), plain.slice(1, 1)));
  CHECK(moh::test::contains(moh::test::error_message([&] { model->forward(torch::randn({1, 1, 8, 8}),
                                                                             t.slice(0, 0, 1), y.slice(0, 0, 1)); }),
                            "input_size"));

  // bf16: same model cast; error vs fp32 bounded like a bf16 GEMM chain (relative to the output scale).
  moh::dit::DiT m16(cfg);
  moh::load_state_dict(*m16, [&] {
    std::map<std::string, torch::Tensor> sd;
    for (auto& [n, v] : moh::state_dict(*model)) sd[n] = v;
    return sd;
  }());
  m16->to(torch::kBFloat16);
  auto out16 = m16->forward(x, t, y);
  CHECK(out16.scalar_type() == torch::kBFloat16);
  // Relative RMS error: bf16 keeps 8 mantissa bits (0.4 %); a few layers stay within a few percent, but one flipped
  // top-k decision of the router (near-tied logits on random weights; which ones flip depends on the input and on
  // the BLAS thread count) adds several percent, while a dtype bug (wrong cast, fp32-only op path) gives O(1).
  const double rel = (out16.to(torch::kFloat32) - out).norm().item<double>() / out.norm().item<double>();
  INFO("bf16 relative RMS error " << rel);
  CHECK(rel < 0.12);
}

#ifdef MOH_WITH_CUDA
TEST_CASE("Tiny MoH-DiT on CUDA in fp32, bf16 and fp16 matches the golden", "[gpu]") {
  if (!MOH_NEED(torch::cuda::is_available(), "no CUDA device visible for the [gpu] tests")) return;
  moh::GoldenFile g(golden_model_path());
  auto cfg = moh::dit::DiTConfig::from_json(g.config().at("model"));
  torch::NoGradGuard no_grad;
  const auto ref = g.get("out.cfg_y");
  for (auto dtype : {torch::kFloat32, torch::kBFloat16, torch::kFloat16}) {
    moh::dit::DiT model(cfg);
    moh::load_state_dict(*model, g.weights());
    model->to(torch::Device(torch::kCUDA), dtype);
    auto dev = torch::Device(torch::kCUDA);
    auto out = model->forward_with_cfg(g.get("in.cfg_x").to(dev), g.get("in.cfg_t").to(dev), g.get("in.cfg_y").to(dev),
                                       g.get("in.cfg_scale").item<double>());
    CHECK(out.scalar_type() == dtype);
    const double err = (out.to(torch::kCPU, torch::kFloat32) - ref).abs().max().item<double>();
    const double bound = dtype == torch::kFloat32 ? 1e-3 : 0.1;  // fp32 may use TF32 GEMMs on the GPU
    INFO("dtype " << dtype << ": max error " << err << " of max " << ref.abs().max().item<double>());
    CHECK(err < bound * ref.abs().max().item<double>());
  }
}
#endif

TEST_CASE("load_dit_weights reads bare and EMA-prefixed safetensors and reports mismatches", "[dit]") {
  moh::GoldenFile g(golden_model_path());
  auto cfg = moh::dit::DiTConfig::from_json(g.config().at("model"));
  const auto weights = g.weights();
  const std::string dir = moh::test::temp_dir("dit_weights");
  std::vector<std::pair<std::string, torch::Tensor>> bare, training;
  for (auto& [n, t] : weights) {
    bare.emplace_back(n, t);
    training.emplace_back("ema." + n, t);
    training.emplace_back("model." + n, torch::zeros_like(t));  // the raw (non-EMA) weights must be ignored
  }
  moh::write_safetensors(dir + "/bare.safetensors", bare);
  moh::write_safetensors(dir + "/train.safetensors", training);
  torch::NoGradGuard no_grad;
  for (const char* file : {"/bare.safetensors", "/train.safetensors"}) {
    moh::dit::DiT model(cfg);
    moh::dit::load_dit_weights(model, dir + file);
    auto out = model->forward(g.get("in.x"), g.get("in.t"), g.get("in.y"));
    INFO(file);
    CHECK(moh::compare_tensors(out, g.get("out.y"), g.tolerance()).pass);
  }
  // A checkpoint for another configuration: one message listing the shape mismatches, naming the file.
  auto other = cfg;
  other.hidden_size = 64;
  moh::dit::DiT wrong(other);
  auto msg = moh::test::error_message([&] { moh::dit::load_dit_weights(wrong, dir + "/bare.safetensors"); });
  CHECK(moh::test::contains(msg, "bare.safetensors"));
  CHECK(moh::test::contains(msg, "shape mismatches"));
}
