// MoH-DiT model: class-conditional diffusion transformer with adaLN-Zero blocks whose attention is MoHAttention.
// Mirrors SkyworkAI/MoH MoH-DiT/models.py (`TimestepEmbedder`, `LabelEmbedder`, `DiTBlock`, `FinalLayer`, `DiT`,
// `get_2d_sincos_pos_embed`) plus timm `PatchEmbed` / `Mlp`; facts in spec/moh-dit.md §2.
// Every child is registered under its official state_dict name, so a checkpoint loads by name lookup
// (common/weights/state_dict.h load_state_dict / load_safetensors_into, strict).
//
// Parameters are created UNINITIALISED (except pos_embed, which gets the official sin-cos table): weights
// always come from a checkpoint (or init_random_weights from dit/dit_layers.h for benchmarks). All parameters
// have requires_grad=false (inference only). dtype/device: build, load, then `model->to(device, dtype)`;
// fp32, bf16 and fp16 work on CPU (fp32 recommended there) and CUDA. The timestep sinusoid is computed in fp32
// (as the official code) and cast to the model's dtype.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "common/routes/stats.h"
#include "dit/config.h"
#include "dit/dit_layers.h"
#include "dit/moh_attention.h"

namespace moh::dit {

// timm PatchEmbed: Conv2d(in_channels, C, patch, stride patch) -> flatten -> [B, T, C]; input side must equal
// input_size exactly (strict_img_size).
class PatchEmbedImpl : public torch::nn::Module {
 public:
  PatchEmbedImpl(int64_t input_size, int64_t patch_size, int64_t in_channels, int64_t hidden_size);
  torch::Tensor forward(const torch::Tensor& x);  // [B, in, H, W] -> [B, T, C]
  torch::nn::Conv2d proj{nullptr};

 private:
  int64_t input_size_, in_channels_;
};
TORCH_MODULE(PatchEmbed);

class TimestepEmbedderImpl : public torch::nn::Module {
 public:
  explicit TimestepEmbedderImpl(int64_t hidden_size, int64_t frequency_embedding_size = 256);
  // t: [B] (any numeric dtype; original timesteps 0..999) -> [B, C] in the model's dtype.
  torch::Tensor forward(const torch::Tensor& t);
  // The fp32 sinusoid [B, dim]: [cos(t*f_k), sin(t*f_k)], f_k = exp(-ln(max_period) * k / half).
  static torch::Tensor timestep_embedding(const torch::Tensor& t, int64_t dim, double max_period = 10000.0);
  // The same from a frequency table [dim/2] already on t's device (frequencies(): built on the CPU, official order).
  static torch::Tensor timestep_embedding(const torch::Tensor& t, int64_t dim, const torch::Tensor& freqs);
  static torch::Tensor frequencies(int64_t dim, double max_period = 10000.0);
  torch::nn::Sequential mlp{nullptr};  // mlp.0 Linear(256, C), mlp.1 SiLU, mlp.2 Linear(C, C)

 private:
  int64_t freq_dim_;
  torch::Tensor freqs_;  // frequencies(freq_dim_) on the device of the last forward: no host->device copy per call
  Linear first_{nullptr};  // mlp.0, whose dtype the sinusoid is cast to
};
TORCH_MODULE(TimestepEmbedder);

// Eval-mode label embedding: labels in [0, num_classes] (num_classes = null class when class_dropout_prob > 0).
class LabelEmbedderImpl : public torch::nn::Module {
 public:
  LabelEmbedderImpl(int64_t num_classes, int64_t hidden_size, bool null_class);
  // [B] int64 -> [B, C]. The range check runs only for CPU labels (no device->host sync per forward on a GPU):
  // DiT::forward checks CPU labels before moving them to the model's device; labels already on the GPU are not
  // checked (an out-of-range one trips a device-side assert in the embedding).
  torch::Tensor forward(const torch::Tensor& labels);
  void check_labels(const torch::Tensor& labels) const;  // throws moh::Error unless 1-D and in [0, rows)
  torch::nn::Embedding embedding_table{nullptr};

 private:
  int64_t rows_;
};
TORCH_MODULE(LabelEmbedder);

// timm Mlp with GELU(tanh): fc1 -> gelu -> fc2.
class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(int64_t in_features, int64_t hidden_features);
  torch::Tensor forward(const torch::Tensor& x);
  Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(Mlp);

// Optional per-block intermediates for parity checks.
struct DiTBlockDebug {
  torch::Tensor attn;   // attn(modulate(norm1(x))) before gate_msa, [B, T, C]
  torch::Tensor gates;  // MoH gates [B, T, h]
  torch::Tensor router_probs, topk_indices;
};

class DiTBlockImpl : public torch::nn::Module {
 public:
  DiTBlockImpl(const DiTConfig& cfg, int64_t layer);
  // x: [B, T, C]; silu_c: SiLU(c) [B, C] (computed once per forward and shared by all blocks).
  // mod: this block's adaLN output [B, 6C] when the caller computed it (batched adaLN); undefined = compute here.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& silu_c, DiTBlockDebug* debug = nullptr,
                        const torch::Tensor& mod = {});
  MoHAttention attn{nullptr};
  Mlp mlp{nullptr};
  torch::nn::Sequential adaLN_modulation{nullptr};  // .0 SiLU (applied by the caller once), .1 Linear(C, 6C)
};
TORCH_MODULE(DiTBlock);

