// [gpu] The precision policy on CUDA (common/runtime/precision.h, dit/precision.h, vit/precision.h): the tiny official DiT and
// ViT goldens run under "mixed" (bf16 GEMMs, sparse attention kernel and fused DiT kernel; fp32 LayerNorm, router and
// residual stream) stay within tolerance of the official fp32 outputs (DiT end to end, ViT in its first stage) and
// closer to them than pure bf16 — the CUDA counterpart of tests/test_precision.cpp, with the same bounds. Built only with CUDA Torch. UNRUN so far (issue 16).
#include <torch/torch.h>

#include <cstdlib>

#include "parity/golden.h"
#include "common/runtime/precision.h"
#include "common/weights/state_dict.h"
#include "dit/config.h"
#include "dit/model.h"
#include "dit/precision.h"
#include "tests/catch_compat.h"
#include "tests/test_support.h"
#include "vit/config.h"
#include "vit/model.h"
#include "vit/precision.h"

namespace {

double rel_err(const torch::Tensor& ours, const torch::Tensor& ref) {
  auto o = ours.to(torch::kCPU, torch::kFloat64), r = ref.to(torch::kFloat64);
  return (o - r).norm().item<double>() / r.norm().item<double>();
}

}  // namespace

TEST_CASE("Mixed precision on CUDA: DiT and ViT goldens within tolerance of fp32, closer than pure bf16", "[gpu]") {
  REQUIRE(torch::cuda::is_available());
  // End to end with the new fused kernels on (opt-in by default until the GPU run has checked them).
  setenv("MOH_DIT_FUSED_KERNEL", "1", 1);
  setenv("MOH_VIT_AGG_KERNEL", "1", 1);
  torch::NoGradGuard no_grad;
  const torch::Device dev(torch::kCUDA, 0);
  {
    moh::GoldenFile g(moh::test::data_path("golden/dit_model.safetensors"));
    auto cfg = moh::dit::DiTConfig::from_json(g.config().at("model"));
    auto run = [&](moh::Precision p) {
      moh::dit::DiT model(cfg);
      moh::load_state_dict(*model, g.weights());
      moh::dit::apply_dit_precision(model, dev, p);
      return model->forward_with_cfg(g.get("in.cfg_x").to(dev), g.get("in.cfg_t").to(dev), g.get("in.cfg_y").to(dev),
                                     g.get("in.cfg_scale").item<double>());
    };
    const auto ref = g.get("out.cfg_y");
    const auto mixed = run(moh::Precision::kMixed);
    CHECK(mixed.scalar_type() == torch::kFloat32);
    const double emix = rel_err(mixed, ref), ebf = rel_err(run(moh::Precision::kBf16), ref);
    const double e32 = rel_err(run(moh::Precision::kFp32), ref);
    INFO("DiT relative error vs official fp32: fp32 " << e32 << " mixed " << emix << " bf16 " << ebf);
    CHECK(e32 < 1e-3);  // TF32 GEMMs may be on
    CHECK(emix < 2e-2);
    CHECK(emix < 0.75 * ebf);
  }
  for (const auto& f : moh::test::data_glob("golden/vit_model*.safetensors")) {
    moh::GoldenFile g(f);
    auto cfg = moh::vit::vit_config_from_json(g.config()["model"]);
    auto run = [&](moh::Precision p, moh::vit::ViTRecord* rec) {
      moh::vit::TransNeXt model(cfg);
      moh::load_state_dict(*model, g.weights());
      model->eval();
      moh::vit::apply_vit_precision(model, dev, p);
      return model->forward(g.get("in.x").to(dev), rec);
    };
    moh::vit::ViTRecord rmix, rbf;
    const auto ref = g.get("out.logits");
    const double emix = rel_err(run(moh::Precision::kMixed, &rmix), ref);
    const double ebf = rel_err(run(moh::Precision::kBf16, &rbf), ref);
    INFO(f << ": ViT logits relative error vs official fp32: mixed " << emix << " bf16 " << ebf);
    // As tests/test_precision.cpp: bf16-rounding level in the first stage, then top-k flips of the tiny random model
    // dominate, so end to end mixed must be closer than bf16 (CPU measured 0.179 vs 0.254).
    for (const char* name : {"patch_embed1", "block1.0.attn", "block1.0"}) {
      const auto r = g.get(std::string("mid.") + name);
      const double em = rel_err(rmix.at(name), r), eb = rel_err(rbf.at(name), r);
      INFO(name << ": mixed " << em << " bf16 " << eb);
      CHECK(em < 1.5e-2);
      CHECK(em < eb);
    }
    CHECK(emix < 0.85 * ebf);
  }
}
