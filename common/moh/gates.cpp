// MoH router gates (see gates.h): mirrors the gate code of SkyworkAI/MoH MoH-DiT/models.py `MoHAttention.forward`
// and MoH-ViT/attention.py `Attention.forward`.
#include "common/moh/gates.h"

#include <limits>

#include "common/error.h"

namespace moh {

double finfo_eps(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kFloat64: return std::numeric_limits<double>::epsilon();  // 2^-52
    case torch::kFloat32: return std::numeric_limits<float>::epsilon();   // 2^-23
    case torch::kBFloat16: return 0.0078125;                              // 2^-7
    case torch::kFloat16: return 0.0009765625;                            // 2^-10
    default: break;
  }
  throw Error(std::string("MoH router: no finfo eps for dtype ") + c10::toString(dtype) +
              " (the router runs in fp64, fp32, bf16 or fp16)");
}

void MoHGateConfig::validate(const std::string& where) const {
  MOH_CHECK(num_heads > 0, where, ": num_heads must be positive (got ", num_heads, ")");
  MOH_CHECK(shared_head >= 0 && shared_head <= num_heads, where, ": shared_head ", shared_head,
            " must be in [0, num_heads=", num_heads, "]");
  MOH_CHECK(routed_head >= 0 && routed_head <= experts(), where, ": routed_head ", routed_head,
            " must be in [0, num_heads - shared_head = ", experts(), "]");
  if (dense) {
    MOH_CHECK(shared_head == num_heads && routed_head == 0, where, ": a dense (plain multi-head) layer uses every ",
              "head: shared_head must equal num_heads (", num_heads, ") and routed_head 0; got ", shared_head, " / ",
              routed_head);
    return;
  }
  if (routed_head == 0) {
    MOH_CHECK(shared_head > 1, where, ": shared_head=", shared_head, ", routed_head=0 cannot run: the official code "
              "gates every head with wg_1, which exists only when shared_head > 1");
    MOH_CHECK(shared_head == num_heads, where, ": routed_head=0 needs shared_head == num_heads (got ", shared_head,
              " of ", num_heads, "): the official code multiplies an hs-wide gate into all h heads");
  } else if (shared_head == 1) {
    MOH_CHECK(allow_single_shared, where, ": shared_head=1 with routed_head>0 cannot run in the official MoH-DiT "
              "code (it calls wg_1, which exists only when shared_head > 1); use shared_head 0 or >= 2");
  }
}

torch::Tensor moh_gates(const torch::Tensor& u, const MoHGateConfig& cfg, const MoHGateWeights& w,
                        MoHGateDebug* debug) {
  const int64_t B = u.size(0), N = u.size(1), C = u.size(2);
  if (cfg.dense) return torch::ones({B, N, cfg.num_heads}, u.options());  // plain attention: every head weight 1
  // The router's dtype is its weights' (the mixed policy keeps them fp32 while u may be bf16).
  const torch::Tensor& w_any = cfg.routed_head > 0 ? w.wg : w.wg_1;
  auto flat = u.reshape({B * N, C});  // [B*N, C]
  if (w_any.defined() && w_any.scalar_type() != flat.scalar_type()) flat = flat.to(w_any.scalar_type());
  auto shared_gates = [&]() -> torch::Tensor {
    if (cfg.shared_head > 1) return torch::softmax(torch::matmul(flat, w.wg_1.t()), -1) * cfg.shared_head;
    return torch::ones({B * N, 1}, flat.options()) * cfg.shared_head;  // ViT hs == 1: constant gate
  };
  if (cfg.routed_head == 0) return shared_gates().reshape({B, N, cfg.num_heads});  // [B*N, h] -> [B, N, h]

  auto probs = torch::softmax(torch::matmul(flat, w.wg.t()), -1);  // [B*N, E]
  auto topk = std::get<1>(torch::topk(probs, cfg.routed_head, -1));  // [B*N, hr]
  auto mask = torch::zeros_like(probs).scatter_(1, topk, 1.0);
  auto kept = probs * mask;
  const double eps = finfo_eps(flat.scalar_type());
  auto routed = kept / torch::clamp_min(kept.sum(-1, true), eps) * cfg.routed_head;  // [B*N, E]
  if (debug) {
    debug->router_probs = probs;
    debug->topk_indices = topk;
  }
  torch::Tensor gates;
  if (cfg.shared_head == 0) {
    gates = routed;
  } else {
    auto mix = torch::softmax(torch::matmul(flat, w.wg_0.t()), -1) * 2.0;  // [B*N, 2]
    gates = torch::cat({shared_gates() * mix.slice(1, 0, 1), routed * mix.slice(1, 1, 2)}, 1);  // [B*N, h]
  }
  return gates.reshape({B, N, cfg.num_heads});  // [B*N, h] -> [B, N, h]
}

void MoHGateLayers::create(torch::nn::Module& owner, int64_t dim, const MoHGateConfig& cfg) {
  auto linear = [&](const char* name, int64_t out) {
    return owner.register_module(name, torch::nn::Linear(torch::nn::LinearOptions(dim, out).bias(false)));
  };
  if (cfg.has_wg()) wg = linear("wg", cfg.experts());
  if (cfg.has_wg0()) wg_0 = linear("wg_0", 2);
  if (cfg.has_wg1()) wg_1 = linear("wg_1", cfg.shared_head);
}

MoHGateWeights MoHGateLayers::weights() const {
  MoHGateWeights w;
  if (wg) w.wg = wg->weight;
  if (wg_0) w.wg_0 = wg_0->weight;
  if (wg_1) w.wg_1 = wg_1->weight;
  return w;
}

}  // namespace moh
