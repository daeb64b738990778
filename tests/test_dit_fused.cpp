// [dit] References of the fused MoH-DiT ops (dit/fused_ops.h): gated residual + LayerNorm + modulate and LayerNorm +
// modulate against an independent fp64 formulation (explicit mean / biased variance, not torch::layer_norm), in fp32
// and in the mixed layout (fp32 stream, bf16 branch and modulation); fc1 -> GELU against the model's Mlp (the CPU SIMD
// GELU); the fp32 CPU kernels (dit/fused_ops_cpu.h) against the same formula and the references, and when they step
// aside; the batched adaLN GEMM against each block's own adaLN Linear on the tiny official golden model. The DiT golden
// test (test_dit_model.cpp) runs the same references inside every block.
#include <torch/torch.h>

#include <vector>

#include "common/error.h"
#include "parity/golden.h"
#include "common/weights/state_dict.h"
#include "dit/config.h"
#include "dit/fused_ops.h"
#include "dit/fused_ops_cpu.h"
#include "dit/model.h"
#include "tests/catch_compat.h"
#include "tests/test_support.h"

namespace {

struct Inputs {
  torch::Tensor x, a, mod;  // x, a [B, T, C]; mod [B, 6C] (the adaLN output, chunked into strided [B, C] views)
  torch::Tensor gate() const { return mod.chunk(6, 1)[2]; }
  torch::Tensor shift() const { return mod.chunk(6, 1)[3]; }
  torch::Tensor scale() const { return mod.chunk(6, 1)[4]; }
};

Inputs make_inputs(int64_t B, int64_t T, int64_t C, uint64_t seed) {
  auto gen = torch::make_generator<at::CPUGeneratorImpl>(seed);
  Inputs in;
  in.x = torch::randn({B, T, C}, gen) * 2.0 + 0.5;  // a non-zero mean, as the residual stream has
  in.a = torch::randn({B, T, C}, gen);
  in.mod = torch::randn({B, 6 * C}, gen) * 0.5;
  return in;
}

// fp64, written out: h = x + g a; z = (h - mean) / sqrt(var + eps) * (1 + scale) + shift.
std::pair<torch::Tensor, torch::Tensor> fp64_formula(const torch::Tensor& x, const torch::Tensor& a,
                                                     const torch::Tensor& g, const torch::Tensor& shift,
                                                     const torch::Tensor& scale) {
  auto d = [](const torch::Tensor& t) { return t.to(torch::kFloat64); };
  auto h = a.defined() ? d(x) + d(g).unsqueeze(1) * d(a) : d(x);
  auto mean = h.mean(-1, true);
  auto var = (h - mean).pow(2).mean(-1, true);
  auto z = (h - mean) / torch::sqrt(var + moh::dit::kDiTNormEps) * (1 + d(scale).unsqueeze(1)) + d(shift).unsqueeze(1);
  return {h, z};
}

double max_excess(const torch::Tensor& ours, const torch::Tensor& ref, double atol, double rtol) {
  auto err = (ours.to(torch::kFloat64) - ref).abs() - (atol + rtol * ref.abs());
  return err.max().item<double>();
}

}  // namespace

