// ConvolutionalGLU middle on the CPU: depthwise 3x3 conv + bias, exact GELU, times v, in one pass (see the header).
#include "vit/conv_glu_cpu.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <algorithm>
#include <vector>

#include "common/error.h"
#include "common/runtime/autograd.h"
#include "common/runtime/cpu_simd.h"

namespace moh::vit {
namespace {

// Output row y of image b: for each pixel, acc = bias + sum over the in-image taps of w[tap] * x[neighbour]
// (channels innermost), then out = gelu(acc) * v. `taps` is the weight as [9, hid] (tap-major).
MOH_CPU_CLONES void conv_glu_row(const float* __restrict in, const float* __restrict taps,
                                 const float* __restrict bias, float* __restrict out, float* __restrict acc,
                                 int64_t y, int64_t H, int64_t W, int64_t hid) {
  const int64_t in_stride = 2 * hid;  // one token of h2
  for (int64_t x = 0; x < W; ++x) {
    for (int64_t c = 0; c < hid; ++c) acc[c] = bias[c];
    for (int64_t dy = -1; dy <= 1; ++dy) {
      const int64_t yy = y + dy;
      if (yy < 0 || yy >= H) continue;
      for (int64_t dx = -1; dx <= 1; ++dx) {
        const int64_t xx = x + dx;
        if (xx < 0 || xx >= W) continue;
        const float* src = in + (yy * W + xx) * in_stride;
        const float* w = taps + ((dy + 1) * 3 + (dx + 1)) * hid;
        for (int64_t c = 0; c < hid; ++c) acc[c] += w[c] * src[c];
      }
    }
    const float* v = in + (y * W + x) * in_stride + hid;
    float* o = out + (y * W + x) * hid;
    for (int64_t c = 0; c < hid; ++c) o[c] = simd::gelu_erf(acc[c]) * v[c];
  }
}

}  // namespace

bool conv_glu_middle_supported(const torch::Tensor& h2, const torch::Tensor& weight, const torch::Tensor& bias) {
  if (needs_autograd({&h2, &weight, &bias})) return false;
  for (const auto* t : {&h2, &weight, &bias})
    if (!t->defined() || !t->device().is_cpu() || t->scalar_type() != torch::kFloat32) return false;
  const int64_t hid = bias.size(0);
  return h2.dim() == 3 && h2.is_contiguous() && h2.size(2) == 2 * hid && weight.dim() == 4 &&
         weight.size(0) == hid && weight.size(1) == 1 && weight.size(2) == 3 && weight.size(3) == 3;
}

torch::Tensor conv_glu_middle_cpu(const torch::Tensor& h2, const torch::Tensor& weight, const torch::Tensor& bias,
                                  int64_t H, int64_t W) {
  RECORD_FUNCTION("moh::conv_glu_middle_cpu", std::vector<c10::IValue>());
  MOH_CHECK(conv_glu_middle_supported(h2, weight, bias), "conv_glu_middle_cpu: unsupported inputs h2 ", h2.sizes(),
            ", weight ", weight.sizes());
  const int64_t B = h2.size(0), hid = bias.size(0);
  MOH_CHECK(h2.size(1) == H * W, "conv_glu_middle_cpu: ", h2.size(1), " tokens, not H*W = ", H, "*", W);
  const auto taps = weight.reshape({hid, 9}).t().contiguous();  // [hid, 1, 3, 3] -> [hid, 9] -> [9, hid]
  const auto b = bias.contiguous();
  auto out = torch::empty({B, H * W, hid}, h2.options());
  const float* in = h2.data_ptr<float>();
  const float* tp = taps.data_ptr<float>();
  const float* bp = b.data_ptr<float>();
  float* op = out.data_ptr<float>();
  // One task per (image, output row); each task keeps its own accumulator row.
  at::parallel_for(0, B * H, 1, [&](int64_t r0, int64_t r1) {
    std::vector<float> acc(hid);
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t bi = r / H, y = r % H;
      conv_glu_row(in + bi * H * W * 2 * hid, tp, bp, op + bi * H * W * hid, acc.data(), y, H, W, hid);
    }
  });
  return out;
}

}  // namespace moh::vit
