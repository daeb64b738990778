// MoH-DiT configurations: presets (SkyworkAI/MoH MoH-DiT/models.py `MoH_DiT_*_2_*`, `DiT_models`; the dense
// facebookresearch/DiT models.py `DiT_models`), JSON and the `--model` resolver.
#include "dit/config.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

#include "common/io/atomic_file.h"
#include "common/error.h"
#include "common/io/json_file.h"

namespace moh::dit {
namespace {

using Layers = std::vector<int64_t>;

// "a x n" run-length lists as written in the spec table, e.g. rep({{8, 9}, {16, 10}}).
Layers rep(std::initializer_list<std::pair<int64_t, int64_t>> runs) {
  Layers out;
  for (const auto& [value, count] : runs) out.insert(out.end(), count, value);
  return out;
}

// One official registry entry. head_dim 0 = official None (hidden / heads); XL and L pass a scalar head_dim.
DiTConfig make_preset(const std::string& name, int64_t depth, int64_t hidden, Layers heads, int64_t head_dim,
                      Layers shared, Layers routed) {
  DiTConfig c;
  c.name = name;
  c.depth = depth;
  c.hidden_size = hidden;
  c.num_heads = std::move(heads);
  c.shared_head = std::move(shared);
  c.routed_head = std::move(routed);
  for (int64_t i = 0; i < depth; ++i) c.head_dim.push_back(head_dim > 0 ? head_dim : hidden / c.num_heads[i]);
  return c;
}

// A dense facebookresearch/DiT registry entry (`DiT_XL_2` ...): plain attention, every head used.
DiTConfig make_dense_preset(const std::string& name, int64_t depth, int64_t hidden, int64_t patch, int64_t heads) {
  DiTConfig c = make_preset(name, depth, hidden, Layers(depth, heads), 0, Layers(depth, heads), Layers(depth, 0));
  c.patch_size = patch;
  c.moh = false;
  return c;
}

const std::vector<DiTConfig>& presets() {
  static const std::vector<DiTConfig> all = {
      make_preset("MoH-DiT-XL/2-90", 28, 1152, rep({{8, 9}, {16, 10}, {24, 9}}), 72, rep({{8, 9}, {16, 19}}),
                  rep({{0, 19}, {3, 9}})),
      make_preset("MoH-DiT-XL/2-75", 28, 1152, rep({{8, 9}, {16, 10}, {24, 9}}), 72,
                  rep({{8, 9}, {10, 10}, {14, 9}}), rep({{0, 9}, {2, 19}})),
      make_preset("MoH-DiT-L/2-90", 24, 1024, rep({{8, 8}, {16, 8}, {24, 8}}), 64, rep({{8, 8}, {16, 16}}),
                  rep({{0, 16}, {3, 8}})),
      make_preset("MoH-DiT-L/2-75", 24, 1024, rep({{8, 8}, {16, 8}, {24, 8}}), 64, rep({{8, 16}, {12, 8}}),
                  rep({{0, 8}, {4, 16}})),
      make_preset("MoH-DiT-B/2-90", 12, 768, rep({{12, 12}}), 0, rep({{6, 5}, {7, 5}, {12, 2}}),
                  rep({{4, 10}, {0, 2}})),
      make_preset("MoH-DiT-B/2-75", 12, 768, rep({{12, 12}}), 0, rep({{4, 2}, {6, 8}, {12, 2}}),
                  rep({{2, 2}, {3, 8}, {0, 2}})),
      make_preset("MoH-DiT-S/2-90", 12, 384, rep({{6, 12}}), 0, rep({{3, 8}, {6, 4}}), rep({{2, 8}, {0, 4}})),
      make_preset("MoH-DiT-S/2-75", 12, 384, rep({{6, 12}}), 0, rep({{2, 2}, {3, 8}, {6, 2}}),
                  rep({{1, 6}, {2, 4}, {0, 2}})),
      make_dense_preset("DiT-XL/2", 28, 1152, 2, 16), make_dense_preset("DiT-XL/4", 28, 1152, 4, 16),
      make_dense_preset("DiT-XL/8", 28, 1152, 8, 16), make_dense_preset("DiT-L/2", 24, 1024, 2, 16),
      make_dense_preset("DiT-L/4", 24, 1024, 4, 16),  make_dense_preset("DiT-L/8", 24, 1024, 8, 16),
      make_dense_preset("DiT-B/2", 12, 768, 2, 12),   make_dense_preset("DiT-B/4", 12, 768, 4, 12),
      make_dense_preset("DiT-B/8", 12, 768, 8, 12),   make_dense_preset("DiT-S/2", 12, 384, 2, 6),
      make_dense_preset("DiT-S/4", 12, 384, 4, 6),    make_dense_preset("DiT-S/8", 12, 384, 8, 6),
  };
  return all;
}

// Canonical key for name matching: lowercase, '/', '_' -> '-', without the "moh-dit-" prefix.
std::string alias_key(const std::string& name) { return preset_key(name, "moh-dit-"); }

const DiTConfig* find_preset(const std::string& name) {
  const std::string key = alias_key(name);
  for (const auto& p : presets())
    if (alias_key(p.name) == key) return &p;
  return nullptr;
}

// An int or a list of ints (null entries allowed when `null_value` is given) expanded to `depth` entries.
Layers per_layer(const nlohmann::json& v, int64_t depth, const std::string& key, const std::string& where,
                 std::optional<int64_t> null_value = std::nullopt) {
  auto one = [&](const nlohmann::json& e) -> int64_t {
    if (e.is_null() && null_value) return *null_value;
    MOH_CHECK(e.is_number_integer(), where, ": '", key, "' entries must be integers", null_value ? " or null" : "",
              " (got ", e.dump(), ")");
    return e.get<int64_t>();
  };
  Layers out;
  if (v.is_array()) {
    MOH_CHECK((int64_t)v.size() == depth, where, ": '", key, "' has ", v.size(), " entries but depth is ", depth,
              " (give one value per layer, or a single value for all layers)");
    for (const auto& e : v) out.push_back(one(e));
  } else {
    out.assign(depth, one(v));
  }
  return out;
}

}  // namespace

MoHGateConfig DiTConfig::gate_config(int64_t layer) const {
  return {num_heads.at(layer), shared_head.at(layer), routed_head.at(layer), /*allow_single_shared=*/false,
          /*dense=*/!moh};
}

void DiTConfig::validate(const std::string& where) const {
  const std::string w = where + " '" + name + "'";
  MOH_CHECK(input_size > 0 && patch_size > 0 && in_channels > 0 && hidden_size > 0 && depth > 0 && num_classes > 0,
            w, ": input_size, patch_size, in_channels, hidden_size, depth and num_classes must be positive");
  MOH_CHECK(input_size % patch_size == 0, w, ": input_size ", input_size, " is not a multiple of patch_size ",
            patch_size, " (the latent side must be divisible; for the SD VAE input_size = image_size / 8)");
  MOH_CHECK(hidden_size % 4 == 0, w, ": hidden_size ", hidden_size,
            " must be a multiple of 4 (the 2-D sin-cos position embedding splits it into 4 parts)");
  MOH_CHECK(mlp_ratio > 0, w, ": mlp_ratio must be positive (got ", mlp_ratio, ")");
  MOH_CHECK(class_dropout_prob >= 0 && class_dropout_prob < 1, w, ": class_dropout_prob must be in [0, 1)");
  for (const auto* list : {&num_heads, &shared_head, &routed_head, &head_dim})
    MOH_CHECK((int64_t)list->size() == depth, w, ": per-layer lists (num_heads, shared_head, routed_head, "
              "head_dim) need ", depth, " entries (depth), got ", list->size());
  for (int64_t i = 0; i < depth; ++i) {
    MOH_CHECK(head_dim[i] > 0, w, ": layer ", i, ": head_dim must be positive (got ", head_dim[i], ")");
    if (!moh)
      MOH_CHECK(head_dim[i] * num_heads[i] == hidden_size, w, ": layer ", i, ": the dense DiT (moh false) uses ",
                "head_dim = hidden_size / num_heads = ", hidden_size, " / ", num_heads[i], "; got head_dim ",
                head_dim[i]);
    gate_config(i).validate(w + ", layer " + std::to_string(i));
  }
}

nlohmann::json DiTConfig::to_json() const {
  return {{"name", name},
          {"input_size", input_size},
          {"patch_size", patch_size},
          {"in_channels", in_channels},
          {"hidden_size", hidden_size},
          {"depth", depth},
          {"num_heads", num_heads},
          {"shared_head", shared_head},
          {"routed_head", routed_head},
          {"head_dim", head_dim},
          {"mlp_ratio", mlp_ratio},
          {"class_dropout_prob", class_dropout_prob},
          {"num_classes", num_classes},
          {"learn_sigma", learn_sigma},
          {"moh", moh}};
}

DiTConfig DiTConfig::from_json(const nlohmann::json& j_in, const std::string& where) {
  MOH_CHECK(j_in.is_object(), where, ": expected a JSON object with DiT keyword arguments");
  const nlohmann::json* jp = &j_in;
  // Golden metadata keeps the constructor kwargs under "model", manifests under "config".
  for (const char* wrap : {"model", "config"})
    if (jp->contains(wrap) && (*jp)[wrap].is_object() && !jp->contains("hidden_size")) jp = &(*jp)[wrap];
  const auto& j = *jp;
  static const std::set<std::string> known = {
      "name", "input_size", "patch_size", "in_channels", "hidden_size", "depth", "num_heads", "shared_head",
      "routed_head", "head_dim", "mlp_ratio", "class_dropout_prob", "num_classes", "learn_sigma", "moh",
      "out_channels"};
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (known.count(it.key())) continue;
    std::string list;
    for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
    throw Error(where + ": unknown key '" + it.key() + "' (known keys: " + list + ")");
  }
  if (j.contains("moh")) MOH_CHECK(j["moh"].is_boolean(), where, ": 'moh' must be true or false");
  const bool moh = j.value("moh", true);
  std::vector<std::string> required = {"hidden_size", "depth", "num_heads"};
  if (moh) required.insert(required.end(), {"shared_head", "routed_head"});  // the dense DiT has no router
  for (const auto& req : required) MOH_CHECK(j.contains(req), where, ": missing required key '", req, "'");