TEST_CASE("Fused DiT residual/LayerNorm/modulate ops match an fp64 formula (fp32 and mixed layouts)", "[dit]") {
  torch::NoGradGuard no_grad;
  uint64_t seed = 7;
  for (auto [B, T, C] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{1, 1, 5}, {2, 33, 24}, {3, 7, 1152}}) {
    INFO("B=" << B << " T=" << T << " C=" << C);
    const auto in = make_inputs(B, T, C, seed++);
    const auto [h64, z64] = fp64_formula(in.x, in.a, in.gate(), in.shift(), in.scale());
    auto r = moh::dit::gated_residual_norm_modulate(in.x, in.a, in.gate(), in.shift(), in.scale(), torch::kFloat32);
    CHECK(r.h.scalar_type() == torch::kFloat32);
    CHECK(max_excess(r.h, h64, 1e-6, 1e-6) <= 0);
    CHECK(max_excess(r.z, z64, 2e-5, 2e-5) <= 0);
    const auto [x64, zx64] = fp64_formula(in.x, {}, {}, in.shift(), in.scale());
    CHECK(max_excess(moh::dit::layer_norm_modulate(in.x, in.shift(), in.scale(), torch::kFloat32), zx64, 2e-5, 2e-5) <=
          0);

    // Mixed layout: fp32 stream, bf16 branch/modulation, z in bf16. Compared with the fp64 formula on the same
    // (bf16-rounded) inputs: h stays fp32-accurate, z carries one bf16 rounding (2^-8 relative) plus (1 + scale)'s.
    const auto mod16 = in.mod.to(torch::kBFloat16), a16 = in.a.to(torch::kBFloat16);
    const auto g16 = mod16.chunk(6, 1)[2], sh16 = mod16.chunk(6, 1)[3], sc16 = mod16.chunk(6, 1)[4];
    const auto [hm64, zm64] = fp64_formula(in.x, a16, g16, sh16, sc16);
    auto m = moh::dit::gated_residual_norm_modulate(in.x, a16, g16, sh16, sc16, torch::kBFloat16);
    CHECK(m.h.scalar_type() == torch::kFloat32);
    CHECK(m.z.scalar_type() == torch::kBFloat16);
    CHECK(max_excess(m.h, hm64, 1e-6, 1e-6) <= 0);
    CHECK(max_excess(m.z, zm64, 1e-2, 1.6e-2) <= 0);
  }
}

TEST_CASE("Fused DiT CPU kernels: fp32 inference matches the fp64 formula and the references; others fall back", "[dit]") {
  uint64_t seed = 21;
  // C below, at and above the 16 lanes, odd T, several images (per-image modulation rows).
  for (auto [B, T, C] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{1, 3, 7}, {2, 17, 16}, {3, 49, 128},
                                                                          {2, 256, 384}}) {
    INFO("B=" << B << " T=" << T << " C=" << C);
    torch::NoGradGuard no_grad;
    const auto in = make_inputs(B, T, C, seed++);
    const auto g = in.gate(), sh = in.shift(), sc = in.scale();
    REQUIRE(moh::dit::cpu::fused_supported(in.x, &in.a, {&g, &sh, &sc}, torch::kFloat32));
    const auto [h64, z64] = fp64_formula(in.x, in.a, in.gate(), in.shift(), in.scale());
    const auto k = moh::dit::cpu::gated_residual_norm_modulate(in.x, in.a, in.gate(), in.shift(), in.scale(),
                                                               moh::dit::kDiTNormEps);
    CHECK(max_excess(k.h, h64, 1e-6, 1e-6) <= 0);
    CHECK(max_excess(k.z, z64, 2e-5, 2e-5) <= 0);
    const auto ref = moh::dit::gated_residual_norm_modulate_reference(in.x, in.a, in.gate(), in.shift(), in.scale(),
                                                                      torch::kFloat32);
    CHECK(max_excess(k.z, ref.z.to(torch::kFloat64), 2e-5, 2e-5) <= 0);
    const auto r = moh::dit::cpu::gated_residual(in.x, in.gate(), in.a);
    CHECK(max_excess(r, h64, 1e-6, 1e-6) <= 0);
    CHECK(max_excess(moh::dit::gated_residual(in.x, in.gate(), in.a), h64, 1e-6, 1e-6) <= 0);
    const auto [x64, zx64] = fp64_formula(in.x, {}, {}, in.shift(), in.scale());
    const auto n = moh::dit::cpu::gated_residual_norm_modulate(in.x, {}, {}, in.shift(), in.scale(),
                                                               moh::dit::kDiTNormEps);
    CHECK(n.h.data_ptr() == in.x.data_ptr());  // no branch: the stream is passed through, not copied
    CHECK(max_excess(n.z, zx64, 2e-5, 2e-5) <= 0);
  }
  const auto in = make_inputs(2, 5, 24, 99);
  const auto g = in.gate(), sh = in.shift(), sc = in.scale();
  {
    torch::NoGradGuard no_grad;
    // Not for: a transposed (non-contiguous) stream, a bf16 z, fp64 inputs, a modulation row with a stride over C.
    const auto xt = in.x.transpose(0, 1).contiguous().transpose(0, 1);
    CHECK_FALSE(moh::dit::cpu::fused_supported(xt, nullptr, {&sh, &sc}, torch::kFloat32));
    CHECK_FALSE(moh::dit::cpu::fused_supported(in.x, nullptr, {&sh, &sc}, torch::kBFloat16));
    const auto x64 = in.x.to(torch::kFloat64);
    CHECK_FALSE(moh::dit::cpu::fused_supported(x64, nullptr, {&sh, &sc}, torch::kFloat32));
    const auto sc_strided = in.mod.view({2, 24, 6}).select(2, 4);  // [B, C] with stride 6 over C
    CHECK_FALSE(moh::dit::cpu::fused_supported(in.x, nullptr, {&sh, &sc_strided}, torch::kFloat32));
    // ...and the dispatching op still gives the formula's result on the fallback (strided) layout.
    const auto [h64, z64] = fp64_formula(xt, {}, {}, sh, sc);
    CHECK(max_excess(moh::dit::layer_norm_modulate(xt, sh, sc, torch::kFloat32), z64, 2e-5, 2e-5) <= 0);
  }
  // Training: a branch that needs a gradient keeps the differentiable reference (gradients flow to it).
  auto a = in.a.clone().requires_grad_(true);
  CHECK_FALSE(moh::dit::cpu::fused_supported(in.x, &a, {&g, &sh, &sc}, torch::kFloat32));
  auto r = moh::dit::gated_residual_norm_modulate(in.x, a, g, sh, sc, torch::kFloat32);
  r.z.sum().backward();
  REQUIRE(a.grad().defined());
  CHECK(a.grad().abs().sum().item<double>() > 0);
}

