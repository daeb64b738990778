// Where a MoH-DiT's configuration comes from (the DiT side of vit/model_source.h). Weights written by this toolkit
// (moh-train, moh-convert) are self-describing: metadata "config", "class_names", "pixel_space" and "sampling"
// (the sampler defaults the model was checked with), so `--weights models/moh-dit-fmnist.safetensors` needs
// nothing else. Official checkpoints carry no config: a preset or config JSON names it; when both exist they
// must agree.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dit/config.h"

namespace moh::dit {

struct DiTModelSource {
  DiTConfig config;
  std::vector<std::string> class_names;  // empty: ImageNet names for 1000-class models, else unnamed
  std::string weights;                   // "" = random weights
  std::string config_origin;             // "weights metadata", "preset MoH-DiT-XL/2-90", "file x.json"
  bool pixel_space = false;              // images come straight out of the model (no VAE)
  // Sampler defaults recorded with the model: any of "num_sampling_steps", "cfg_scale", "cfg_all_channels",
  // "clip_denoised". Empty for official checkpoints (the official defaults apply).
  nlohmann::json sampling = nlohmann::json::object();
};

// Resolves `weights` (may be empty) and `model_spec` (preset, config JSON with optional "class_names", a training
// config {"kind": "dit", "model": ...}, or empty). Throws moh::Error saying what to pass when neither gives one.
DiTModelSource resolve_dit_source(const std::string& weights, const std::string& model_spec);

// The class index for `query`: an index, a class name (case-insensitive) of the model, or for ImageNet models a
// wnid or ImageNet name. Throws moh::Error listing the model's classes (with a close match) when unknown.
int64_t resolve_dit_class(const std::string& query, const DiTModelSource& m);
// The display name of class `index` ("" when unnamed).
std::string dit_class_name(int64_t index, const DiTModelSource& m);

}  // namespace moh::dit
