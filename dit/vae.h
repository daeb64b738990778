// Stable Diffusion VAE decode path (AutoencoderKL: post_quant_conv -> Decoder), as used by MoH-DiT / DiT sample.py.
// Mirrors diffusers src/diffusers/models/autoencoders/autoencoder_kl.py (AutoencoderKL.decode), vae.py (Decoder),
// unets/unet_2d_blocks.py (UNetMidBlock2D, UpDecoderBlock2D), resnet.py (ResnetBlock2D), upsampling.py
// (Upsample2D) and attention_processor.py (Attention + AttnProcessor). Spec: shared/spec/vae-decoder.md.
// Modules are registered under the current diffusers state_dict names; the legacy diffusers names
// (query/key/value/proj_attn) and CompVis/ldm names (decoder.mid.block_1, reversed decoder.up.{n-1-i}, ...) are
// mapped onto them by one rename list per dialect (vae_load_options).
#pragma once
#include <torch/torch.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/weights/state_dict.h"

namespace moh {
class SafetensorsFile;
}

namespace moh::dit {

// Architecture of the AutoencoderKL decoder. Field names follow diffusers' config.json.
struct VaeConfig {
  int64_t latent_channels = 4;
  int64_t out_channels = 3;
  std::vector<int64_t> block_out_channels{128, 256, 512, 512};  // encoder order; the decoder runs it reversed
  int64_t layers_per_block = 2;                                 // decoder up blocks hold layers_per_block + 1 resnets
  int64_t norm_num_groups = 32;
  bool mid_block_add_attention = true;
  double scaling_factor = 0.18215;  // decode() divides latents by it first (SD v1 VAE; DiT hard-codes it)
  std::string name = "sd-vae-ft-ema";

  // "sd-vae-ft-ema" and "sd-vae-ft-mse" (identical architecture, different weights).
  static VaeConfig preset(const std::string& name);
  static std::vector<std::string> preset_names();
  // Accepts a diffusers config.json object (unknown keys such as down_block_types/sample_size are ignored,
  // act_fn must be "silu" and up blocks "UpDecoderBlock2D").
  static VaeConfig from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;
  // A preset name, a JSON file path, or inline JSON text.
  static VaeConfig parse(const std::string& spec);
  void validate() const;
  // Spatial upsampling factor latent -> image (8 for the SD VAE).
  int64_t downscale() const { return int64_t{1} << (block_out_channels.size() - 1); }
};

// ResnetBlock2D without time embedding: GN-SiLU-conv1-GN-SiLU-conv2 + (1x1 conv_shortcut | identity).
class VaeResnetBlockImpl : public torch::nn::Module {
 public:
  VaeResnetBlockImpl(int64_t in, int64_t out, int64_t groups);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::GroupNorm norm1{nullptr}, norm2{nullptr};
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv_shortcut{nullptr};
};
TORCH_MODULE(VaeResnetBlock);

// Single-head spatial self-attention of the mid block (diffusers Attention with heads = C / C = 1, residual).
class VaeAttentionImpl : public torch::nn::Module {
 public:
  VaeAttentionImpl(int64_t channels, int64_t groups);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::GroupNorm group_norm{nullptr};
  torch::nn::Linear to_q{nullptr}, to_k{nullptr}, to_v{nullptr};
  torch::nn::ModuleList to_out;  // [Linear] (diffusers' Dropout at index 1 has no parameters)
};
TORCH_MODULE(VaeAttention);

// UNetMidBlock2D: resnets.0 -> attentions.0 -> resnets.1.
class VaeMidBlockImpl : public torch::nn::Module {
 public:
  VaeMidBlockImpl(int64_t channels, int64_t groups, bool add_attention);
  torch::Tensor forward(const torch::Tensor& x, std::map<std::string, torch::Tensor>* trace = nullptr,
                        const std::string& prefix = "");

