// Stable Diffusion VAE decoder (diffusers AutoencoderKL decode path); see dit/vae.h and shared/spec/vae-decoder.md.
#include "dit/vae.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "common/error.h"
#include "common/io/json_file.h"
#include "common/weights/safetensors.h"
#include "common/weights/weights_file.h"

namespace moh::dit {
namespace F = torch::nn::functional;

namespace {
constexpr double kNormEps = 1e-6;  // every GroupNorm of the SD VAE decoder

torch::nn::GroupNorm group_norm(int64_t groups, int64_t channels) {
  return torch::nn::GroupNorm(torch::nn::GroupNormOptions(groups, channels).eps(kNormEps).affine(true));
}
torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t k) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k).padding(k / 2).bias(true));
}
}  // namespace

// ------------------------------------------------------------------------------------------------ config
VaeConfig VaeConfig::preset(const std::string& name) {
  // Both hub configs (stabilityai/sd-vae-ft-ema, -mse) carry the same architecture (spec §1).
  if (name == "sd-vae-ft-ema" || name == "sd-vae-ft-mse") {
    VaeConfig c;
    c.name = name;
    return c;
  }
  std::ostringstream os;
  os << "unknown VAE preset '" << name << "'; known presets:";
  for (const auto& n : preset_names()) os << " " << n;
  os << " (or pass a diffusers config.json / inline JSON)";
  throw Error(os.str());
}

std::vector<std::string> VaeConfig::preset_names() { return {"sd-vae-ft-ema", "sd-vae-ft-mse"}; }

VaeConfig VaeConfig::from_json(const nlohmann::json& j) {
  MOH_CHECK(j.is_object(), "VAE config must be a JSON object, got: ", j.dump());
  VaeConfig c;
  c.name = j.value("name", std::string("custom"));
  try {
    c.latent_channels = j.value("latent_channels", c.latent_channels);
    c.out_channels = j.value("out_channels", c.out_channels);
    if (j.contains("block_out_channels")) c.block_out_channels = j.at("block_out_channels").get<std::vector<int64_t>>();
    c.layers_per_block = j.value("layers_per_block", c.layers_per_block);
    c.norm_num_groups = j.value("norm_num_groups", c.norm_num_groups);
    c.mid_block_add_attention = j.value("mid_block_add_attention", c.mid_block_add_attention);
    // diffusers writes "scaling_factor": null in some configs; null keeps the library default.
    if (j.contains("scaling_factor") && !j.at("scaling_factor").is_null())
      c.scaling_factor = j.at("scaling_factor").get<double>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("VAE config has a field of the wrong type (") + e.what() + ")");
  }
  const std::string act = j.value("act_fn", std::string("silu"));
  if (act != "silu") throw Unsupported("VAE act_fn '" + act + "' is not supported (only 'silu', as in the SD VAE)");
  if (j.contains("up_block_types"))
    for (const auto& t : j.at("up_block_types"))
      if (t != "UpDecoderBlock2D")
        throw Unsupported("VAE up block type " + t.dump() + " is not supported (only UpDecoderBlock2D)");
  if (j.contains("shift_factor") && !j.at("shift_factor").is_null() && j.at("shift_factor").get<double>() != 0.0)
    throw Unsupported("VAE shift_factor is not supported (the SD v1 VAE has none)");
  c.validate();
  return c;
}

nlohmann::json VaeConfig::to_json() const {
  std::vector<std::string> up(block_out_channels.size(), "UpDecoderBlock2D");
  return {{"name", name},
          {"latent_channels", latent_channels},
          {"out_channels", out_channels},
          {"block_out_channels", block_out_channels},
          {"layers_per_block", layers_per_block},
          {"norm_num_groups", norm_num_groups},
          {"mid_block_add_attention", mid_block_add_attention},
          {"act_fn", "silu"},
          {"up_block_types", up},
          {"scaling_factor", scaling_factor}};
}

