// MoH-ViT configs: presets mirror the four builders at the end of SkyworkAI/MoH MoH-ViT/transnext.py and the four of
// DaiShiResearch/TransNeXt classification/transnext.py (dense: transnext_micro ... transnext_base); the checks in
// validate() restate the asserts and implicit shape assumptions of transnext.TransNeXt / attention_native.py.
#include "vit/config.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "common/io/atomic_file.h"
#include "common/error.h"
#include "common/io/json_file.h"

namespace moh::vit {
namespace {

ViTConfig make_preset(const std::string& name, std::vector<int64_t> dims, std::vector<int64_t> heads,
                      std::vector<int64_t> depths, std::vector<int64_t> shared, std::vector<int64_t> routed) {
  ViTConfig c;  // struct defaults are the settings all four builders share
  c.name = name;
  c.embed_dims = std::move(dims);
  c.num_heads = std::move(heads);
  c.depths = std::move(depths);
  c.shared_head = std::move(shared);
  c.routed_head = std::move(routed);
  return c;
}

// A dense TransNeXt builder: every head used, no router.
ViTConfig make_dense_preset(const std::string& name, std::vector<int64_t> dims, std::vector<int64_t> heads,
                            std::vector<int64_t> depths) {
  ViTConfig c = make_preset(name, std::move(dims), heads, std::move(depths), heads, {0, 0, 0, 0});
  c.moh = false;
  return c;
}

const std::vector<ViTConfig>& presets() {
  static const std::vector<ViTConfig> p = {
      make_preset("moh_transnext_small_75", {72, 144, 288, 576}, {3, 6, 12, 24}, {5, 5, 22, 5}, {3, 6, 3, 4},
                  {0, 0, 6, 12}),
      make_preset("moh_transnext_small_80", {72, 144, 288, 576}, {3, 6, 12, 24}, {5, 5, 22, 5}, {3, 6, 3, 8},
                  {0, 0, 6, 12}),
      make_preset("moh_transnext_base_50", {96, 192, 384, 768}, {4, 8, 16, 32}, {5, 5, 23, 5}, {2, 2, 2, 4},
                  {2, 4, 6, 8}),
      make_preset("moh_transnext_base_75", {96, 192, 384, 768}, {4, 8, 16, 32}, {5, 5, 23, 5}, {4, 8, 4, 5},
                  {0, 0, 8, 16}),
      make_dense_preset("transnext_micro", {48, 96, 192, 384}, {2, 4, 8, 16}, {2, 2, 15, 2}),
      make_dense_preset("transnext_tiny", {72, 144, 288, 576}, {3, 6, 12, 24}, {2, 2, 15, 2}),
      make_dense_preset("transnext_small", {72, 144, 288, 576}, {3, 6, 12, 24}, {5, 5, 22, 5}),
      make_dense_preset("transnext_base", {96, 192, 384, 768}, {4, 8, 16, 32}, {5, 5, 23, 5}),
  };
  return p;
}

// Lower-case, '_' -> '-': "MoH-ViT-S-75", "moh_vit_s_75" and "moh-vit-s-75" are one name.
std::string normalise(const std::string& s) { return preset_key(s, "moh-vit-"); }

const std::map<std::string, std::string>& aliases() {
  static const std::map<std::string, std::string> a = [] {
    std::map<std::string, std::string> m;
    const std::pair<const char*, const char*> short_names[] = {{"s-75", "moh_transnext_small_75"},
                                                               {"s-80", "moh_transnext_small_80"},
                                                               {"b-50", "moh_transnext_base_50"},
                                                               {"b-75", "moh_transnext_base_75"}};
    for (auto& [s, canon] : short_names) m[s] = canon;  // moh-vit-s-75, MoH-ViT-S-75, s-75
    for (auto& p : presets()) m[normalise(p.name)] = p.name;
    return m;
  }();
  return a;
}

template <typename T>
std::string list_str(const std::vector<T>& v) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << v[i];
  os << "]";
  return os.str();
}

// Official None <-> 0 for the optional integer settings.
nlohmann::json opt_int(int64_t v) { return v > 0 ? nlohmann::json(v) : nlohmann::json(nullptr); }

int64_t read_opt_int(const nlohmann::json& v, const std::string& key, const std::string& where) {
  if (v.is_null()) return 0;
  if (v.is_number_integer()) return v.get<int64_t>();
  // pretrain_size may be written as a pair [h, w] (golden attention files); the model needs a square one.
  if (v.is_array() && v.size() == 2 && v[0].is_number_integer() && v[0] == v[1]) return v[0].get<int64_t>();
  throw Error(where + ": '" + key + "' must be an integer or null (got " + v.dump() + ")");
}

}  // namespace