TEST_CASE("fc1 -> GELU reference equals the model's Mlp first half; batched adaLN equals per-block adaLN", "[dit]") {
  moh::GoldenFile g(moh::test::data_path("golden/dit_model.safetensors"));
  auto cfg = moh::dit::DiTConfig::from_json(g.config().at("model"));
  moh::dit::DiT model(cfg);
  moh::load_state_dict(*model, g.weights());
  torch::NoGradGuard no_grad;
  auto gen = torch::make_generator<at::CPUGeneratorImpl>(3);
  const int64_t C = cfg.hidden_size, n = static_cast<int64_t>(model->blocks->size());
  REQUIRE(n >= 2);

  // fc1 -> GELU(tanh): the reference (torch::gelu) vs the model's own Mlp path (fc1, then the SIMD CPU GELU).
  auto blk0 = model->blocks->ptr<moh::dit::DiTBlockImpl>(0);
  auto x = torch::randn({2, 9, C}, gen);
  auto ref = moh::dit::fc1_gelu_reference(x, blk0->mlp->fc1->weight, blk0->mlp->fc1->bias);
  auto ours = moh::dit::gelu_tanh_inference(blk0->mlp->fc1->forward(x));
  CHECK(ref.sizes() == ours.sizes());
  CHECK(torch::allclose(ours, ref, 1e-5, 1e-6));

  // Batched adaLN: one [n*6C, C] GEMM vs each block's adaLN Linear on SiLU(c).
  std::vector<torch::Tensor> ws, bs;
  std::vector<moh::dit::LinearImpl*> lins;
  for (int64_t i = 0; i < n; ++i) {
    auto* lin = model->blocks->ptr<moh::dit::DiTBlockImpl>(i)->adaLN_modulation->ptr(1)->as<moh::dit::LinearImpl>();
    lins.push_back(lin);
    ws.push_back(lin->weight);
    bs.push_back(lin->bias);
  }
  const auto w = moh::dit::stack_adaln_weights(ws), b = moh::dit::stack_adaln_biases(bs);
  CHECK(w.sizes() == torch::IntArrayRef({n * 6 * C, C}));
  const auto silu_c = torch::silu(torch::randn({3, C}, gen));  // [B, C]
  const auto mods = moh::dit::batched_adaln(silu_c, w, b, n);
  REQUIRE(static_cast<int64_t>(mods.size()) == n);
  for (int64_t i = 0; i < n; ++i) {
    const auto per_block = lins[static_cast<size_t>(i)]->forward(silu_c);  // [B, 6C]
    INFO("block " << i);
    CHECK(mods[static_cast<size_t>(i)].sizes() == per_block.sizes());
    CHECK(torch::allclose(mods[static_cast<size_t>(i)], per_block, 1e-5, 1e-6));
  }
}

