// The Fashion-MNIST demo input transform (see fmnist_input.h).
#include "vit/fmnist_input.h"

#include "common/error.h"

namespace moh::vit {

nlohmann::json FmnistPreprocess::to_json() const {
  return {{"source", "fashion-mnist uint8 28x28"}, {"pad", pad}, {"upsample", upsample}, {"mean", mean}, {"std", std}};
}

FmnistPreprocess FmnistPreprocess::from_json(const nlohmann::json& j, const std::string& where) {
  FmnistPreprocess p;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const auto& k = it.key();
    if (k == "pad") p.pad = it->get<int64_t>();
    else if (k == "upsample") p.upsample = it->get<int64_t>();
    else if (k == "mean") p.mean = it->get<double>();
    else if (k == "std") p.std = it->get<double>();
    else if (k != "source") throw Error(where + ": unknown preprocess key '" + k + "' (pad, upsample, mean, std)");
  }
  MOH_CHECK(p.pad >= 0 && p.upsample >= 1 && p.std > 0, where, ": preprocess needs pad >= 0, upsample >= 1, std > 0");
  return p;
}

torch::Tensor fmnist_to_input(const torch::Tensor& images_u8, const FmnistPreprocess& p, int64_t in_chans) {
  MOH_CHECK(images_u8.dim() == 3, "fmnist_to_input: expected uint8 images [B, H, W], got ", images_u8.sizes());
  auto x = images_u8.to(torch::kFloat32).div(255.0).unsqueeze(1);  // [B, H, W] -> [B, 1, H, W]
  if (p.pad > 0) x = torch::constant_pad_nd(x, {p.pad, p.pad, p.pad, p.pad}, 0.0);  // background is 0
  if (p.upsample > 1)  // nearest: each pixel becomes an upsample x upsample block
    x = x.repeat_interleave(p.upsample, 2).repeat_interleave(p.upsample, 3);
  x = (x - p.mean) / p.std;
  return in_chans == 1 ? x : x.expand({-1, in_chans, -1, -1}).contiguous();  // [B, 1, S, S] -> [B, C, S, S]
}

torch::Tensor to_fmnist_gray28(const ImageU8& img) {
  validate_image(img, "image");
  auto rgb = image_to_tensor(img).to(torch::kInt32);  // [3, H, W]
  // PIL convert('L'): (R*19595 + G*38470 + B*7471 + 0x8000) >> 16, the 601-2 weights in 16-bit fixed point.
  auto gray = (rgb[0] * 19595 + rgb[1] * 38470 + rgb[2] * 7471 + 0x8000).div(65536, "floor");  // [H, W]
  if (img.width == 28 && img.height == 28) return gray.to(torch::kUInt8);
  auto x = gray.to(torch::kFloat32).unsqueeze(0).unsqueeze(0);  // [H, W] -> [1, 1, H, W]
  const bool shrink = img.width >= 28 && img.height >= 28;
  namespace F = torch::nn::functional;
  x = shrink ? F::adaptive_avg_pool2d(x, F::AdaptiveAvgPool2dFuncOptions({28, 28}))
             : F::interpolate(x, F::InterpolateFuncOptions()
                                     .size(std::vector<int64_t>{28, 28})
                                     .mode(torch::kBilinear)
                                     .align_corners(false));
  return x.round().clamp(0, 255).to(torch::kUInt8).view({28, 28});  // [1, 1, 28, 28] -> [28, 28]
}

}  // namespace moh::vit
