// MoH-DiT attention (SkyworkAI/MoH MoH-DiT/models.py `MoHAttention`; spec/moh-attention.md §4.1).
#include "dit/moh_attention.h"

#include <cmath>

#include "common/error.h"
#include "common/moh/attention.h"
#include "common/runtime/autograd.h"

namespace moh::dit {

MoHAttentionImpl::MoHAttentionImpl(const MoHAttentionOptions& o) : options_(o), gate_cfg_(o.gate_config()) {
  MOH_CHECK(o.dim > 0 && o.num_heads > 0, "MoHAttention: dim and num_heads must be positive (got dim ", o.dim,
            ", num_heads ", o.num_heads, ")");
  head_dim_ = o.resolved_head_dim();
  MOH_CHECK(head_dim_ > 0, "MoHAttention: head_dim resolves to ", head_dim_, " (dim ", o.dim, " / num_heads ",
            o.num_heads, "); give head_dim explicitly");
  gate_cfg_.validate("MoHAttention(num_heads=" + std::to_string(o.num_heads) + ", shared_head=" +
                     std::to_string(o.shared_head) + ", routed_head=" + std::to_string(o.routed_head) + ")");
  scale_ = 1.0 / std::sqrt(static_cast<double>(head_dim_));
  const int64_t inner = o.num_heads * head_dim_;
  // Registration order = official __init__ order (qkv, q_norm, k_norm, proj, wg, wg_0, wg_1) = state_dict order.
  qkv = register_module("qkv", Linear(o.dim, 3 * inner, o.qkv_bias));
  if (o.qk_norm) {
    // nn.LayerNorm(head_dim) defaults: eps 1e-5, affine.
    auto ln = torch::nn::LayerNormOptions({head_dim_}).eps(1e-5).elementwise_affine(true);
    q_norm = register_module("q_norm", torch::nn::LayerNorm(ln));
    k_norm = register_module("k_norm", torch::nn::LayerNorm(ln));
    for (auto& p : parameters()) p.set_requires_grad(false);
  }
  proj = register_module("proj", Linear(inner, o.dim, true));
  gate.create(*this, o.dim, gate_cfg_);
}

torch::Tensor MoHAttentionImpl::forward(const torch::Tensor& x, MoHAttentionDebug* debug) {
  MOH_CHECK(x.dim() == 3 && x.size(2) == options_.dim, "MoHAttention: expected input [B, N, ", options_.dim,
            "], got ", x.sizes());
  const int64_t B = x.size(0), N = x.size(1), h = options_.num_heads, d = head_dim_;

  MoHGateDebug gate_dbg;
  auto gates = moh_gates(x, gate_cfg_, gate.weights(), debug ? &gate_dbg : nullptr);  // [B, N, h]

  // One GEMM for q, k and v; the split is a strided view (no copy): channel = s*(h*d) + head*d + i.
  auto qkv_all = qkv->forward(x)                 // [B, N, 3*h*d]
                     .view({B, N, 3, h, d})      // [B, N, 3, h, d]
                     .permute({2, 0, 3, 1, 4});  // [3, B, h, N, d]
  auto q = qkv_all[0], k = qkv_all[1], v = qkv_all[2];  // each [B, h, N, d] (strided views)
  if (q_norm) {
    q = q_norm->forward(q);  // LayerNorm over d
    k = k_norm->forward(k);
  }
  // CPU inference with an fp32 stream (fp32, and mixed precision's bf16 q/k/v, attended in fp32 as the ViT's
  // attention is): only the (token, head) pairs the router selected; otherwise the shared dispatcher.
  const bool cpu_inference = x.device().is_cpu() && x.scalar_type() == torch::kFloat32 &&
                             (q.scalar_type() == torch::kFloat32 || q.scalar_type() == torch::kBFloat16) &&
                             !needs_autograd({&x, &qkv->weight});
  auto y = cpu_inference ? moh_gated_attention_cpu(q, k, v, gates, scale_)  // [B, N, h*d]
                         : moh_gated_attention(q, k, v, gates, scale_);
  if (debug) {
    debug->gates = gates;
    debug->router_probs = gate_dbg.router_probs;
    debug->topk_indices = gate_dbg.topk_indices;
  }
  return proj->forward(y);  // [B, N, C]
}

}  // namespace moh::dit