  DiTConfig c;
  auto get_int = [&](const char* key, int64_t& dst) {
    if (!j.contains(key)) return;
    MOH_CHECK(j[key].is_number_integer(), where, ": '", key, "' must be an integer (got ", j[key].dump(), ")");
    dst = j[key].get<int64_t>();
  };
  auto get_num = [&](const char* key, double& dst) {
    if (!j.contains(key)) return;
    MOH_CHECK(j[key].is_number(), where, ": '", key, "' must be a number (got ", j[key].dump(), ")");
    dst = j[key].get<double>();
  };
  if (j.contains("name")) {
    MOH_CHECK(j["name"].is_string(), where, ": 'name' must be a string");
    c.name = j["name"].get<std::string>();
  }
  get_int("input_size", c.input_size);
  get_int("patch_size", c.patch_size);
  get_int("in_channels", c.in_channels);
  get_int("hidden_size", c.hidden_size);
  get_int("depth", c.depth);
  get_int("num_classes", c.num_classes);
  get_num("mlp_ratio", c.mlp_ratio);
  get_num("class_dropout_prob", c.class_dropout_prob);
  if (j.contains("learn_sigma")) {
    MOH_CHECK(j["learn_sigma"].is_boolean(), where, ": 'learn_sigma' must be true or false");
    c.learn_sigma = j["learn_sigma"].get<bool>();
  }
  c.moh = moh;
  MOH_CHECK(c.depth > 0, where, ": depth must be positive (got ", c.depth, ")");
  MOH_CHECK(c.hidden_size > 0, where, ": hidden_size must be positive (got ", c.hidden_size, ")");