VaeConfig VaeConfig::parse(const std::string& spec) {
  for (const auto& n : preset_names())
    if (spec == n) return preset(n);
  if (spec.empty() || spec.front() != '{') {
    if (!std::ifstream(spec).good()) preset(spec);  // not a file: throws "unknown preset" listing the presets
    return from_json(read_json_file(spec, "VAE config"));
  }
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(spec);
  } catch (const std::exception& e) {
    throw Error(std::string("VAE config text is not valid JSON (") + e.what() + ")");
  }
  return from_json(j);
}

void VaeConfig::validate() const {
  MOH_CHECK(!block_out_channels.empty() && block_out_channels.size() <= 8, "VAE block_out_channels must have 1..8 "
            "entries, got ", block_out_channels.size());
  MOH_CHECK(latent_channels > 0 && out_channels > 0 && layers_per_block >= 0 && norm_num_groups > 0,
            "VAE config has a non-positive size (latent_channels ", latent_channels, ", out_channels ", out_channels,
            ", layers_per_block ", layers_per_block, ", norm_num_groups ", norm_num_groups, ")");
  for (auto ch : block_out_channels)
    MOH_CHECK(ch > 0 && ch % norm_num_groups == 0, "VAE block_out_channels entry ", ch,
              " is not a positive multiple of norm_num_groups ", norm_num_groups);
  MOH_CHECK(scaling_factor > 0 && std::isfinite(scaling_factor), "VAE scaling_factor must be positive, got ",
            scaling_factor);
}

// ------------------------------------------------------------------------------------------------ modules
VaeResnetBlockImpl::VaeResnetBlockImpl(int64_t in, int64_t out, int64_t groups) {
  norm1 = register_module("norm1", group_norm(groups, in));
  conv1 = register_module("conv1", conv(in, out, 3));
  norm2 = register_module("norm2", group_norm(groups, out));
  conv2 = register_module("conv2", conv(out, out, 3));
  if (in != out) conv_shortcut = register_module("conv_shortcut", conv(in, out, 1));
}

torch::Tensor VaeResnetBlockImpl::forward(const torch::Tensor& x) {
  auto h = conv1(torch::silu(norm1(x)));
  h = conv2(torch::silu(norm2(h)));  // dropout 0 at inference
  return (conv_shortcut ? conv_shortcut(x) : x) + h;  // output_scale_factor 1
}

VaeAttentionImpl::VaeAttentionImpl(int64_t channels, int64_t groups) {
  group_norm = register_module("group_norm", moh::dit::group_norm(groups, channels));
  to_q = register_module("to_q", torch::nn::Linear(channels, channels));
  to_k = register_module("to_k", torch::nn::Linear(channels, channels));
  to_v = register_module("to_v", torch::nn::Linear(channels, channels));
  to_out = register_module("to_out", torch::nn::ModuleList(torch::nn::Linear(channels, channels)));
}

torch::Tensor VaeAttentionImpl::forward(const torch::Tensor& x) {
  const auto B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  auto t = group_norm(x).reshape({B, C, H * W}).transpose(1, 2);  // [B,C,H,W] -> [B,C,HW] -> [B,HW,C], n = row*W+col
  auto q = to_q(t), k = to_k(t), v = to_v(t);                     // [B,HW,C] each: one head of width C
  const double scale = 1.0 / std::sqrt(static_cast<double>(C));
  // The [HW,HW] score matrix is the memory peak (512^2 images: 4096^2 per sample), so go a few samples at a time.
  const int64_t N = H * W;
  const int64_t chunk = std::max<int64_t>(1, (int64_t{1} << 27) / std::max<int64_t>(1, N * N));
  std::vector<torch::Tensor> outs;
  for (int64_t b0 = 0; b0 < B; b0 += chunk) {
    const int64_t b1 = std::min(B, b0 + chunk);
    auto qs = q.slice(0, b0, b1), ks = k.slice(0, b0, b1), vs = v.slice(0, b0, b1);
    auto scores = torch::matmul(qs, ks.transpose(1, 2)) * scale;  // [b,HW,C] x [b,C,HW] -> [b,HW,HW]
    // Softmax in fp32 like the legacy AttentionBlock's upcast; a no-op cast for fp32 models.
    auto p = torch::softmax(scores.to(torch::kFloat32), -1).to(vs.scalar_type());
    outs.push_back(torch::matmul(p, vs));  // [b,HW,HW] x [b,HW,C] -> [b,HW,C]
  }
  auto o = outs.size() == 1 ? outs[0] : torch::cat(outs, 0);
  o = to_out[0]->as<torch::nn::Linear>()->forward(o);
  return o.transpose(1, 2).reshape({B, C, H, W}) + x;  // [B,HW,C] -> [B,C,HW] -> [B,C,H,W]; residual, rescale 1
}

