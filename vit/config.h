// MoH-ViT (MoH-TransNeXt) configuration: the constructor arguments of the official `transnext.TransNeXt` plus the
// four released builders (SkyworkAI/MoH MoH-ViT/transnext.py: moh_transnext_{small_75,small_80,base_50,base_75})
// and the four dense TransNeXt builders (DaiShiResearch/TransNeXt classification/transnext.py:
// transnext_{micro,tiny,small,base}).
// Configs are data: named presets, JSON load/save, and a resolver for `--model` (preset name or .json file).
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace moh::vit {

// Always 4 stages (the official head reads embed_dims[3] and the position tables assume img // 2^(s+2)).
constexpr int kNumStages = 4;

struct ViTConfig {
  std::string name = "custom";
  int64_t img_size = 224;       // the model is built for exactly this input size (position tables depend on it)
  int64_t pretrain_size = 0;    // 0 = img_size (official: `pretrain_size or img_size`); scales the CPB coordinates
  int64_t patch_size = 4;       // stage-1 stem: conv (2p-1)x(2p-1), stride p
  int64_t in_chans = 3;
  int64_t num_classes = 1000;   // 0 = no head: forward returns the pooled features
  std::vector<int64_t> embed_dims;
  std::vector<int64_t> num_heads;
  std::vector<double> mlp_ratios = {8, 8, 4, 4};
  std::vector<int64_t> depths;
  std::vector<int64_t> sr_ratios = {8, 4, 2, 1};  // sr == 1: full Attention; > 1: AggregatedAttention
  std::vector<int64_t> window_size = {3, 3, 3, 0};  // local window per stage; 0 where unused (official None)
  int64_t fixed_pool_size = 0;  // 0 = pool grid is resolution // sr (official None)
  bool qkv_bias = true;
  std::vector<int64_t> shared_head;
  std::vector<int64_t> routed_head;
  // false: the dense TransNeXt baseline (plain multi-head attention, no router; its checkpoints have no wg keys).
  // shared_head = num_heads and routed_head = 0 then (filled in when absent from a JSON config).
  bool moh = true;
  double norm_eps = 1e-6;  // block norm1/norm2 and stage norms (patch-embed and pool norms keep 1e-5)
  // Optional display names of the classes (num_classes entries); ImageNet names are used for 1000-class models.
  std::vector<std::string> class_names;

  // ---- values the official constructor derives from the above
  int64_t pretrain() const { return pretrain_size > 0 ? pretrain_size : img_size; }
  int64_t resolution(int s) const { return img_size >> (s + 2); }      // token grid side of stage s (0-based)
  int64_t pretrain_resolution(int s) const { return pretrain() >> (s + 2); }
  bool aggregated(int s) const { return sr_ratios.at(s) > 1; }
  // Pooled key grid side of an aggregated stage (official: fixed_pool_size, else resolution // sr).
  int64_t pool_size(int s) const;
  // CPB key grid side: the pool grid for aggregated stages, the token grid for full attention.
  int64_t key_size(int s) const { return aggregated(s) ? pool_size(s) : resolution(s); }
  int64_t head_dim(int s) const { return embed_dims.at(s) / num_heads.at(s); }
  // ConvolutionalGLU hidden width: int(2 * int(dim * mlp_ratio) / 3).
  int64_t mlp_hidden(int s) const;
  // Stem conv of stage s: kernel, stride, padding.
  int64_t stem_kernel(int s) const { return s == 0 ? 2 * patch_size - 1 : 3; }
  int64_t stem_stride(int s) const { return s == 0 ? patch_size : 2; }

  // Throws moh::Error naming `where` and every inconsistency the official constructor would trip over.
  void validate(const std::string& where = "ViT config") const;
  std::string class_name(int64_t index) const;  // class_names[index] if given, else ""
};

// Named presets: canonical official names (moh_transnext_small_75, ..., transnext_micro, ...) and aliases
// (moh-vit-s-75, MoH-ViT-S-75, transnext-micro).
std::vector<std::string> vit_preset_names();  // canonical names
bool is_vit_preset(const std::string& name);
ViTConfig vit_preset(const std::string& name);  // throws moh::Error listing the presets

// JSON: the official constructor arguments as keys (None -> null). Also accepts {"base": "<preset>", ...overrides}
// and a wrapper {"model": {...}} (the golden-file config layout). Unknown keys are errors (typos must not pass).
ViTConfig vit_config_from_json(const nlohmann::json& j, const std::string& where = "ViT config JSON");
nlohmann::json vit_config_to_json(const ViTConfig& c);
ViTConfig load_vit_config(const std::string& path);
void save_vit_config(const ViTConfig& c, const std::string& path);

// `--model` value: a preset name/alias, or a path to a .json config file.
ViTConfig resolve_vit_config(const std::string& spec);

}  // namespace moh::vit