  const bool scalar_heads = !j["num_heads"].is_array();
  c.num_heads = per_layer(j["num_heads"], c.depth, "num_heads", where);
  for (auto h : c.num_heads) MOH_CHECK(h > 0, where, ": num_heads entries must be positive");
  if (moh) {
    c.shared_head = per_layer(j["shared_head"], c.depth, "shared_head", where);
    c.routed_head = per_layer(j["routed_head"], c.depth, "routed_head", where);
  } else {  // dense: every head, no router (the official DiT block ignores shared_head / routed_head)
    c.shared_head = c.num_heads;
    c.routed_head.assign(c.depth, 0);
  }
  // Official rule: an int num_heads forces head_dim = None (hidden / heads) in every layer.
  nlohmann::json hd = (scalar_heads || !j.contains("head_dim")) ? nlohmann::json(nullptr) : j["head_dim"];
  c.head_dim = per_layer(hd, c.depth, "head_dim", where, int64_t{0});
  for (int64_t i = 0; i < c.depth; ++i)
    if (c.head_dim[i] == 0) c.head_dim[i] = c.hidden_size / c.num_heads[i];
  if (scalar_heads && j.contains("head_dim") && !j["head_dim"].is_null()) {
    // The official constructor silently ignores head_dim here; accept it only when it agrees.
    auto given = per_layer(j["head_dim"], c.depth, "head_dim", where, int64_t{0});
    for (int64_t i = 0; i < c.depth; ++i)
      MOH_CHECK(given[i] == 0 || given[i] == c.head_dim[i], where, ": head_dim ", given[i], " in layer ", i,
                " conflicts with the official rule for an integer num_heads (head_dim = hidden_size / num_heads = ",
                c.head_dim[i], "); give num_heads as a list to override head_dim");
  }
  if (j.contains("out_channels"))
    MOH_CHECK(j["out_channels"] == c.out_channels(), where, ": out_channels ", j["out_channels"].dump(),
              " does not match in_channels ", c.in_channels, " and learn_sigma ", c.learn_sigma, " (expected ",
              c.out_channels(), ")");
  c.validate(where);
  return c;
}