VaeMidBlockImpl::VaeMidBlockImpl(int64_t channels, int64_t groups, bool add_attention) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  attentions = register_module("attentions", torch::nn::ModuleList());
  resnets->push_back(VaeResnetBlock(channels, channels, groups));
  if (add_attention) attentions->push_back(VaeAttention(channels, groups));
  resnets->push_back(VaeResnetBlock(channels, channels, groups));
}

torch::Tensor VaeMidBlockImpl::forward(const torch::Tensor& x, std::map<std::string, torch::Tensor>* trace,
                                       const std::string& prefix) {
  auto h = resnets[0]->as<VaeResnetBlock>()->forward(x);
  if (!attentions->is_empty()) {
    h = attentions[0]->as<VaeAttention>()->forward(h);
    if (trace) (*trace)[prefix + "attentions.0"] = h;
  }
  return resnets[1]->as<VaeResnetBlock>()->forward(h);
}

VaeUpsampleImpl::VaeUpsampleImpl(int64_t channels) { conv = register_module("conv", moh::dit::conv(channels, channels, 3)); }

torch::Tensor VaeUpsampleImpl::forward(const torch::Tensor& x) {
  // out[y, x] = in[y / 2, x / 2]: exact in any dtype, so no fp32 round trip is needed.
  auto up = F::interpolate(x, F::InterpolateFuncOptions()
                                  .scale_factor(std::vector<double>{2.0, 2.0})
                                  .mode(torch::kNearest));  // [B,C,H,W] -> [B,C,2H,2W]
  return conv(up);
}

VaeUpBlockImpl::VaeUpBlockImpl(int64_t in, int64_t out, int64_t num_resnets, int64_t groups, bool add_upsample) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  upsamplers = register_module("upsamplers", torch::nn::ModuleList());
  for (int64_t j = 0; j < num_resnets; ++j) resnets->push_back(VaeResnetBlock(j == 0 ? in : out, out, groups));
  if (add_upsample) upsamplers->push_back(VaeUpsample(out));
}

torch::Tensor VaeUpBlockImpl::forward(torch::Tensor x) {
  for (const auto& r : *resnets) x = r->as<VaeResnetBlock>()->forward(x);
  for (const auto& u : *upsamplers) x = u->as<VaeUpsample>()->forward(x);
  return x;
}

VaeDecoderStackImpl::VaeDecoderStackImpl(const VaeConfig& c) {
  const auto& ch = c.block_out_channels;
  const int64_t n = static_cast<int64_t>(ch.size());
  conv_in = register_module("conv_in", conv(c.latent_channels, ch.back(), 3));
  mid_block = register_module("mid_block", VaeMidBlock(ch.back(), c.norm_num_groups, c.mid_block_add_attention));
  up_blocks = register_module("up_blocks", torch::nn::ModuleList());
  // Up block i works at reversed channel ch[n-1-i] and upsamples unless it is the last (spec §2, §3.2).
  int64_t prev = ch.back();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t out = ch[n - 1 - i];
    up_blocks->push_back(VaeUpBlock(prev, out, c.layers_per_block + 1, c.norm_num_groups, i + 1 < n));
    prev = out;
  }
  conv_norm_out = register_module("conv_norm_out", group_norm(c.norm_num_groups, ch.front()));
  conv_out = register_module("conv_out", conv(ch.front(), c.out_channels, 3));
}