class FinalLayerImpl : public torch::nn::Module {
 public:
  FinalLayerImpl(int64_t hidden_size, int64_t patch_size, int64_t out_channels);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& silu_c);  // [B,T,C] -> [B,T,p*p*out]
  Linear linear{nullptr};
  torch::nn::Sequential adaLN_modulation{nullptr};  // .1 Linear(C, 2C)
};
TORCH_MODULE(FinalLayer);

// Optional intermediates of DiT::forward (names follow the golden file's mid.* tensors).
struct DiTDebug {
  bool enabled = true;
  std::map<std::string, torch::Tensor> tensors;  // "x_embedder", "t_freq", "t_embedder", "y_embedder", "c",
                                                 // "blocks.{i}", "blocks.{i}.attn", "blocks.{i}.attn.gates",
                                                 // "final_layer"
};

class DiTImpl : public torch::nn::Module {
 public:
  explicit DiTImpl(const DiTConfig& cfg);  // validates cfg

  // x: [B, in_channels, input_size, input_size]; t: [B] original timesteps (int64 or float); y: [B] int64 labels
  // (num_classes = null class). Returns [B, out_channels, input_size, input_size]: channels [0, in) eps,
  // [in, 2*in) variance values when learn_sigma. Output dtype = model dtype.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& y,
                        DiTDebug* debug = nullptr);

  // Official `forward_with_cfg`: x is the 2B sampler batch; only x[:B] is read (duplicated); y = [labels, null].
  // eps = uncond + cfg_scale * (cond - uncond) is written into both halves for channels [0, 3) (official
  // "exact reproducibility" choice; [0, in_channels) when guide_all_channels); other channels pass unguided.
  torch::Tensor forward_with_cfg(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& y,
                                 double cfg_scale, bool guide_all_channels = false);

  // [B, T, p*p*out] -> [B, out, H, W] (official nhwpqc -> nchpwq).
  torch::Tensor unpatchify(const torch::Tensor& x) const;

  const DiTConfig& config() const { return cfg_; }
  // Optional: called in every forward with each block's name ("blocks.{i}") and its gates [B, T, h] (with CFG the
  // doubled batch: conditional rows first); empty (the default) records nothing. Used by moh-routes (dit/routes.h).
  void set_gate_recorder(GateRecorder recorder) { gate_recorder_ = std::move(recorder); }
  // The 2-D sin-cos table [1, T, C] as the official get_2d_sincos_pos_embed (float64 math, cast to fp32).
  static torch::Tensor sincos_pos_embed(int64_t hidden_size, int64_t grid_size);
  // Batched adaLN (dit/fused_ops.h): every block's adaLN_modulation.1 weight/bias moves into one stacked tensor (the
  // blocks' parameters become views of it: no extra memory), so forward runs one [B, C] x [C, depth*6C] GEMM instead
  // of one per block. forward() does this itself on its first call without gradients; a later to()/cast undoes the
  // views, which forward detects (then per-block GEMMs until it stacks again). Never for trainable weights
  // (requires_grad: a trainer may own their storage).
  void stack_adaln();
  bool adaln_stacked() const;

  torch::Tensor pos_embed;  // parameter [1, T, C], requires_grad false; the checkpoint value overrides the init
  PatchEmbed x_embedder{nullptr};
  TimestepEmbedder t_embedder{nullptr};
  LabelEmbedder y_embedder{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  FinalLayer final_layer{nullptr};

 private:
  DiTConfig cfg_;
  GateRecorder gate_recorder_;
  std::vector<DiTBlock> block_list_;  // typed handles to blocks (the ModuleList holds the same modules)
  torch::Tensor adaln_w_, adaln_b_;   // [depth*6C, C], [depth*6C] when stacked (stack_adaln)
};
TORCH_MODULE(DiT);

// Loads a checkpoint (safetensors with official key names, or a DiT training dict's "ema" prefix stripped)
// strictly into `model` (on its current device/dtype). Throws moh::Error listing every mismatch.
void load_dit_weights(DiT& model, const std::string& safetensors_path);

// The sibling of vit::build_vit: builds the model for `cfg`, loads `weights` strictly when not empty
// (load_dit_weights), moves it to device/dtype and sets eval mode.
DiT build_dit(const DiTConfig& cfg, const std::string& weights, const torch::Device& device, torch::Dtype dtype);

// Denoise callback for the samplers in dit/diffusion.h: casts x to the model dtype/device, runs
// forward_with_cfg (use_cfg; y must then be [labels, null labels]) or forward, and returns the output cast
// back to x's dtype. `t_original` is the original timestep tensor the sampler passes.
struct DenoiserOptions {
  bool use_cfg = true;              // sample.py: always; sample_ddp.py: only when cfg_scale > 1
  double cfg_scale = 4.0;
  bool guide_all_channels = false;  // false = official 3-channel guidance
};
std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&)> make_dit_denoiser(
    DiT model, torch::Tensor y, DenoiserOptions options = {});

}  // namespace moh::dit
