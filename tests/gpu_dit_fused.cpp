// [gpu] The fused MoH-DiT elementwise kernel (kernels/moh_dit_fused.cu via dit/fused_ops_cuda.h) against its
// CPU-tested LibTorch reference (dit/fused_ops.h): gated residual + LayerNorm + modulate and LayerNorm + modulate, on
// seeded random inputs, modulation vectors as strided chunks of one [B, 6C] adaLN output, odd widths and token counts,
// batch 1. Dtype layouts: fp32 throughout; mixed (fp32 stream, bf16 branch/modulation/z); pure bf16. fp32: atol +
// rtol*|ref| against the fp64 reference; bf16: error <= 2x the naive LibTorch bf16 reference's error (both vs fp64).
// Built only with CUDA Torch. UNRUN so far: written without a GPU (issue 16).
#include <torch/torch.h>

#include <cstdlib>
#include <tuple>
#include <vector>

#include "dit/fused_ops_cuda.h"
#include "dit/fused_ops.h"
#include "tests/catch_compat.h"

namespace {

double max_abs(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kCPU, torch::kFloat64) - b.to(torch::kCPU, torch::kFloat64)).abs().max().item<double>();
}

}  // namespace

TEST_CASE("Fused DiT residual/LayerNorm/modulate kernel matches the LibTorch reference", "[gpu]") {
  REQUIRE(torch::cuda::is_available());
  torch::NoGradGuard no_grad;
  const torch::Device dev(torch::kCUDA, 0);
  torch::manual_seed(16);
  struct Layout {
    const char* name;
    torch::ScalarType x, low;
  };
  const std::vector<Layout> layouts = {{"fp32", torch::kFloat32, torch::kFloat32},
                                       {"mixed", torch::kFloat32, torch::kBFloat16},
                                       {"bf16", torch::kBFloat16, torch::kBFloat16}};
  for (auto [B, T, C] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
           {1, 1, 5}, {2, 33, 24}, {3, 7, 1153}, {2, 256, 1152}, {1, 1000, 72}}) {
    auto x64 = (torch::randn({B, T, C}, torch::kFloat64) * 2 + 0.5).to(dev);
    auto a64 = torch::randn({B, T, C}, torch::kFloat64).to(dev);
    auto mod64 = (torch::randn({B, 6 * C}, torch::kFloat64) * 0.5).to(dev);
    for (const auto& L : layouts) {
      INFO(L.name << " B=" << B << " T=" << T << " C=" << C);
      auto x = x64.to(L.x), a = a64.to(L.low), mod = mod64.to(L.low);
      auto ch = mod.chunk(6, 1);  // strided [B, C] views, row stride 6C
      const auto &gate = ch[2], &shift = ch[3], &scale = ch[4];
      REQUIRE(moh::cuda::dit_fused_supported(x, &a, {&gate, &shift, &scale}));
      auto k = moh::cuda::dit_gated_residual_norm_modulate(x, a, gate, shift, scale, L.low, moh::dit::kDiTNormEps);
      auto kn = moh::cuda::dit_gated_residual_norm_modulate(x, {}, {}, shift, scale, L.low, moh::dit::kDiTNormEps);
      CHECK(k.h.scalar_type() == L.x);
      CHECK(k.z.scalar_type() == L.low);
      CHECK_FALSE(k.h.isnan().any().item<bool>());  // every element written (outputs are torch::empty)
      CHECK_FALSE(k.z.isnan().any().item<bool>());
      CHECK_FALSE(kn.z.isnan().any().item<bool>());
      // fp64 reference on the same (rounded) inputs; the naive reference in the layout's own dtypes.
      auto d = [](const torch::Tensor& t) { return t.to(torch::kFloat64); };
      auto ref64 = moh::dit::gated_residual_norm_modulate_reference(d(x), d(a), d(gate), d(shift), d(scale),
                                                                    torch::kFloat64);
      auto refn64 = moh::dit::layer_norm_modulate_reference(d(x), d(shift), d(scale), torch::kFloat64);
      if (L.low == torch::kFloat32) {
        auto ex = [](const torch::Tensor& o, const torch::Tensor& r, double at, double rt) {
          return ((o.to(torch::kFloat64) - r).abs() - (at + rt * r.abs())).max().item<double>();
        };
        CHECK(ex(k.h, ref64.h, 1e-6, 1e-6) <= 0);
        CHECK(ex(k.z, ref64.z, 2e-5, 2e-5) <= 0);
        CHECK(ex(kn.z, refn64, 2e-5, 2e-5) <= 0);
      } else {
        auto naive = moh::dit::gated_residual_norm_modulate_reference(x, a, gate, shift, scale, L.low);
        auto naive_n = moh::dit::layer_norm_modulate_reference(x, shift, scale, L.low);
        const double floor = 1e-6;
        INFO("h err " << max_abs(k.h, ref64.h) << " naive " << max_abs(naive.h, ref64.h) << "; z err "
                      << max_abs(k.z, ref64.z) << " naive " << max_abs(naive.z, ref64.z));
        CHECK(max_abs(k.h, ref64.h) <= 2 * max_abs(naive.h, ref64.h) + floor);
        CHECK(max_abs(k.z, ref64.z) <= 2 * max_abs(naive.z, ref64.z) + floor);
        CHECK(max_abs(kn.z, refn64) <= 2 * max_abs(naive_n, refn64) + floor);
      }
    }
  }
}

TEST_CASE("DiT fused ops dispatch to the kernel on CUDA and refuse what it cannot take", "[gpu]") {
  REQUIRE(torch::cuda::is_available());
  setenv("MOH_DIT_FUSED_KERNEL", "1", 1);  // the dispatcher's opt-in (off by default until this test has passed)
  REQUIRE(moh::cuda::dit_fused_kernel_enabled());
  torch::NoGradGuard no_grad;
  const torch::Device dev(torch::kCUDA, 0);
  auto x = torch::randn({2, 9, 40}, dev), a = torch::randn({2, 9, 40}, dev), mod = torch::randn({2, 240}, dev);
  auto ch = mod.chunk(6, 1);
  auto r = moh::dit::gated_residual_norm_modulate(x, a, ch[2], ch[3], ch[4], torch::kFloat32);  // kernel path
  auto ref = moh::dit::gated_residual_norm_modulate_reference(x.cpu(), a.cpu(), ch[2].cpu(), ch[3].cpu(), ch[4].cpu(),
                                                              torch::kFloat32);
  CHECK(max_abs(r.z, ref.z) < 1e-4);
  // bf16 stream with fp32 modulation is not a layout the kernel takes; the dispatcher falls back to the reference.
  auto x16 = x.to(torch::kBFloat16);
  CHECK_FALSE(moh::cuda::dit_fused_supported(x16, nullptr, {&ch[3], &ch[4]}));
  auto z = moh::dit::layer_norm_modulate(x16, ch[3], ch[4], torch::kBFloat16);
  CHECK(z.scalar_type() == torch::kBFloat16);
  // A non-unit column stride is refused.
  auto xt = torch::randn({2, 40, 9}, dev).transpose(1, 2);
  CHECK_FALSE(moh::cuda::dit_fused_supported(xt, nullptr, {&ch[3], &ch[4]}));
}
