// MoH router: per-token per-head gates (spec/moh-attention.md §2). Mirrors the gate code of MoH-DiT/models.py
// `MoHAttention.forward` and MoH-ViT/attention.py `Attention.forward` (identical formulas).
#pragma once
#include <torch/torch.h>

namespace moh {

// torch.finfo(dtype).eps, the clamp of the routed-gate renormalisation (spec/moh-attention.md §2): one table for the
// LibTorch router (moh_gates) and the CUDA router glue (common/moh/attention_cuda.cpp). fp64, fp32, bf16, fp16;
// throws moh::Error for other dtypes.
double finfo_eps(torch::ScalarType dtype);

struct MoHGateConfig {
  int64_t num_heads = 0;    // h: all heads (shared + routed candidates)
  int64_t shared_head = 0;  // hs
  int64_t routed_head = 0;  // hr: top-k over the E = h - hs candidates
  // MoH-ViT accepts hs == 1 with a constant shared gate of ones; the official MoH-DiT code cannot build it.
  bool allow_single_shared = false;
  // Plain multi-head attention (the dense baselines: facebookresearch/DiT `Attention`, DaiShiResearch/TransNeXt):
  // no router layers and every gate is exactly 1; needs shared_head == num_heads and routed_head == 0.
  bool dense = false;

  int64_t experts() const { return num_heads - shared_head; }
  bool has_wg() const { return !dense && routed_head > 0; }
  bool has_wg0() const { return !dense && routed_head > 0 && shared_head > 0; }
  bool has_wg1() const { return !dense && shared_head > 1; }
  // Throws moh::Error with the reason when the official code cannot run this configuration.
  void validate(const std::string& where) const;
};

// Gate weights (bias-free Linear weights); undefined tensors for layers the configuration does not create.
struct MoHGateWeights {
  torch::Tensor wg;    // [E, C]
  torch::Tensor wg_0;  // [2, C]
  torch::Tensor wg_1;  // [hs, C]
};

// The router's bias-free Linears wg / wg_0 / wg_1 as children of an attention module, created like the official
// constructors (spec/moh-attention.md §1; same names in MoH-ViT and MoH-DiT), only those `cfg` needs.
struct MoHGateLayers {
  torch::nn::Linear wg{nullptr}, wg_0{nullptr}, wg_1{nullptr};
  // Registers them on `owner` (call where the official __init__ creates them: after proj).
  void create(torch::nn::Module& owner, int64_t dim, const MoHGateConfig& cfg);
  MoHGateWeights weights() const;
};

// Optional intermediates for parity checks.
struct MoHGateDebug {
  torch::Tensor router_probs;  // [B*N, E] softmax(wg(u))
  torch::Tensor topk_indices;  // [B*N, hr]
};

// u: [B, N, C] (the tensor that feeds qkv). The router runs in its weights' dtype (u is cast to it when they differ:
// under the mixed precision policy the router weights stay fp32 while u may be bf16, common/runtime/precision.h) and the
// gates [B, N, h] come back in that dtype; unselected routed heads are exactly 0. Dense layers: ones in u's dtype.
torch::Tensor moh_gates(const torch::Tensor& u, const MoHGateConfig& cfg, const MoHGateWeights& w,
                        MoHGateDebug* debug = nullptr);

}  // namespace moh