torch::Tensor VaeDecoderStackImpl::forward(const torch::Tensor& z, std::map<std::string, torch::Tensor>* trace) {
  auto h = conv_in(z);
  if (trace) (*trace)["decoder.conv_in"] = h;
  h = mid_block(h, trace, "decoder.mid_block.");
  if (trace) (*trace)["decoder.mid_block"] = h;
  for (size_t i = 0; i < up_blocks->size(); ++i) {
    h = up_blocks[i]->as<VaeUpBlock>()->forward(h);
    if (trace) (*trace)["decoder.up_blocks." + std::to_string(i)] = h;
  }
  h = conv_norm_out(h);
  if (trace) (*trace)["decoder.conv_norm_out"] = h;
  return conv_out(torch::silu(h));
}

VaeImpl::VaeImpl(VaeConfig c) : config_(std::move(c)) {
  config_.validate();
  post_quant_conv = register_module("post_quant_conv", conv(config_.latent_channels, config_.latent_channels, 1));
  decoder = register_module("decoder", VaeDecoderStack(config_));
}

torch::Tensor VaeImpl::decode(const torch::Tensor& latents) {
  // Division (not multiplication by the reciprocal) like sample.py, so fp32 results match bit for bit.
  return decode_scaled(latents / config_.scaling_factor);
}

torch::Tensor VaeImpl::decode_scaled(const torch::Tensor& z, std::map<std::string, torch::Tensor>* trace) {
  MOH_CHECK(z.dim() == 4 && z.size(1) == config_.latent_channels, "VAE decode expects latents [B, ",
            config_.latent_channels, ", h, w], got ", z.sizes());
  auto h = post_quant_conv(z);
  if (trace) (*trace)["post_quant_conv"] = h;
  return decoder(h, trace);
}

// ------------------------------------------------------------------------------------------------ loading
const char* vae_dialect_name(VaeDialect d) {
  switch (d) {
    case VaeDialect::DiffusersCurrent: return "diffusers (to_q/to_k/to_v/to_out.0)";
    case VaeDialect::DiffusersLegacy: return "diffusers legacy (query/key/value/proj_attn)";
    case VaeDialect::Ldm: return "CompVis/ldm";
  }
  return "?";
}

VaeDialect detect_vae_dialect(const std::vector<std::string>& keys) {
  bool ldm = false, legacy = false;
  for (const auto& k : keys) {
    if (k.find("decoder.mid.") != std::string::npos || k.find("decoder.up.") != std::string::npos ||
        k.find("decoder.norm_out.") != std::string::npos)
      ldm = true;
    if (k.find("attentions.0.query.") != std::string::npos || k.find("attentions.0.proj_attn.") != std::string::npos)
      legacy = true;
  }
  return ldm ? VaeDialect::Ldm : legacy ? VaeDialect::DiffusersLegacy : VaeDialect::DiffusersCurrent;
}