std::vector<std::string> dit_preset_names() {
  std::vector<std::string> out;
  for (const auto& p : presets()) out.push_back(p.name);
  return out;
}

bool is_dit_preset(const std::string& name) { return find_preset(name) != nullptr; }

DiTConfig dit_preset(const std::string& name) {
  if (const auto* p = find_preset(name)) return *p;
  std::string list;
  for (const auto& n : dit_preset_names()) list += (list.empty() ? "" : ", ") + n;
  throw Error("unknown DiT model '" + name + "': known presets are " + list +
              " (lowercase dashed aliases like moh-dit-xl-2-90 or dit-xl-2 work too), or pass a path to a .json "
              "config");
}

DiTConfig load_dit_config(const std::string& json_path) {
  return DiTConfig::from_json(read_json_file(json_path, "DiT config file"), "DiT config file '" + json_path + "'");
}

void save_dit_config(const DiTConfig& cfg, const std::string& json_path) {
  write_file_atomic(json_path, cfg.to_json().dump(1) + "\n");
}

DiTConfig resolve_dit_config(const std::string& name_or_json) {
  if (const auto* p = find_preset(name_or_json)) return *p;
  if (is_json_file_spec(name_or_json)) return load_dit_config(name_or_json);
  return dit_preset(name_or_json);  // throws with the list of presets
}

}  // namespace moh::dit
