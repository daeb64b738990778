// MoH-ViT evaluation transform (official MoH-ViT/datasets.py build_transform(is_train=False) through torchvision 0.14
// + Pillow 9.4): Pillow's fixed-point bicubic resampler (src/libImaging/Resample.c, restated in
// shared/golden/gen/pil_bicubic_ref.py), torchvision's Resize/CenterCrop size rules, ToTensor + Normalize.
#include "common/image/preprocess.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "common/error.h"

namespace moh {
namespace {

// Pillow: 8 bits of result, 2 bits of headroom for the negative lobes -> 22 fractional bits.
constexpr int kPrecisionBits = 32 - 8 - 2;

// Pillow's bicubic_filter with a = -0.5 (support 2).
double bicubic_filter(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

// Pillow's bilinear_filter (support 1): the triangle.
double bilinear_filter(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

// Fixed-point taps of one axis: output index o reads inputs [first[o], first[o] + count[o]) with weights
// k[o * ksize + i]. Mirrors precompute_coeffs + normalize_coeffs_8bpc, including their exact double arithmetic
// (the filter argument is multiplied by 1/filterscale, not divided: the last bit matters for the rounding).
struct AxisTaps {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<int32_t> k;
};

AxisTaps resample_taps(int in_size, int out_size, PilFilter f) {
  const auto filter = f == PilFilter::kBilinear ? bilinear_filter : bicubic_filter;
  const double scale = static_cast<double>(in_size) / out_size;
  const double filterscale = std::max(scale, 1.0);  // > 1: antialiasing (the filter widens when shrinking)
  const double support = (f == PilFilter::kBilinear ? 1.0 : 2.0) * filterscale;
  AxisTaps t;
  t.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  t.first.resize(out_size);
  t.count.resize(out_size);
  t.k.assign(static_cast<size_t>(out_size) * t.ksize, 0);
  std::vector<double> w(t.ksize);
  for (int o = 0; o < out_size; ++o) {
    const double center = (o + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    // (int) truncates toward zero like Pillow's C cast; negative values are clamped to 0 right after.
    const int xmin = std::max(static_cast<int>(center - support + 0.5), 0);
    const int xmax = std::min(static_cast<int>(center + support + 0.5), in_size) - xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      w[x] = filter((x + xmin - center + 0.5) * ss);
      ww += w[x];
    }
    for (int x = 0; x < xmax; ++x) {
      const double v = ww != 0.0 ? w[x] / ww : w[x];
      // Round half away from zero into 22-bit fixed point.
      t.k[static_cast<size_t>(o) * t.ksize + x] = v < 0 ? static_cast<int32_t>(-0.5 + v * (1 << kPrecisionBits))
                                                        : static_cast<int32_t>(0.5 + v * (1 << kPrecisionBits));
    }
    t.first[o] = xmin;
    t.count[o] = xmax;
  }
  return t;
}

inline uint8_t clip8(int32_t acc) {
  const int32_t v = acc >> kPrecisionBits;  // arithmetic shift, as in Pillow
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// Horizontal pass: [H, in_w, 3] -> [H, out_w, 3].
ImageU8 resample_horizontal(const ImageU8& in, int out_w, PilFilter f) {
  const AxisTaps t = resample_taps(in.width, out_w, f);
  ImageU8 out;
  out.width = out_w;
  out.height = in.height;
  out.rgb.resize(static_cast<size_t>(out_w) * in.height * 3);
  at::parallel_for(0, in.height, 16, [&](int64_t y0, int64_t y1) {
    for (int64_t y = y0; y < y1; ++y) {
      const uint8_t* src = in.rgb.data() + static_cast<size_t>(y) * in.width * 3;
      uint8_t* dst = out.rgb.data() + static_cast<size_t>(y) * out_w * 3;
      for (int o = 0; o < out_w; ++o) {
        const int32_t* k = t.k.data() + static_cast<size_t>(o) * t.ksize;
        const uint8_t* s = src + static_cast<size_t>(t.first[o]) * 3;
        int32_t a0 = 1 << (kPrecisionBits - 1), a1 = a0, a2 = a0;
        for (int x = 0; x < t.count[o]; ++x) {
          a0 += s[3 * x + 0] * k[x];
          a1 += s[3 * x + 1] * k[x];
          a2 += s[3 * x + 2] * k[x];
        }
        dst[3 * o + 0] = clip8(a0);
        dst[3 * o + 1] = clip8(a1);
        dst[3 * o + 2] = clip8(a2);
      }
    }
  });
  return out;
}

// Vertical pass: [in_h, W, 3] -> [out_h, W, 3].
ImageU8 resample_vertical(const ImageU8& in, int out_h, PilFilter f) {
  const AxisTaps t = resample_taps(in.height, out_h, f);
  ImageU8 out;
  out.width = in.width;
  out.height = out_h;
  const size_t row = static_cast<size_t>(in.width) * 3;
  out.rgb.resize(row * out_h);
  at::parallel_for(0, out_h, 16, [&](int64_t o0, int64_t o1) {
    std::vector<int32_t> acc(row);
    for (int64_t o = o0; o < o1; ++o) {
      const int32_t* k = t.k.data() + static_cast<size_t>(o) * t.ksize;
      std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
      for (int y = 0; y < t.count[o]; ++y) {  // row-wise accumulation: same integer sums, cache-friendly order
        const uint8_t* s = in.rgb.data() + static_cast<size_t>(t.first[o] + y) * row;
        const int32_t ky = k[y];
        for (size_t i = 0; i < row; ++i) acc[i] += s[i] * ky;
      }
      uint8_t* dst = out.rgb.data() + static_cast<size_t>(o) * row;
      for (size_t i = 0; i < row; ++i) dst[i] = clip8(acc[i]);
    }
  });
  return out;
}

// Python's int(round(d / 2.0)) for an integer d >= 0: round half to even.
int half_round_even(int d) {
  const int lo = d / 2;
  if (d % 2 == 0) return lo;
  return lo % 2 == 0 ? lo : lo + 1;
}

}  // namespace

ImageU8 pil_resize(const ImageU8& img, int out_w, int out_h, PilFilter f) {
  validate_image(img, "pil_resize");
  MOH_CHECK(out_w > 0 && out_h > 0, "pil_resize: output size ", out_w, "x", out_h, " must be positive");
  // Pillow resamples an axis only when its size changes; horizontal first.
  ImageU8 x = out_w != img.width ? resample_horizontal(img, out_w, f) : img;
  if (out_h != x.height) x = resample_vertical(x, out_h, f);
  return x;
}

ImageU8 pil_resize_bicubic(const ImageU8& img, int out_w, int out_h) {
  return pil_resize(img, out_w, out_h, PilFilter::kBicubic);
}

std::array<int, 2> resize_shorter_side_size(int width, int height, int size) {
  MOH_CHECK(width > 0 && height > 0 && size > 0, "resize: sizes must be positive (image ", width, "x", height,
            ", requested ", size, ")");
  const bool w_short = width <= height;
  const int64_t shorter = w_short ? width : height, longer = w_short ? height : width;
  // torchvision: int(requested_short * long / short) with Python's true division (correctly rounded double).
  const int new_long = static_cast<int>(static_cast<double>(static_cast<int64_t>(size) * longer) / shorter);
  return w_short ? std::array<int, 2>{size, new_long} : std::array<int, 2>{new_long, size};
}

std::array<int, 2> center_crop_offsets(int width, int height, int crop_w, int crop_h) {
  MOH_CHECK(crop_w > 0 && crop_h > 0 && crop_w <= width && crop_h <= height, "center crop ", crop_w, "x", crop_h,
            " does not fit in a ", width, "x", height, " image");
  return {half_round_even(height - crop_h), half_round_even(width - crop_w)};
}

ImageU8 center_crop(const ImageU8& img, int crop_w, int crop_h) {
  validate_image(img, "center_crop");
  MOH_CHECK(crop_w > 0 && crop_h > 0, "center_crop: crop size ", crop_w, "x", crop_h, " must be positive");
  // torchvision pads a too-small side with zeros first: left/top get (crop - size) // 2, right/bottom the rest.
  const int pad_l = crop_w > img.width ? (crop_w - img.width) / 2 : 0;
  const int pad_t = crop_h > img.height ? (crop_h - img.height) / 2 : 0;
  const int pw = std::max(img.width, crop_w), ph = std::max(img.height, crop_h);
  const auto [top, left] = center_crop_offsets(pw, ph, crop_w, crop_h);
  ImageU8 out;
  out.width = crop_w;
  out.height = crop_h;
  out.rgb.assign(static_cast<size_t>(crop_w) * crop_h * 3, 0);
  for (int y = 0; y < crop_h; ++y) {
    const int sy = y + top - pad_t;  // row in the unpadded image
    if (sy < 0 || sy >= img.height) continue;
    for (int x = 0; x < crop_w; ++x) {
      const int sx = x + left - pad_l;
      if (sx < 0 || sx >= img.width) continue;
      std::copy_n(img.rgb.data() + (static_cast<size_t>(sy) * img.width + sx) * 3, 3,
                  out.rgb.data() + (static_cast<size_t>(y) * crop_w + x) * 3);
    }
  }
  return out;
}

torch::Tensor normalize_to_tensor(const ImageU8& img, const std::array<double, 3>& mean,
                                  const std::array<double, 3>& std) {
  // Same float32 op sequence as torchvision: ToTensor = u8.float().div(255); Normalize = sub_(mean).div_(std) with
  // mean/std rounded from double to float32.
  auto x = image_to_tensor(img).to(torch::kFloat32).div(255);  // [3,H,W]
  auto m = torch::tensor({mean[0], mean[1], mean[2]}, torch::kFloat64).to(torch::kFloat32).view({3, 1, 1});
  auto s = torch::tensor({std[0], std[1], std[2]}, torch::kFloat64).to(torch::kFloat32).view({3, 1, 1});
  return x.sub_(m).div_(s);
}

EvalTransformPlan plan_vit_eval_transform(int width, int height, int input_size, double crop_pct) {
  MOH_CHECK(width > 0 && height > 0, "eval transform: image is empty (", width, "x", height, ")");
  MOH_CHECK(input_size > 0, "eval transform: input size ", input_size, " must be positive");
  MOH_CHECK(crop_pct > 0 && crop_pct <= 1, "eval transform: crop_pct ", crop_pct, " must be in (0, 1]");
  EvalTransformPlan p;
  p.input_size = input_size;
  if (input_size <= 32) {  // official: resize_im = input_size > 32 (CIFAR-sized inputs are used as they are)
    p.resize = p.crop = false;
    p.resized_w = p.out_w = width;
    p.resized_h = p.out_h = height;
    return p;
  }
  if (input_size >= 384) {  // official: "warping (no cropping) when evaluated at 384 or larger"
    p.crop = false;
    p.resized_w = p.resized_h = p.out_w = p.out_h = input_size;
    return p;
  }
  const int size = static_cast<int>(input_size / crop_pct);  // int(args.input_size / args.crop_pct)
  const auto wh = resize_shorter_side_size(width, height, size);
  p.resized_w = wh[0];
  p.resized_h = wh[1];
  const auto tl = center_crop_offsets(p.resized_w, p.resized_h, input_size, input_size);
  p.crop_top = tl[0];
  p.crop_left = tl[1];
  p.out_w = p.out_h = input_size;
  return p;
}

EvalTransformSteps vit_eval_transform_steps(const ImageU8& img, int input_size, double crop_pct) {
  validate_image(img, "eval transform");
  EvalTransformSteps s;
  s.plan = plan_vit_eval_transform(img.width, img.height, input_size, crop_pct);
  s.resized = s.plan.resize ? pil_resize_bicubic(img, s.plan.resized_w, s.plan.resized_h) : img;
  s.cropped = s.plan.crop ? center_crop(s.resized, input_size, input_size) : s.resized;
  s.tensor = normalize_to_tensor(s.cropped);
  return s;
}

torch::Tensor vit_eval_transform(const ImageU8& img, int input_size) {
  return vit_eval_transform_steps(img, input_size).tensor;
}

}  // namespace moh
