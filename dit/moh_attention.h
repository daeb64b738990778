// MoH-DiT attention module (mirrors `MoHAttention` in SkyworkAI/MoH MoH-DiT/models.py; spec/moh-attention.md
// §4.1): qkv Linear -> per-head softmax attention -> MoH gate per (token, head) -> proj. The router gates come
// from common/moh/gates.h and the gated attention core from common/moh/attention.h (CUDA sparse kernels on
// CUDA tensors, LibTorch reference elsewhere). Children carry the official state_dict names:
// qkv, q_norm, k_norm (only with qk_norm), proj, wg, wg_0, wg_1 (only where the configuration creates them).
#pragma once
#include <torch/torch.h>

#include "common/moh/gates.h"
#include "dit/dit_layers.h"

namespace moh::dit {

struct MoHAttentionOptions {
  int64_t dim = 0;          // C (input and output width)
  int64_t num_heads = 0;    // h
  int64_t shared_head = 0;  // hs
  int64_t routed_head = 0;  // hr
  int64_t head_dim = 0;     // d; 0 = dim / num_heads (official head_dim=None). h*d may differ from C.
  bool qkv_bias = true;     // DiT blocks always use True
  bool qk_norm = false;     // LayerNorm(d, eps 1e-5, affine) on q and k; DiT blocks never use it
  bool dense = false;       // plain timm `Attention` (facebookresearch/DiT; official MoH-DiT moh=False): no router
  int64_t resolved_head_dim() const { return head_dim > 0 ? head_dim : dim / num_heads; }
  MoHGateConfig gate_config() const { return {num_heads, shared_head, routed_head, false, dense}; }
};

// Optional intermediates for parity checks (filled only when a pointer is passed).
struct MoHAttentionDebug {
  torch::Tensor gates;         // [B, N, h] masked gates
  torch::Tensor router_probs;  // [B*N, h-hs] softmax(wg(x)), only when routed_head > 0
  torch::Tensor topk_indices;  // [B*N, hr], only when routed_head > 0
};

class MoHAttentionImpl : public torch::nn::Module {
 public:
  // Throws moh::Error for configurations the official code cannot run (shared_head == 1; shared_head in {0,1}
  // with routed_head == 0; routed_head == 0 with shared_head != num_heads) — see dit_attn_expected_errors.json.
  explicit MoHAttentionImpl(const MoHAttentionOptions& options);
  // x: [B, N, C] -> [B, N, C].
  torch::Tensor forward(const torch::Tensor& x, MoHAttentionDebug* debug = nullptr);

  const MoHAttentionOptions& options() const { return options_; }
  int64_t head_dim() const { return head_dim_; }

  Linear qkv{nullptr}, proj{nullptr};
  MoHGateLayers gate;  // wg, wg_0, wg_1 (only where the configuration creates them)
  torch::nn::LayerNorm q_norm{nullptr}, k_norm{nullptr};

 private:
  MoHAttentionOptions options_;
  MoHGateConfig gate_cfg_;
  int64_t head_dim_ = 0;
  double scale_ = 1.0;
};
TORCH_MODULE(MoHAttention);

}  // namespace moh::dit