TEST_CASE("DiT forward stacks the adaLN weights once (views, no copy) and agrees with per-block GEMMs", "[dit]") {
  moh::GoldenFile g(moh::test::data_path("golden/dit_model.safetensors"));
  auto cfg = moh::dit::DiTConfig::from_json(g.config().at("model"));
  moh::dit::DiT model(cfg);
  moh::load_state_dict(*model, g.weights());
  const auto x = g.get("in.x"), t = g.get("in.t"), y = g.get("in.y");
  CHECK_FALSE(model->adaln_stacked());
  torch::Tensor per_block;
  {
    torch::AutoGradMode grad(true);  // with gradients on, forward keeps one GEMM per block and stacks nothing
    per_block = model->forward(x, t, y).detach();
    CHECK_FALSE(model->adaln_stacked());
  }
  torch::NoGradGuard no_grad;
  const auto batched = model->forward(x, t, y);
  CHECK(model->adaln_stacked());
  CHECK(torch::allclose(batched, per_block, 1e-5, 1e-6));
  {
    // Against the golden (the official fp32 output) through an fp64 forward of the same weights: the golden and ours
    // are two fp32 roundings of it, whose size depends on the BLAS and LibTorch (1.13 vs 2.x order sums differently).
    moh::dit::DiT m64(cfg);
    moh::load_state_dict(*m64, g.weights());
    m64->to(torch::kFloat64);
    const auto out64 = m64->forward(x.to(torch::kFloat64), t, y);
    const double golden_err = (g.get("out.y").to(torch::kFloat64) - out64).abs().max().item<double>();
    const double ours_err = (batched.to(torch::kFloat64) - out64).abs().max().item<double>();
    const double scale = out64.abs().max().item<double>();
    INFO("max |out - fp64| / max |fp64|: golden " << golden_err / scale << ", ours " << ours_err / scale);
    CHECK(golden_err < 1e-4 * scale);  // the golden file is what we think it is
    CHECK(ours_err < 1e-4 * scale);
  }
  // The blocks' parameters are views into the stacked tensor, so loading weights afterwards updates it too.
  auto state = g.weights();
  moh::load_state_dict(*model, state);
  CHECK(model->adaln_stacked());
  // A cast replaces every parameter's data: the stack is detected as stale, then rebuilt by the next forward.
  model->to(torch::kFloat64);
  CHECK_FALSE(model->adaln_stacked());
  const auto again = model->forward(x.to(torch::kFloat64), t, y);
  CHECK(model->adaln_stacked());
  CHECK(torch::allclose(again.to(torch::kFloat32), per_block, 1e-4, 1e-5));
  // Trainable weights (a trainer's flat parameter views) are never re-pointed, also under NoGrad (e.g. evaluation).
  moh::dit::DiT trainable(cfg);
  moh::load_state_dict(*trainable, g.weights());
  for (auto& p : trainable->parameters()) p.set_requires_grad(true);
  trainable->forward(x, t, y);
  CHECK_FALSE(trainable->adaln_stacked());
}

TEST_CASE("DiT checks class labels on the host: out-of-range CPU labels are refused before any device copy", "[dit]") {
  moh::GoldenFile g(moh::test::data_path("golden/dit_model.safetensors"));
  auto cfg = moh::dit::DiTConfig::from_json(g.config().at("model"));
  moh::dit::DiT model(cfg);
  moh::load_state_dict(*model, g.weights());
  torch::NoGradGuard no_grad;
  const auto x = g.get("in.x"), t = g.get("in.t");
  const int64_t rows = model->y_embedder->embedding_table->weight.size(0);
  auto bad = torch::full({x.size(0)}, rows, torch::kLong);  // one past the last label row
  CHECK_THROWS_AS(model->forward(x, t, bad), moh::Error);
  CHECK_THROWS_AS(model->y_embedder->check_labels(bad), moh::Error);
  CHECK_THROWS_AS(model->y_embedder->check_labels(torch::full({2, 1}, 0, torch::kLong)), moh::Error);
  CHECK_NOTHROW(model->y_embedder->check_labels(torch::full({3}, rows - 1, torch::kLong)));
}
