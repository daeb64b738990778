// Resolution of a MoH-DiT's config, class names and sampler defaults from weights metadata and/or a model spec
// (see model_source.h).
#include "dit/model_source.h"

#include <fstream>

#include "common/datasets/class_names.h"
#include "common/error.h"
#include "common/io/json_file.h"
#include "common/weights/weights_file.h"

namespace moh::dit {
namespace {

std::vector<std::string> string_list(const nlohmann::json& j, const std::string& where) {
  MOH_CHECK(j.is_array(), where, ": \"class_names\" must be a list of strings");
  std::vector<std::string> out;
  for (const auto& n : j) {
    MOH_CHECK(n.is_string(), where, ": \"class_names\" must be a list of strings");
    out.push_back(n.get<std::string>());
  }
  return out;
}

nlohmann::json architecture(const DiTConfig& c) {
  auto j = c.to_json();
  j.erase("name");
  return j;
}

// A preset, or a JSON file: DiT keyword arguments with optional "class_names", or a training config
// {"kind": "dit", "model": {...}, "class_names", "sampling"}.
void resolve_spec(const std::string& spec, DiTModelSource* out) {
  if (is_dit_preset(spec)) {
    out->config = dit_preset(spec);
    out->config_origin = "preset " + spec;
    return;
  }
  if (!std::ifstream(spec).good()) {
    out->config = resolve_dit_config(spec);  // its error lists the presets
    out->config_origin = "preset " + spec;
    return;
  }
  nlohmann::json j = read_json_file(spec, "model config");
  const std::string where = "model config '" + spec + "'";
  if (j.is_object() && j.contains("kind") && j.contains("model")) {  // training config (models/*.json)
    if (j.contains("class_names")) out->class_names = string_list(j["class_names"], where);
    if (j.contains("sampling")) {
      out->sampling = j["sampling"];
      out->pixel_space = out->sampling.value("pixel_space", false);
      out->sampling.erase("pixel_space");
      out->sampling.erase("data_range");
    }
    j = j["model"];
  }
  if (j.is_object() && j.contains("class_names")) {
    out->class_names = string_list(j["class_names"], where);
    j.erase("class_names");
  }
  out->config = DiTConfig::from_json(j, where);
  if (out->config.name == "custom") out->config.name = spec;
  out->config_origin = "file " + spec;
}

}  // namespace

DiTModelSource resolve_dit_source(const std::string& weights, const std::string& model_spec) {
  DiTModelSource src;
  src.weights = weights;
  bool have_config = false;
  if (!weights.empty()) {
    const auto meta = WeightsFile(weights).metadata();  // empty for PyTorch checkpoints
    const auto kind = meta.find("kind");
    MOH_CHECK(kind == meta.end() || kind->second == "dit", "weights file '", weights, "' holds a '", kind->second,
              "' model, not a MoH-DiT");
    if (meta.count("config")) {
      src.config = DiTConfig::from_json(metadata_json(meta, "config", weights), "weights '" + weights + "' config");
      src.config_origin = "weights metadata";
      have_config = true;
      if (meta.count("class_names"))
        src.class_names = string_list(metadata_json(meta, "class_names", weights), "weights '" + weights + "'");
      src.pixel_space = meta.count("pixel_space") && meta.at("pixel_space") == "1";
      if (meta.count("sampling")) src.sampling = metadata_json(meta, "sampling", weights);
    }
  }
  if (!model_spec.empty()) {
    DiTModelSource spec;
    resolve_spec(model_spec, &spec);
    if (have_config) {
      MOH_CHECK(architecture(spec.config) == architecture(src.config), "the model given (", model_spec,
                ") does not describe the architecture stored in weights '", weights, "' (stored: ",
                architecture(src.config).dump(), "); leave the model out to use the stored config");
    } else {
      spec.weights = weights;
      src = spec;
      have_config = true;
    }
  }
  MOH_CHECK(have_config, "weights file '", weights, "' records no model config (an official checkpoint?): name the "
            "architecture with a preset such as MoH-DiT-XL/2-90 or a config JSON");
  MOH_CHECK(src.class_names.empty() || int64_t(src.class_names.size()) == src.config.num_classes, "class_names has ",
            src.class_names.size(), " entries but the model has ", src.config.num_classes, " classes");
  // Without a VAE, 1- and 3-channel models make images directly (a VAE may still be given for 3 channels).
  if (!src.pixel_space) src.pixel_space = src.config.in_channels == 1 || src.config.in_channels == 3;
  return src;
}

int64_t resolve_dit_class(const std::string& query, const DiTModelSource& m) {
  return resolve_class(query, m.class_names, m.config.num_classes);
}

std::string dit_class_name(int64_t index, const DiTModelSource& m) {
  return class_display_name(index, m.class_names, m.config.num_classes);
}

}  // namespace moh::dit
