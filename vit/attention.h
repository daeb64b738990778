// MoH-TransNeXt attention layers with MoH head gates:
//   Attention            (SkyworkAI/MoH MoH-ViT/attention.py): stage-4 full cosine attention with CPB bias;
//   AggregatedAttention  (MoH-ViT/attention_native.py): stages 1-3, local window + pooled keys in one softmax.
// Parameters are registered under the official state_dict names and in the official order. The non-persistent
// buffers (seq_length_scale, padding_mask) are plain members: checkpoints do not hold them (spec/moh-vit.md §3).
#pragma once
#include <torch/torch.h>

#include "vit/aggregated_attention_inputs.h"
#include "common/moh/gates.h"
#include "vit/cpb.h"

namespace moh::vit {

struct AttentionOptions {
  int64_t dim = 0;
  int64_t num_heads = 1;
  Size2 input_resolution{0, 0};  // token grid (H, W) the module is built for
  bool qkv_bias = true;
  int64_t shared_head = 0;
  int64_t routed_head = 0;
  bool dense = false;  // plain TransNeXt attention (DaiShiResearch/TransNeXt): no router, every head weight 1
  // Aggregated attention only.
  int64_t window_size = 3;
  int64_t sr_ratio = 1;
  Size2 pool_size{0, 0};  // pooled key grid (official: resolution // sr, or fixed_pool_size)

  int64_t head_dim() const { return dim / num_heads; }
  MoHGateConfig gate_config() const;
};

// Optional intermediates for parity checks.
struct AttentionDebug {
  torch::Tensor gates;  // [B, N, h]
  MoHGateDebug router;  // router probs / top-k indices when routed_head > 0
};

class AttentionImpl : public torch::nn::Module {
 public:
  explicit AttentionImpl(const AttentionOptions& o);
  // x: [B, N, C] with N = H*W (row-major); tables: this stage's CPB tables (query = key = token grid).
  torch::Tensor forward(const torch::Tensor& x, int64_t H, int64_t W, const CpbTables& tables,
                        AttentionDebug* debug = nullptr);
  const AttentionOptions& options() const { return o_; }
  float seq_length_scale() const { return seq_length_scale_; }  // ln(N) (official: a float64 0-dim buffer)

  torch::Tensor temperature, query_embedding;  // [h,1,1] (pre-softplus), [h,1,d]
  torch::nn::Linear qkv{nullptr}, proj{nullptr}, cpb_fc1{nullptr}, cpb_fc2{nullptr};
  MoHGateLayers gate;

 private:
  AttentionOptions o_;
  MoHGateConfig gate_cfg_;
  float seq_length_scale_;
  CachedCpbBias bias_;
};
TORCH_MODULE(Attention);

class AggregatedAttentionImpl : public torch::nn::Module {
 public:
  explicit AggregatedAttentionImpl(const AttentionOptions& o);
  // x: [B, N, C] with N = H*W; tables: CPB tables for (token grid -> pool grid). CPU fp32 without gradients runs the
  // fused kernel (vit/aggregated_attention_cpu.h), everything else the LibTorch reference.
  torch::Tensor forward(const torch::Tensor& x, int64_t H, int64_t W, const CpbTables& tables,
                        AttentionDebug* debug = nullptr);
  // The official nn.Unfold formulation in LibTorch ops (any device/dtype, autograd): the reference for the fused path.
  torch::Tensor forward_reference(const torch::Tensor& x, int64_t H, int64_t W, const CpbTables& tables,
                                  AttentionDebug* debug = nullptr);
  // The fused CPU path; x must satisfy aggregated_attention_cpu_applicable().
  torch::Tensor forward_fused_cpu(const torch::Tensor& x, int64_t H, int64_t W, const CpbTables& tables,
                                  AttentionDebug* debug = nullptr);
  // The fused CUDA kernel (kernels/moh_vit_aggregated.cu; UNRUN on a GPU so far): CUDA x without gradients, in CUDA
  // builds only (throws moh::Unsupported otherwise). forward() takes it when MOH_VIT_AGG_KERNEL=1.
  torch::Tensor forward_fused_cuda(const torch::Tensor& x, int64_t H, int64_t W, const CpbTables& tables,
                                   AttentionDebug* debug = nullptr);
  // Lets tests and benchmarks force the reference path (default: fused where applicable).
  void set_use_fused_cpu(bool on) { use_fused_cpu_ = on; }
  const AttentionOptions& options() const { return o_; }
  // Official buffers: seq_length_scale [N,1] = ln(valid window slots + pool tokens); padding_mask [N, L] (bool).
  const torch::Tensor& seq_length_scale() const { return seq_scale_.host(); }
  const torch::Tensor& padding_mask() const { return padding_mask_.host(); }

  torch::Tensor temperature, query_embedding, relative_pos_bias_local, learnable_tokens, learnable_bias;
  torch::nn::Linear q{nullptr}, kv{nullptr}, proj{nullptr}, cpb_fc1{nullptr}, cpb_fc2{nullptr};
  torch::nn::Conv2d sr{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  MoHGateLayers gate;

 private:
  // The fused paths' inputs from projected q / kv / kv_pool and the gates (both fused paths fill it the same way).
  AggregatedAttentionInputs fused_inputs(torch::Tensor q, torch::Tensor kv, torch::Tensor kv_pool,
                                         const CpbTables& tables, torch::Tensor gates, torch::Tensor seq_scale,
                                         int64_t H, int64_t W);

  AttentionOptions o_;
  MoHGateConfig gate_cfg_;
  DeviceConstant seq_scale_, padding_mask_;
  CachedCpbBias bias_;
  bool use_fused_cpu_ = true;
};
TORCH_MODULE(AggregatedAttention);

// [N, L] bool: true where window slot z = a*ws + b of pixel n falls outside the H x W grid (official
// get_seqlen_and_mask); the per-pixel count of in-grid slots is the row sum of !mask.
torch::Tensor local_window_padding_mask(int64_t H, int64_t W, int64_t window_size);

// t: [B, N, h, d] tokens (N = H*W) -> [B, h, N, d, L] zero-padded ws x ws neighbourhoods (slot z = a*ws + b is
// pixel (i + a - ws/2, j + b - ws/2)); the official nn.Unfold gather.
torch::Tensor local_windows(const torch::Tensor& t, int64_t H, int64_t W, int64_t window_size);

}  // namespace moh::vit