LoadOptions vae_load_options(VaeDialect d, const VaeConfig& c) {
  LoadOptions o;
  // Encoder-side tensors are present in every released file but not needed to decode (spec §3).
  o.ignore_prefixes = {"encoder.", "quant_conv."};
  const std::string att = "decoder.mid_block.attentions.0.";
  if (d == VaeDialect::DiffusersLegacy) {
    o.renames = {{att + "query.", att + "to_q."},
                 {att + "key.", att + "to_k."},
                 {att + "value.", att + "to_v."},
                 {att + "proj_attn.", att + "to_out.0."}};
  } else if (d == VaeDialect::Ldm) {
    // ldm training checkpoints also carry the LPIPS/discriminator loss module.
    o.ignore_prefixes.push_back("loss.");
    o.renames = {{"decoder.mid.block_1.", "decoder.mid_block.resnets.0."},
                 {"decoder.mid.block_2.", "decoder.mid_block.resnets.1."},
                 {"decoder.mid.attn_1.norm.", att + "group_norm."},
                 {"decoder.mid.attn_1.q.", att + "to_q."},
                 {"decoder.mid.attn_1.k.", att + "to_k."},
                 {"decoder.mid.attn_1.v.", att + "to_v."},
                 {"decoder.mid.attn_1.proj_out.", att + "to_out.0."},
                 {"decoder.norm_out.", "decoder.conv_norm_out."},
                 {".nin_shortcut.", ".conv_shortcut."}};
    // ldm numbers up blocks in resolution order: ldm up.{n-1-i} runs i-th (spec §3.1).
    const int64_t n = static_cast<int64_t>(c.block_out_channels.size());
    for (int64_t i = 0; i < n; ++i) {
      const std::string from = "decoder.up." + std::to_string(n - 1 - i) + ".";
      const std::string to = "decoder.up_blocks." + std::to_string(i) + ".";
      o.renames.push_back({from + "block.", to + "resnets."});
      o.renames.push_back({from + "upsample.", to + "upsamplers.0."});
    }
    // ldm q/k/v/proj_out are 1x1 convs [C,C,1,1]; same values as the Linear [C,C].
    o.reshape_same_numel = true;
  }
  return o;
}

std::map<std::string, torch::Tensor> select_vae_tensors(const std::map<std::string, torch::Tensor>& tensors) {
  static const std::string full = "first_stage_model.";
  bool has_full = false;
  for (const auto& kv : tensors)
    if (kv.first.rfind(full, 0) == 0) has_full = true;
  if (!has_full) return tensors;
  std::map<std::string, torch::Tensor> out;
  for (const auto& [k, t] : tensors)
    if (k.rfind(full, 0) == 0) out[k.substr(full.size())] = t;
  return out;
}

VaeDialect load_vae_weights(Vae& vae, const std::map<std::string, torch::Tensor>& tensors, const std::string& source) {
  auto sel = select_vae_tensors(tensors);
  std::vector<std::string> keys;
  for (const auto& kv : sel) keys.push_back(kv.first);
  const auto dialect = detect_vae_dialect(keys);
  auto o = vae_load_options(dialect, vae->config());
  o.source = source + " (VAE, " + vae_dialect_name(dialect) + " naming, architecture '" + vae->config().name + "')";
  load_state_dict(*vae, sel, o);
  return dialect;
}

Vae load_vae(const std::string& path, const VaeConfig& fallback) {
  WeightsFile file(path);  // safetensors or a PyTorch checkpoint (.bin/.ckpt), by content
  VaeConfig cfg = fallback;
  const std::string meta = file.meta("vae_config");
  if (!meta.empty()) {
    try {
      cfg = VaeConfig::from_json(nlohmann::json::parse(meta));
    } catch (const nlohmann::json::exception& e) {
      throw Error("VAE file '" + path + "': metadata 'vae_config' is not valid JSON (" + e.what() + ")");
    }
  }
  // Copy only what decoding can use: a full SD checkpoint holds ~4 GB of UNet/text-encoder tensors.
  bool full = false;
  for (const auto& n : file.names()) full = full || n.rfind("first_stage_model.", 0) == 0;
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& n : file.names()) {
    if (full && n.rfind("first_stage_model.", 0) != 0) continue;
    const std::string k = full ? n.substr(std::string("first_stage_model.").size()) : n;
    if (k.rfind("encoder.", 0) == 0 || k.rfind("quant_conv.", 0) == 0 || k.rfind("loss.", 0) == 0) continue;
    tensors[n] = file.tensor(n);
  }
  Vae vae(cfg);
  load_vae_weights(vae, tensors, "'" + path + "'");
  vae->eval();
  return vae;
}

void save_vae(Vae& vae, const std::string& path) {
  write_safetensors(path, state_dict(*vae), {{"vae_config", vae->config().to_json().dump()}, {"format", "pt"}});
}

}  // namespace moh::dit