int64_t ViTConfig::pool_size(int s) const {
  if (!aggregated(s)) return 0;
  return fixed_pool_size > 0 ? fixed_pool_size : resolution(s) / sr_ratios.at(s);
}

int64_t ViTConfig::mlp_hidden(int s) const {
  const auto hidden = static_cast<int64_t>(static_cast<double>(embed_dims.at(s)) * mlp_ratios.at(s));
  return 2 * hidden / 3;  // == int(2 * hidden / 3) for positive integers
}

std::string ViTConfig::class_name(int64_t index) const {
  if (index >= 0 && index < (int64_t)class_names.size()) return class_names[index];
  return "";
}

void ViTConfig::validate(const std::string& where) const {
  const std::string w = where + " '" + name + "'";
  auto need4 = [&](size_t n, const char* key) {
    MOH_CHECK(n == kNumStages, w, ": '", key, "' needs ", kNumStages, " entries (one per stage), got ", n);
  };
  need4(embed_dims.size(), "embed_dims");
  need4(num_heads.size(), "num_heads");
  need4(mlp_ratios.size(), "mlp_ratios");
  need4(depths.size(), "depths");
  need4(sr_ratios.size(), "sr_ratios");
  need4(window_size.size(), "window_size");
  need4(shared_head.size(), "shared_head");
  need4(routed_head.size(), "routed_head");
  MOH_CHECK(patch_size >= 2, w, ": patch_size must be >= 2 (the stem kernel 2p-1 must exceed the stride p), got ",
            patch_size);
  MOH_CHECK(in_chans > 0, w, ": in_chans must be positive");
  MOH_CHECK(num_classes >= 0, w, ": num_classes must be >= 0");
  MOH_CHECK(norm_eps > 0, w, ": norm_eps must be positive");
  MOH_CHECK(class_names.empty() || (int64_t)class_names.size() == num_classes, w, ": class_names has ",
            class_names.size(), " entries but num_classes is ", num_classes);
  // The position tables use img // 2^(s+2) while the convs produce ceil(img / p) then ceil(H / 2): they must agree.
  int64_t grid = (img_size + patch_size - 1) / patch_size;
  for (int s = 0; s < kNumStages; ++s) {
    if (s > 0) grid = (grid + 1) / 2;
    MOH_CHECK(grid == resolution(s) && grid >= 1, w, ": img_size ", img_size, " with patch_size ", patch_size,
              " gives a stage-", s + 1, " grid of ", grid, " but the official position tables assume img_size // ",
              (1 << (s + 2)), " = ", resolution(s), "; use an img_size divisible by ", patch_size * 8,
              " (and patch_size 4)");
    MOH_CHECK(pretrain_resolution(s) >= 2, w, ": pretrain_size ", pretrain(), " is too small: stage ", s + 1,
              " divides coordinates by pretrain_size // ", (1 << (s + 2)), " - 1 = ", pretrain_resolution(s) - 1);
    const auto C = embed_dims[s], h = num_heads[s];
    MOH_CHECK(C > 0 && h > 0 && C % h == 0, w, ": stage ", s + 1, " embed_dim ", C, " must be a positive multiple of ",
              "num_heads ", h);
    MOH_CHECK(depths[s] >= 0, w, ": depths must be >= 0");
    MOH_CHECK(mlp_ratios[s] > 0 && mlp_hidden(s) > 0, w, ": stage ", s + 1, " mlp_ratio ", mlp_ratios[s],
              " gives no hidden units");
    MOH_CHECK(sr_ratios[s] >= 1, w, ": sr_ratios must be >= 1");
    if (aggregated(s)) {
      MOH_CHECK(window_size[s] > 0 && window_size[s] % 2 == 1, w, ": stage ", s + 1,
                " uses aggregated attention (sr_ratio ", sr_ratios[s], ") and needs an odd window_size, got ",
                window_size[s]);
      if (fixed_pool_size > 0)
        MOH_CHECK(fixed_pool_size < resolution(s), w, ": fixed_pool_size ", fixed_pool_size,
                  " must be less than the stage-", s + 1, " grid ", resolution(s), " (official assert)");
      MOH_CHECK(pool_size(s) >= 1, w, ": stage ", s + 1, " grid ", resolution(s), " // sr_ratio ", sr_ratios[s],
                " leaves no pooled tokens");
    }
    // MoH gate structure (spec/moh-attention.md §2): which combinations the official code can run.
    const auto hs = shared_head[s], hr = routed_head[s];
    if (!moh) {
      MOH_CHECK(hs == h && hr == 0, w, ": stage ", s + 1, " of a dense TransNeXt (moh false) uses every head: ",
                "shared_head must be num_heads (", h, ") and routed_head 0; got ", hs, " / ", hr);
      continue;
    }
    MOH_CHECK(hs >= 0 && hs <= h && hr >= 0 && hr <= h - hs, w, ": stage ", s + 1, " shared_head ", hs,
              " / routed_head ", hr, " do not fit num_heads ", h, " (need 0 <= routed <= heads - shared)");
    if (hr == 0)
      MOH_CHECK(hs == h && hs > 1, w, ": stage ", s + 1, " has routed_head 0, so every head must be shared and ",
                "shared_head must equal num_heads (", h, ") and be > 1; got shared_head ", hs);
  }
}

