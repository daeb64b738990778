// MoH-ViT evaluation transform, reproduced bit-exactly: official MoH-ViT/datasets.py build_transform(is_train=False)
// (same as TransNeXt classification/datasets.py) run through torchvision 0.14 on PIL images:
//   input_size <= 32 : ToTensor + Normalize only (no resize, no crop)
//   input_size < 384 : Resize(int(input_size / crop_pct)) of the SHORTER side with PIL bicubic (crop_pct = 224/256),
//                      CenterCrop(input_size), ToTensor, Normalize(ImageNet mean/std)
//   input_size >= 384: Resize((input_size, input_size)) bicubic warp (no crop), ToTensor, Normalize
// PIL's bicubic is Pillow's fixed-point separable resampler (src/libImaging/Resample.c); a float resampler is off by
// 1..18 uint8 levels (shared/golden/README.md section 4.6), so it is reimplemented exactly here.
#pragma once
#include <torch/torch.h>

#include <array>
#include <string>

#include "common/image/image_io.h"

namespace moh {

// timm IMAGENET_DEFAULT_MEAN / IMAGENET_DEFAULT_STD (the official Normalize). Kept as doubles and rounded to float32
// at use, exactly like torchvision's torch.as_tensor(mean, dtype=float32) (a float literal could round differently).
constexpr std::array<double, 3> kImageNetMean = {0.485, 0.456, 0.406};
constexpr std::array<double, 3> kImageNetStd = {0.229, 0.224, 0.225};
// The official eval transform's crop_pct for input_size < 384.
constexpr double kVitCropPct = 224.0 / 256.0;

// Pillow 9.x Image.resize(..., BICUBIC) on 8-bit RGB: antialiased when shrinking, horizontal pass first, uint8 after
// each pass, an unchanged axis is not resampled. Bit-exact with PIL.
ImageU8 pil_resize_bicubic(const ImageU8& img, int out_w, int out_h);
// The same resampler with Pillow's BILINEAR filter (support 1) as well (timm --interpolation bilinear).
enum class PilFilter { kBicubic, kBilinear };
ImageU8 pil_resize(const ImageU8& img, int out_w, int out_h, PilFilter filter);

// torchvision Resize(size) with an int size: the shorter side becomes `size`, the longer int(size * long / short).
// Returns {width, height}.
std::array<int, 2> resize_shorter_side_size(int width, int height, int size);

// torchvision CenterCrop offsets: {top, left} = round((H - crop_h) / 2), round((W - crop_w) / 2) with Python's
// round-half-to-even (an excess of 117 gives 58, not 59).
std::array<int, 2> center_crop_offsets(int width, int height, int crop_w, int crop_h);
// torchvision CenterCrop: crops at center_crop_offsets; a side smaller than the crop is first zero-padded
// (left/top get the smaller half), as torchvision does.
ImageU8 center_crop(const ImageU8& img, int crop_w, int crop_h);

// ToTensor (u8 / 255 in float32) + Normalize ((x - mean) / std in float32) -> [3,H,W] float32, bit-exact with
// torchvision's op order.
torch::Tensor normalize_to_tensor(const ImageU8& img, const std::array<double, 3>& mean = kImageNetMean,
                                  const std::array<double, 3>& std = kImageNetStd);

// What the eval transform will do for an image of this size (pure function of sizes; no pixels).
struct EvalTransformPlan {
  int input_size = 224;
  bool resize = true;                // false for input_size <= 32
  int resized_w = 0, resized_h = 0;  // after Resize (== source size when !resize)
  bool crop = true;                  // false for the warp (>= 384) and for input_size <= 32
  int crop_top = 0, crop_left = 0;   // offsets into the resized image (after any padding)
  int out_w = 0, out_h = 0;          // spatial size of the output tensor
};
EvalTransformPlan plan_vit_eval_transform(int width, int height, int input_size = 224, double crop_pct = kVitCropPct);

// The uint8 intermediates and the output of one run (for parity checks and debugging).
struct EvalTransformSteps {
  EvalTransformPlan plan;
  ImageU8 resized;  // after Resize (a copy of the input when there is no resize)
  ImageU8 cropped;  // after CenterCrop (== resized when there is no crop)
  torch::Tensor tensor;  // [3, out_h, out_w] float32
};
EvalTransformSteps vit_eval_transform_steps(const ImageU8& img, int input_size = 224, double crop_pct = kVitCropPct);

// The official MoH-ViT evaluation transform -> [3, input_size, input_size] float32 (CPU).
torch::Tensor vit_eval_transform(const ImageU8& img, int input_size = 224);

}  // namespace moh
