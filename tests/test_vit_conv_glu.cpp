// [vit] The fused CPU middle of TransNeXt's ConvolutionalGLU (vit/conv_glu_cpu.h) against the LibTorch ops it
// replaces (depthwise Conv2d 3x3 with padding 1 and bias on the NCHW image, exact GELU, times v) and against the
// model's own unfused path; the exact-GELU approximation against torch::gelu; the fallbacks.
#include <torch/torch.h>

#include <tuple>
#include <vector>

#include "common/runtime/cpu_simd.h"
#include "tests/catch_compat.h"
#include "vit/conv_glu_cpu.h"
#include "vit/model.h"

namespace {

// The official op sequence: x, v = h2.chunk(2); GELU(dwconv(x as NCHW)) * v.
torch::Tensor reference_middle(const torch::Tensor& h2, const torch::Tensor& w, const torch::Tensor& b, int64_t H,
                               int64_t W) {
  const int64_t B = h2.size(0), hid = b.size(0);
  auto parts = h2.chunk(2, -1);
  auto img = parts[0].transpose(1, 2).reshape({B, hid, H, W});  // [B, N, hid] -> [B, hid, N] -> [B, hid, H, W]
  auto y = torch::conv2d(img, w, b, 1, 1, 1, hid);
  auto a = y.flatten(2).transpose(1, 2);  // [B, hid, H*W] -> [B, N, hid]
  return torch::gelu(a) * parts[1];
}

}  // namespace

TEST_CASE("ConvGLU fused CPU middle equals dwconv -> GELU -> * v (borders, odd widths, several images)", "[vit]") {
  torch::NoGradGuard no_grad;
  torch::manual_seed(3);
  for (auto [B, H, W, hid] : std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t>>{
           {1, 1, 1, 5}, {2, 2, 3, 16}, {1, 7, 7, 37}, {3, 14, 14, 128}}) {
    INFO("B=" << B << " H=" << H << " W=" << W << " hid=" << hid);
    const auto h2 = torch::randn({B, H * W, 2 * hid}) * 1.5;
    const auto w = torch::randn({hid, 1, 3, 3}) * 0.3;
    const auto b = torch::randn({hid}) * 0.1;
    REQUIRE(moh::vit::conv_glu_middle_supported(h2, w, b));
    const auto ours = moh::vit::conv_glu_middle_cpu(h2, w, b, H, W);
    const auto ref = reference_middle(h2, w, b, H, W);
    REQUIRE(ours.sizes() == ref.sizes());
    // fp32 sums of up to 9 taps in another order (+ FMA) and the erf approximation: a few ulp of the values' scale
    CHECK(((ours - ref).abs() - (1e-5 + 1e-5 * ref.abs())).max().item<double>() <= 0);
  }
}

TEST_CASE("ConvGLU module: the fused inference path equals its unfused path (gradients on)", "[vit]") {
  torch::manual_seed(4);
  moh::vit::ConvolutionalGLU glu(24, 40);
  const int64_t H = 5, W = 6;
  const auto x = torch::randn({2, H * W, 24});
  torch::Tensor fused, unfused;
  {
    torch::NoGradGuard no_grad;
    fused = glu->forward(x, H, W);
  }
  unfused = glu->forward(x, H, W);  // parameters need gradients: the LibTorch ops run (training path)
  REQUIRE(unfused.requires_grad());
  CHECK(torch::allclose(fused, unfused.detach(), 1e-5, 1e-5));
  CHECK_FALSE(moh::vit::conv_glu_middle_supported(torch::randn({2, H * W, 80}).to(torch::kFloat64),
                                                  torch::randn({40, 1, 3, 3}), torch::randn({40})));
  CHECK_FALSE(moh::vit::conv_glu_middle_supported(torch::randn({2, 80, H * W}).transpose(1, 2),
                                                  torch::randn({40, 1, 3, 3}), torch::randn({40})));
}

TEST_CASE("Exact-GELU approximation stays within 3e-7 |x| + 1e-7 of torch::gelu", "[vit]") {
  const auto x = torch::linspace(-12.0, 12.0, 200001, torch::kFloat64);
  const auto ref = torch::gelu(x);  // fp64 reference
  const auto xf = x.to(torch::kFloat32).contiguous();
  auto ours = torch::empty_like(xf);
  const float* src = xf.data_ptr<float>();
  float* dst = ours.data_ptr<float>();
  for (int64_t i = 0; i < xf.numel(); ++i) dst[i] = moh::simd::gelu_erf(src[i]);
  const auto err = (ours.to(torch::kFloat64) - ref).abs() - (3e-7 * x.abs() + 1e-7);
  CHECK(err.max().item<double>() <= 0);
}