  torch::nn::ModuleList resnets, attentions;
};
TORCH_MODULE(VaeMidBlock);

// Upsample2D: nearest x2 then 3x3 conv.
class VaeUpsampleImpl : public torch::nn::Module {
 public:
  explicit VaeUpsampleImpl(int64_t channels);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Conv2d conv{nullptr};
};
TORCH_MODULE(VaeUpsample);

// UpDecoderBlock2D: (layers_per_block + 1) resnets, then an optional upsampler.
class VaeUpBlockImpl : public torch::nn::Module {
 public:
  VaeUpBlockImpl(int64_t in, int64_t out, int64_t num_resnets, int64_t groups, bool add_upsample);
  torch::Tensor forward(torch::Tensor x);

  torch::nn::ModuleList resnets, upsamplers;
};
TORCH_MODULE(VaeUpBlock);

// vae.py Decoder: conv_in -> mid_block -> up_blocks -> conv_norm_out -> SiLU -> conv_out.
class VaeDecoderStackImpl : public torch::nn::Module {
 public:
  explicit VaeDecoderStackImpl(const VaeConfig& c);
  torch::Tensor forward(const torch::Tensor& z, std::map<std::string, torch::Tensor>* trace = nullptr);

  torch::nn::Conv2d conv_in{nullptr}, conv_out{nullptr};
  VaeMidBlock mid_block{nullptr};
  torch::nn::ModuleList up_blocks;
  torch::nn::GroupNorm conv_norm_out{nullptr};
};
TORCH_MODULE(VaeDecoderStack);

// AutoencoderKL restricted to decoding: children "post_quant_conv" and "decoder".
class VaeImpl : public torch::nn::Module {
 public:
  explicit VaeImpl(VaeConfig c = {});
  // image = decoder(post_quant_conv(latents / scaling_factor)), [B, latent, h, w] -> [B, out, h*f, w*f], not clamped.
  torch::Tensor decode(const torch::Tensor& latents);
  // Same without the division (for latents already scaled, e.g. the golden in.z). When `trace` is given, stores
  // the intermediates under the names the golden files use ("post_quant_conv", "decoder.conv_in", ...).
  torch::Tensor decode_scaled(const torch::Tensor& z, std::map<std::string, torch::Tensor>* trace = nullptr);
  const VaeConfig& config() const { return config_; }

  torch::nn::Conv2d post_quant_conv{nullptr};
  VaeDecoderStack decoder{nullptr};

 private:
  VaeConfig config_;
};
TORCH_MODULE(Vae);

// Checkpoint naming conventions of the same decoder tensors.
enum class VaeDialect { DiffusersCurrent, DiffusersLegacy, Ldm };
const char* vae_dialect_name(VaeDialect d);
// Decides from the keys (after any "first_stage_model." prefix is stripped).
VaeDialect detect_vae_dialect(const std::vector<std::string>& keys);
// Renames (the dialect's one rename list), ignores (encoder, quant_conv, ldm loss) and reshape policy for loading.
LoadOptions vae_load_options(VaeDialect d, const VaeConfig& c);
// The checkpoint's key -> tensor map with only the VAE part kept: in a full SD checkpoint (keys prefixed
// "first_stage_model.") everything else is dropped and the prefix removed.
std::map<std::string, torch::Tensor> select_vae_tensors(const std::map<std::string, torch::Tensor>& tensors);
// Loads any dialect strictly (missing/unexpected/mismatched keys listed in one moh::Error naming `source`).
VaeDialect load_vae_weights(Vae& vae, const std::map<std::string, torch::Tensor>& tensors, const std::string& source);

// Builds and loads a VAE from a safetensors file. The architecture comes from the file's metadata
// ("vae_config", written by scripts/convert_checkpoint.py and by save_vae) when present, else `fallback`.
Vae load_vae(const std::string& path, const VaeConfig& fallback = VaeConfig::preset("sd-vae-ft-ema"));
// Writes the VAE's state dict (current diffusers names) plus its config as metadata "vae_config".
void save_vae(Vae& vae, const std::string& path);

}  // namespace moh::dit
