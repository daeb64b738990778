// Reading JSON files and telling a model spec's file form from a preset name: the one implementation behind every
// config, sidecar and training-config reader (errors name the file and what it was supposed to be).
#pragma once
#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace moh {

// Parses the JSON file at `path`. `what` names it in errors ("DiT config file", "training config"): "cannot open
// <what> '<path>': check the path" / "<what> '<path>' is not valid JSON (<parser message>)".
nlohmann::json read_json_file(const std::string& path, const std::string& what);

// The JSON value of metadata entry `key` of a safetensors file (self-describing weights and reference files store
// configs as JSON strings); throws moh::Error naming the file and the key when it is absent or not valid JSON.
nlohmann::json metadata_json(const std::map<std::string, std::string>& meta, const std::string& key,
                             const std::string& path);

// True when a model spec names a JSON file rather than a preset: it ends in ".json" (any case) or is an existing
// file. Presets are checked first by the callers, so a preset name never reaches the file system test.
bool is_json_file_spec(const std::string& spec);

// Canonical form of a preset name or alias for matching: lowercase, '_' and '/' become '-', and a leading
// `drop_prefix` (already in canonical form, e.g. "moh-dit-") is removed. "MoH-DiT-XL/2-90" -> "xl-2-90".
std::string preset_key(const std::string& name, const std::string& drop_prefix = "");

}  // namespace moh
