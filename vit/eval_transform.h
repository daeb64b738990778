// The evaluation transform with timm's options (timm validate.py --img-size / --crop-pct / --interpolation / --mean /
// --std, built by timm/data/transforms_factory.py transforms_imagenet_eval: shorter side to floor(img_size /
// crop_pct), center crop, normalize). The default is exactly the official MoH-ViT transform (common/preprocess.h:
// MoH-ViT/datasets.py build_transform(is_train=False), crop 224/256 below 384, a warp at 384 and above).
#pragma once
#include <torch/torch.h>

#include <array>
#include <nlohmann/json.hpp>
#include <string>

#include "common/image/image_io.h"
#include "common/image/preprocess.h"

namespace moh::vit {

struct EvalTransform {
  int img_size = 0;       // 0: the model's img_size
  double crop_pct = 0;    // 0: the official rule; > 0: timm's resize-to-floor(img_size / crop_pct) + center crop
  std::string interpolation = "bicubic";  // bicubic | bilinear (Pillow's resamplers, bit-exact)
  std::array<double, 3> mean = kImageNetMean, std = kImageNetStd;
  bool is_official() const;  // every field at its default
};

// Throws moh::Error for a bad option (naming the library's parameter: img_size, crop_pct, interpolation, mean, std).
void validate_eval_transform(const EvalTransform& t);
// [3, S, S] float32 (CPU) for `model_img_size` (used when t.img_size is 0).
torch::Tensor apply_eval_transform(const ImageU8& img, const EvalTransform& t, int model_img_size);
// What was applied, resolved (sizes, crop rule, interpolation, mean, std), for moh-eval's JSON.
nlohmann::json eval_transform_json(const EvalTransform& t, int model_img_size);
// One line for a results table, e.g. "224 crop 0.875 bicubic mean 0.485,0.456,0.406 std 0.229,0.224,0.225".
std::string eval_transform_summary(const EvalTransform& t, int model_img_size);

}  // namespace moh::vit
