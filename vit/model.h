// MoH-TransNeXt classifier (SkyworkAI/MoH MoH-ViT/transnext.py: DWConv, ConvolutionalGLU, Block,
// OverlapPatchEmbed, TransNeXt). Children are registered under the official state_dict names:
// patch_embed{s}.proj/.norm, block{s}.{j}.{norm1,attn,norm2,mlp.fc1,mlp.dwconv.dwconv,mlp.fc2}, norm{s}, head.
// LayerNorm epsilons: patch_embed{s}.norm and attn.norm 1e-5 (nn.LayerNorm default); norm1/norm2/norm{s} norm_eps.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "common/routes/stats.h"
#include "vit/attention.h"
#include "vit/config.h"
#include "vit/cpb.h"

namespace moh::vit {

// Named intermediates, keyed like the golden `mid.*` tensors without the prefix: "patch_embed1", "block1.0",
// "block1.0.attn", "block1.0.attn.gates", "norm1" (tokens [B, N, C] before the NCHW reshape), "features",
// "logits"; routed layers also "block{s}.{j}.attn.router_probs" [B*N, E] / ".router_topk_indices" [B*N, hr].
using ViTRecord = std::map<std::string, torch::Tensor>;

class DWConvImpl : public torch::nn::Module {
 public:
  explicit DWConvImpl(int64_t dim);
  torch::Tensor forward(const torch::Tensor& x, int64_t H, int64_t W);  // [B, N, C] -> [B, N, C]
  torch::nn::Conv2d dwconv{nullptr};
};
TORCH_MODULE(DWConv);

class ConvolutionalGLUImpl : public torch::nn::Module {
 public:
  ConvolutionalGLUImpl(int64_t dim, int64_t hidden);  // hidden = the already-reduced int(2*int(dim*r)/3)
  torch::Tensor forward(const torch::Tensor& x, int64_t H, int64_t W);
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  DWConv dwconv{nullptr};
};
TORCH_MODULE(ConvolutionalGLU);

class BlockImpl : public torch::nn::Module {
 public:
  BlockImpl(const AttentionOptions& attn, int64_t mlp_hidden, double norm_eps);
  torch::Tensor forward(const torch::Tensor& x, int64_t H, int64_t W, const CpbTables& tables,
                        ViTRecord* record = nullptr, const std::string& name = "",
                        const GateRecorder* gate_recorder = nullptr);  // gate_recorder: sees (name, gates [B, N, h])
  bool aggregated() const { return !attn_full; }

  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  Attention attn_full{nullptr};            // registered as "attn" when sr_ratio == 1
  AggregatedAttention attn_agg{nullptr};   // registered as "attn" when sr_ratio > 1
  ConvolutionalGLU mlp{nullptr};
};
TORCH_MODULE(Block);

class OverlapPatchEmbedImpl : public torch::nn::Module {
 public:
  OverlapPatchEmbedImpl(int64_t kernel, int64_t stride, int64_t in_chans, int64_t dim);
  torch::Tensor forward(const torch::Tensor& x);  // [B, Cin, H, W] -> tokens [B, H'*W', C]
  torch::nn::Conv2d proj{nullptr};
  torch::nn::LayerNorm norm{nullptr};
};
TORCH_MODULE(OverlapPatchEmbed);

class TransNeXtImpl : public torch::nn::Module {
 public:
  explicit TransNeXtImpl(const ViTConfig& cfg);
  // x: [B, in_chans, img, img] -> logits [B, num_classes] (features [B, C4] when num_classes == 0).
  torch::Tensor forward(const torch::Tensor& x, ViTRecord* record = nullptr);
  // Token mean of the last stage's norm output: [B, C4].
  torch::Tensor forward_features(const torch::Tensor& x, ViTRecord* record = nullptr);
  const ViTConfig& config() const { return cfg_; }

  // The official non-persistent buffers under their official names (relative_pos_index{s},
  // relative_coords_table{s}, block{s}.{j}.attn.seq_length_scale / .padding_mask), on the CPU.
  std::map<std::string, torch::Tensor> official_buffers() const;
  const CpbTables& cpb_tables(int stage) const { return tables_.at(stage).host(); }
  // Optional: called in every forward with each block's name ("block{s}.{j}") and its gates [B, N, h]; empty (the
  // default) records nothing. Used by moh-routes / moh-eval --routes-stats (vit/routes.h).
  void set_gate_recorder(GateRecorder recorder) { gate_recorder_ = std::move(recorder); }

  std::vector<OverlapPatchEmbed> patch_embed;
  std::vector<torch::nn::ModuleList> blocks;
  std::vector<torch::nn::LayerNorm> norms;
  torch::nn::Linear head{nullptr};

 private:
  ViTConfig cfg_;
  std::vector<DeviceCpbTables> tables_;
  GateRecorder gate_recorder_;
};
TORCH_MODULE(TransNeXt);

// Builds the model for `cfg` (validated) and, when `weights` is not empty, loads that safetensors file strictly
// (prefixes "module." / "_orig_mod." / "model." are stripped). Then moves it to device/dtype and sets eval mode.
TransNeXt build_vit(const ViTConfig& cfg, const std::string& weights, const torch::Device& device,
                    torch::Dtype dtype);

}  // namespace moh::vit