std::vector<std::string> vit_preset_names() {
  std::vector<std::string> n;
  for (auto& p : presets()) n.push_back(p.name);
  return n;
}

bool is_vit_preset(const std::string& name) { return aliases().count(normalise(name)) != 0; }

ViTConfig vit_preset(const std::string& name) {
  auto it = aliases().find(normalise(name));
  if (it == aliases().end()) {
    std::ostringstream os;
    os << "unknown MoH-ViT model '" << name << "'; presets:";
    for (auto& p : presets()) os << " " << p.name;
    os << " (aliases moh-vit-s-75, moh-vit-s-80, moh-vit-b-50, moh-vit-b-75, transnext-micro, ...), or pass a .json "
          "config file";
    throw Error(os.str());
  }
  for (auto& p : presets())
    if (p.name == it->second) return p;
  throw Error("internal: preset table is inconsistent for '" + name + "'");
}

ViTConfig vit_config_from_json(const nlohmann::json& j_in, const std::string& where) {
  MOH_CHECK(j_in.is_object(), where, ": expected a JSON object");
  const nlohmann::json& j = (j_in.contains("model") && j_in["model"].is_object()) ? j_in["model"] : j_in;
  ViTConfig c;
  if (j.contains("base")) {
    MOH_CHECK(j["base"].is_string(), where, ": 'base' must be a preset name");
    c = vit_preset(j["base"].get<std::string>());
    c.name = "custom(" + c.name + ")";
  }
  // Derived values the golden/manifest files also carry; accepted and ignored.
  static const std::set<std::string> derived = {"attention_class", "mlp_hidden", "num_stages", "resolved",
                                                "pool_size", "stage_resolution", "base"};
  try {
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string& k = it.key();
      const auto& v = it.value();
      if (k == "name") c.name = v.get<std::string>();
      else if (k == "img_size") c.img_size = v.get<int64_t>();
      else if (k == "pretrain_size") c.pretrain_size = read_opt_int(v, k, where);
      else if (k == "patch_size") c.patch_size = v.get<int64_t>();
      else if (k == "in_chans") c.in_chans = v.get<int64_t>();
      else if (k == "num_classes") c.num_classes = v.get<int64_t>();
      else if (k == "embed_dims") c.embed_dims = v.get<std::vector<int64_t>>();
      else if (k == "num_heads") c.num_heads = v.get<std::vector<int64_t>>();
      else if (k == "mlp_ratios") c.mlp_ratios = v.get<std::vector<double>>();
      else if (k == "depths") c.depths = v.get<std::vector<int64_t>>();
      else if (k == "sr_ratios") c.sr_ratios = v.get<std::vector<int64_t>>();
      else if (k == "window_size") {
        MOH_CHECK(v.is_array(), where, ": 'window_size' must be a list (null where unused)");
        c.window_size.clear();
        for (auto& e : v) c.window_size.push_back(e.is_null() ? 0 : e.get<int64_t>());
      } else if (k == "fixed_pool_size") c.fixed_pool_size = read_opt_int(v, k, where);
      else if (k == "qkv_bias") c.qkv_bias = v.get<bool>();
      else if (k == "shared_head") c.shared_head = v.get<std::vector<int64_t>>();
      else if (k == "routed_head") c.routed_head = v.get<std::vector<int64_t>>();
      else if (k == "norm_eps") c.norm_eps = v.get<double>();
      else if (k == "moh") c.moh = v.get<bool>();
      else if (k == "class_names") c.class_names = v.get<std::vector<std::string>>();
      else if (!derived.count(k))
        throw Error(where + ": unknown key '" + k + "' (known: name, base, img_size, pretrain_size, patch_size, "
                    "in_chans, num_classes, embed_dims, num_heads, mlp_ratios, depths, sr_ratios, window_size, "
                    "fixed_pool_size, qkv_bias, shared_head, routed_head, moh, norm_eps, class_names)");
    }
    if (!c.moh && !j.contains("shared_head")) c.shared_head = c.num_heads;  // dense: every head, no router
    if (!c.moh && !j.contains("routed_head")) c.routed_head.assign(c.num_heads.size(), 0);
  } catch (const nlohmann::json::exception& e) {
    throw Error(where + ": wrong value type (" + e.what() + ")");
  }
  c.validate(where);
  return c;
}

