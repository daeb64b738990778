// Resolution of a MoH-ViT's config from weights metadata and/or a preset (see model_source.h).
#include "vit/model_source.h"

#include <fstream>

#include "common/error.h"
#include "common/io/json_file.h"
#include "common/weights/weights_file.h"

namespace moh::vit {
namespace {

// The architecture part of a config: what must agree between a --model and the weights' own config.
nlohmann::json architecture(const ViTConfig& c) {
  auto j = vit_config_to_json(c);
  j.erase("name");
  j.erase("class_names");
  return j;
}

// A model spec that is a training config (models/moh-vit-fmnist.json: {"kind", "model", "preprocess", ...}).
bool is_train_config_file(const std::string& spec, nlohmann::json* out) {
  if (spec.size() < 5 || spec.substr(spec.size() - 5) != ".json" || !std::ifstream(spec).good()) return false;
  *out = read_json_file(spec, "model config");  // a broken file is an error, not "some other kind of spec"
  return out->is_object() && out->contains("kind") && out->contains("model");
}

}  // namespace

ViTModelSource resolve_vit_source(const std::string& weights, const std::string& model_spec) {
  ViTModelSource src;
  src.weights = weights;
  std::optional<ViTConfig> from_meta;
  if (!weights.empty()) {
    const auto meta = WeightsFile(weights).metadata();  // empty for PyTorch checkpoints
    const auto kind = meta.find("kind");
    MOH_CHECK(kind == meta.end() || kind->second == "vit", "weights file '", weights, "' holds a '", kind->second,
              "' model, not a MoH-ViT classifier");
    if (meta.count("config")) {
      from_meta = vit_config_from_json(metadata_json(meta, "config", weights), "weights '" + weights + "' config");
      if (meta.count("class_names") && from_meta->class_names.empty())
        from_meta->class_names = metadata_json(meta, "class_names", weights).get<std::vector<std::string>>();
      from_meta->validate("weights '" + weights + "' config");
    }
    if (meta.count("preprocess"))
      src.fmnist = FmnistPreprocess::from_json(metadata_json(meta, "preprocess", weights),
                                               "weights '" + weights + "' preprocess");
  }

  std::optional<ViTConfig> from_spec;
  std::string spec_origin;
  if (!model_spec.empty()) {
    nlohmann::json tj;
    if (is_train_config_file(model_spec, &tj)) {
      from_spec = vit_config_from_json(tj.at("model"), "model config '" + model_spec + "'");
      if (tj.contains("preprocess") && !src.fmnist)
        src.fmnist = FmnistPreprocess::from_json(tj["preprocess"], "model config '" + model_spec + "'");
    } else {
      from_spec = resolve_vit_config(model_spec);
    }
    spec_origin = is_vit_preset(model_spec) ? "preset " + model_spec : "file " + model_spec;
  }

  if (from_meta) {
    if (from_spec)
      MOH_CHECK(architecture(*from_meta) == architecture(*from_spec), "the model given (", model_spec,
                ") does not describe the architecture stored in weights '", weights, "' (stored: ",
                architecture(*from_meta).dump(), "); leave the model out to use the stored config");
    src.config = *from_meta;
    src.config_origin = "weights metadata";
  } else if (from_spec) {
    src.config = *from_spec;
    src.config_origin = spec_origin;
  } else {
    throw Error("weights file '" + weights + "' records no model config (an official checkpoint?): name the "
                "architecture with a preset (moh-vit-s-75, moh-vit-s-80, moh-vit-b-50, moh-vit-b-75, transnext-micro, "
                "...) or a config JSON");
  }
  if (src.fmnist)
    MOH_CHECK(src.fmnist->output_size() == src.config.img_size, "preprocess makes ", src.fmnist->output_size(),
              "-pixel inputs but the model's img_size is ", src.config.img_size);
  return src;
}

}  // namespace moh::vit
