// MoH-DiT configuration: the constructor arguments of the official `DiT` class plus the eight named
// `DiT_models` presets (mirrors SkyworkAI/MoH MoH-DiT/models.py `DiT.__init__` and `MoH_DiT_*_2_*`;
// facts in spec/moh-dit.md §1). Configs are data: presets, JSON load/save, and one resolver for `--model`.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/moh/gates.h"

namespace moh::dit {

struct DiTConfig {
  std::string name = "custom";   // preset name ("MoH-DiT-XL/2-90") or "custom"
  int64_t input_size = 32;       // latent (or pixel) side: image_size / 8 for the SD VAE, e.g. 32 for 256x256
  int64_t patch_size = 2;
  int64_t in_channels = 4;       // 4 for SD-VAE latents; any value works (e.g. 1 for a pixel-space model)
  int64_t hidden_size = 1152;    // C
  int64_t depth = 28;
  // Per layer (size == depth). head_dim is resolved: the official `head_dim=None` means hidden_size / num_heads.
  std::vector<int64_t> num_heads, shared_head, routed_head, head_dim;
  double mlp_ratio = 4.0;
  double class_dropout_prob = 0.1;  // > 0 adds the null-class row used by classifier-free guidance
  int64_t num_classes = 1000;
  bool learn_sigma = true;          // true: out_channels = 2 * in_channels (eps + variance values)
  // false: the dense DiT baseline (facebookresearch/DiT; official MoH-DiT `moh=False`): plain multi-head attention,
  // no router; shared_head = num_heads and routed_head = 0 in every layer, head_dim = hidden_size / num_heads.
  bool moh = true;

  int64_t out_channels() const { return learn_sigma ? 2 * in_channels : in_channels; }
  int64_t grid_size() const { return input_size / patch_size; }      // tokens per side
  int64_t num_patches() const { return grid_size() * grid_size(); }  // T
  int64_t mlp_hidden() const { return static_cast<int64_t>(hidden_size * mlp_ratio); }  // Python int() truncation
  bool has_null_class() const { return class_dropout_prob > 0; }
  int64_t null_class() const { return num_classes; }  // label index of the unconditional ("null") class
  int64_t inner_dim(int64_t layer) const { return num_heads.at(layer) * head_dim.at(layer); }  // h*d of a layer
  // The MoH router configuration of one layer (official DiT cannot build shared_head == 1); dense when !moh.
  MoHGateConfig gate_config(int64_t layer) const;

  // Throws moh::Error naming `where` and the first problem (sizes, list lengths, head configurations).
  void validate(const std::string& where = "DiT config") const;

  // JSON with the official DiT keyword names; per-layer lists always written out (head_dim resolved).
  nlohmann::json to_json() const;
  // Accepts the official keyword names: num_heads as int or list; shared_head/routed_head as int or list;
  // head_dim as null, int or list (null entries = hidden_size / num_heads); optional "name", "moh" (false: the
  // dense DiT; shared_head / routed_head are then not needed and ignored, as by the official code), "out_channels"
  // (checked). An object holding a "model" or "config" object (golden metadata,
  // manifests) is unwrapped. Unknown keys are rejected (typos). Calls validate().
  static DiTConfig from_json(const nlohmann::json& j, const std::string& where = "DiT config JSON");
};

// Names of the presets: the eight official MoH ones, "MoH-DiT-XL/2-90" ... "MoH-DiT-S/2-75", then the twelve dense
// DiT_models of facebookresearch/DiT, "DiT-XL/2" ... "DiT-S/8".
std::vector<std::string> dit_preset_names();
// A preset by official name or alias (case-insensitive; '/', '_' and '-' interchangeable, optional
// "moh-dit-" prefix: "moh-dit-xl-2-90", "MoH_DiT_XL_2_90", "xl-2-90", "dit-xl-2"). input_size 32 (256x256 images;
// DiT-XL-2-512x512.pt needs input_size 64 from a JSON config), num_classes 1000.
// Throws moh::Error listing the known names.
DiTConfig dit_preset(const std::string& name);
bool is_dit_preset(const std::string& name);

DiTConfig load_dit_config(const std::string& json_path);  // throws moh::Error naming the file
void save_dit_config(const DiTConfig& cfg, const std::string& json_path);  // atomic write

// The `--model` resolver: a preset name/alias, or a path to a .json config file.
DiTConfig resolve_dit_config(const std::string& name_or_json);

}  // namespace moh::dit
