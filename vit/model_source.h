// Where a MoH-ViT's configuration comes from. Weights files written by this toolkit (moh-train, moh-convert) are
// self-describing: their metadata holds the model config, the class names and the input transform, so
// `--weights models/moh-vit-fmnist.safetensors` needs nothing else. Official checkpoints carry no config: a preset
// or config JSON names it. When both exist they must agree.
#pragma once
#include <map>
#include <optional>
#include <string>

#include "vit/config.h"
#include "vit/fmnist_input.h"

namespace moh::vit {

struct ViTModelSource {
  ViTConfig config;
  std::optional<FmnistPreprocess> fmnist;  // set for the Fashion-MNIST demo models (1-channel 28x28 inputs)
  std::string weights;                     // the weights file ("" = random weights)
  std::string config_origin;               // "weights metadata", "preset moh-vit-s-80", "file x.json"
};

// Resolves the model for `weights` (may be empty: random weights) and `model_spec` (preset, config JSON, or empty).
// Config from the weights' metadata when present (a given model_spec must then describe the same architecture),
// else from model_spec; throws moh::Error saying what to pass when neither gives one.
ViTModelSource resolve_vit_source(const std::string& weights, const std::string& model_spec);

}  // namespace moh::vit