nlohmann::json vit_config_to_json(const ViTConfig& c) {
  nlohmann::json j;
  j["name"] = c.name;
  j["img_size"] = c.img_size;
  j["pretrain_size"] = opt_int(c.pretrain_size);
  j["patch_size"] = c.patch_size;
  j["in_chans"] = c.in_chans;
  j["num_classes"] = c.num_classes;
  j["embed_dims"] = c.embed_dims;
  j["num_heads"] = c.num_heads;
  j["mlp_ratios"] = c.mlp_ratios;
  j["depths"] = c.depths;
  j["sr_ratios"] = c.sr_ratios;
  auto ws = nlohmann::json::array();
  for (auto v : c.window_size) ws.push_back(opt_int(v));
  j["window_size"] = ws;
  j["fixed_pool_size"] = opt_int(c.fixed_pool_size);
  j["qkv_bias"] = c.qkv_bias;
  j["shared_head"] = c.shared_head;
  j["routed_head"] = c.routed_head;
  if (!c.moh) j["moh"] = false;
  j["norm_eps"] = c.norm_eps;
  if (!c.class_names.empty()) j["class_names"] = c.class_names;
  return j;
}

ViTConfig load_vit_config(const std::string& path) {
  return vit_config_from_json(read_json_file(path, "model config"), "model config '" + path + "'");
}

void save_vit_config(const ViTConfig& c, const std::string& path) {
  write_file_atomic(path, vit_config_to_json(c).dump(2) + "\n");
}

ViTConfig resolve_vit_config(const std::string& spec) {
  if (!is_vit_preset(spec) && is_json_file_spec(spec)) return load_vit_config(spec);
  return vit_preset(spec);
}

}  // namespace moh::vit
