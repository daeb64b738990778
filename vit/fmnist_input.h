// The input transform of the Fashion-MNIST demo classifier (models/moh-vit-fmnist.md): from 28x28 uint8 pictures
// (the IDX files, or any image turned gray and resized) to the model input. Stored in a trained model's metadata
// ("preprocess"), so the classifier, the evaluator and training all use this one definition.
#pragma once
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <string>

#include "common/image/image_io.h"

namespace moh::vit {

// How a 28x28 Fashion-MNIST image becomes the model input: pad with background to 28 + 2*pad, nearest-neighbour
// upsample by `upsample` (integer), scale to [0, 1], normalise (x - mean) / std, repeat to in_chans channels.
// The result side must equal the config's img_size. Stored in the exported model's metadata ("preprocess").
struct FmnistPreprocess {
  int64_t pad = 2;
  int64_t upsample = 1;
  double mean = 0.2860;  // Fashion-MNIST training-set pixel mean / std (of x / 255)
  double std = 0.3530;
  int64_t output_size() const { return (28 + 2 * pad) * upsample; }
  nlohmann::json to_json() const;
  static FmnistPreprocess from_json(const nlohmann::json& j, const std::string& where);
};

// uint8 images [B, H, W] (any device) -> float [B, in_chans, S, S] on the same device.
torch::Tensor fmnist_to_input(const torch::Tensor& images_u8, const FmnistPreprocess& p, int64_t in_chans);

// Any picture -> the 28x28 uint8 gray image the demo model expects [28, 28]: gray by ITU-R 601-2 luma (PIL's
// convert('L'): exact for gray pictures stored as RGB), then resized to 28x28 with area averaging when
// shrinking and bilinear interpolation when enlarging (a 28x28 input is passed through unchanged).
torch::Tensor to_fmnist_gray28(const ImageU8& img);

}  // namespace moh::vit
