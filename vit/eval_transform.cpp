// Evaluation transform with timm's options (vit/eval_transform.h); timm/data/transforms_factory.py
// transforms_imagenet_eval (crop_mode "center") for an explicit crop_pct, the official rule otherwise.
#include "vit/eval_transform.h"

#include <cmath>
#include <sstream>

#include "common/error.h"

namespace moh::vit {
namespace {

int size_of(const EvalTransform& t, int model_img_size) { return t.img_size > 0 ? t.img_size : model_img_size; }

PilFilter filter_of(const EvalTransform& t) {
  return t.interpolation == "bilinear" ? PilFilter::kBilinear : PilFilter::kBicubic;
}

std::string triplet(const std::array<double, 3>& v) {
  std::ostringstream os;
  os << v[0] << "," << v[1] << "," << v[2];
  return os.str();
}

}  // namespace

bool EvalTransform::is_official() const {
  return img_size == 0 && crop_pct == 0 && interpolation == "bicubic" && mean == kImageNetMean && std == kImageNetStd;
}

void validate_eval_transform(const EvalTransform& t) {
  MOH_CHECK(t.img_size >= 0 && t.img_size <= 4096, "img_size ", t.img_size, " must be in 1..4096 (0 = the model's)");
  MOH_CHECK(t.crop_pct == 0 || (t.crop_pct > 0 && t.crop_pct <= 1), "crop_pct ", t.crop_pct, " must be in (0, 1]");
  MOH_CHECK(t.interpolation == "bicubic" || t.interpolation == "bilinear", "interpolation '", t.interpolation,
            "' is not bicubic or bilinear");
  for (int c = 0; c < 3; ++c) MOH_CHECK(t.std[c] > 0, "std values must be positive (got ", triplet(t.std), ")");
}

torch::Tensor apply_eval_transform(const ImageU8& img, const EvalTransform& t, int model_img_size) {
  const int size = size_of(t, model_img_size);
  if (t.crop_pct == 0 && t.interpolation == "bicubic" && t.mean == kImageNetMean && t.std == kImageNetStd)
    return vit_eval_transform(img, size);  // the official path itself (at --img-size when given)
  validate_image(img, "eval transform");
  ImageU8 cropped;
  if (t.crop_pct > 0) {  // timm: Resize(floor(img_size / crop_pct)) of the shorter side, CenterCrop(img_size)
    const int scale = static_cast<int>(std::floor(size / t.crop_pct));
    const auto wh = resize_shorter_side_size(img.width, img.height, scale);
    cropped = center_crop(pil_resize(img, wh[0], wh[1], filter_of(t)), size, size);
  } else {  // the official rule at this size (no resize <= 32, crop 224/256 below 384, warp from 384)
    const auto plan = plan_vit_eval_transform(img.width, img.height, size);
    const ImageU8 resized = plan.resize ? pil_resize(img, plan.resized_w, plan.resized_h, filter_of(t)) : img;
    cropped = plan.crop ? center_crop(resized, size, size) : resized;
  }
  return normalize_to_tensor(cropped, t.mean, t.std);  // [3, S, S]
}

nlohmann::json eval_transform_json(const EvalTransform& t, int model_img_size) {
  const int size = size_of(t, model_img_size);
  nlohmann::json j;
  j["origin"] = t.is_official() ? "official MoH-ViT eval transform (datasets.py build_transform)"
                                : "timm-style options (--img-size/--crop-pct/--interpolation/--mean/--std)";
  j["img_size"] = size;
  if (t.crop_pct > 0) {
    j["resize"] = "shorter side to " + std::to_string(static_cast<int>(std::floor(size / t.crop_pct)));
    j["crop_pct"] = t.crop_pct;
    j["center_crop"] = size;
  } else if (size <= 32) {
    j["resize"] = "none";
  } else if (size >= 384) {
    j["resize"] = "warp to " + std::to_string(size) + "x" + std::to_string(size);
  } else {
    j["resize"] = "shorter side to " + std::to_string(static_cast<int>(size / kVitCropPct));
    j["crop_pct"] = kVitCropPct;
    j["center_crop"] = size;
  }
  j["interpolation"] = t.interpolation;
  j["mean"] = t.mean;
  j["std"] = t.std;
  return j;
}

std::string eval_transform_summary(const EvalTransform& t, int model_img_size) {
  const auto j = eval_transform_json(t, model_img_size);
  std::ostringstream os;
  os << j["img_size"].get<int>();
  if (j.contains("crop_pct")) os << " crop " << j["crop_pct"].get<double>();
  else os << " " << j["resize"].get<std::string>();
  os << " " << t.interpolation << " mean " << triplet(t.mean) << " std " << triplet(t.std);
  return os.str();
}

}  // namespace moh::vit
