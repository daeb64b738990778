// moh-bench attention: MoH router + sparse-head attention (kernels/, via moh::cuda) against the masked dense
// reference (moh::moh_gates + moh::moh_gated_attention_reference: what the official MoH-DiT code computes) and
// against dense attention over all heads (PyTorch SDPA on torch >= 2, matmul + softmax otherwise), all measured
// in the same run. On a CPU (or a build without CUDA) "ours" falls back to the reference so the program still runs.
#include <torch/torch.h>
#include <torch/version.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/bench/bench_common.h"
#include "common/io/atomic_file.h"
#include "common/runtime/device.h"
#include "common/moh/attention.h"
#include "common/moh/attention_cuda.h"
#include "common/moh/gates.h"

namespace moh::bench {
namespace {

struct AttnCase {
  const char* name;
  int64_t B, N, h, d, hs, hr, C;  // C: width of the router input u (the layer's model width)
  const char* what;
};

// The shapes of the issue: MoH-DiT-XL/2 layers (h=24 and h=16 at d=72) and a MoH-ViT-like layer at d=24.
const AttnCase kCases[] = {
    {"dit-xl-h24", 64, 256, 24, 72, 16, 3, 1152, "MoH-DiT-XL/2-90 late layer"},
    {"dit-xl-h16", 64, 256, 16, 72, 10, 2, 1152, "MoH-DiT-XL/2 mid layer"},
    {"vit-d24", 256, 49, 24, 24, 8, 12, 576, "MoH-ViT-like layer, 7x7 tokens"},
};

// Dense attention over all heads, no gates: [B, h, N, d] -> [B, h, N, d].
torch::Tensor dense_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale) {
#if TORCH_VERSION_MAJOR >= 2
  if (q.is_cuda()) return at::scaled_dot_product_attention(q, k, v);  // default scale d^-0.5 == scale
#endif
  return torch::matmul(torch::softmax(torch::matmul(q * scale, k.transpose(-2, -1)), -1), v);
}

const char* dense_name() {
#if TORCH_VERSION_MAJOR >= 2
  return "SDPA";
#else
  return "matmul+softmax";
#endif
}

}  // namespace

int bench_attention(const BenchOptions& o) {
  const torch::Device dev = parse_device(o.device);
  const torch::Dtype dt = parse_dtype(o.dtype, dev);
#ifdef MOH_WITH_CUDA
  const bool kernels = dev.is_cuda();
#else
  const bool kernels = false;
#endif
  // On the GPU one timed run is `reps` back-to-back calls (amortises the host sync around each run); the CPU
  // reference is slow, so it runs a smaller batch and fewer iterations.
  const int reps = dev.is_cuda() ? 20 : 1;
  const int iters = dev.is_cuda() ? o.iters : std::min(o.iters, 3);
  const int warmup = dev.is_cuda() ? o.warmup : std::min(o.warmup, 1);
  std::printf("moh-bench attention: device %s, dtype %s, median of %d timed runs (%d calls each), times per call\n",
              device_to_string(dev).c_str(), dtype_to_string(dt).c_str(), iters, reps);
  if (!kernels)
    std::printf("  note: no CUDA kernels on this device/build: (a) runs the LibTorch reference; batch capped at 4\n");
  std::fflush(stdout);

  nlohmann::json results = nlohmann::json::array();
  torch::manual_seed(0);
  for (const auto& c : kCases) {
    if (!o.only.empty() && std::find(o.only.begin(), o.only.end(), c.name) == o.only.end()) continue;
    const int64_t B = kernels ? c.B : std::min<int64_t>(c.B, 4);
    const double scale = 1.0 / std::sqrt(static_cast<double>(c.d));
    auto opt = torch::TensorOptions().device(dev).dtype(dt);
    MoHGateConfig cfg;
    cfg.num_heads = c.h, cfg.shared_head = c.hs, cfg.routed_head = c.hr;
    cfg.validate(c.name);
    // Random inputs; router weights scaled to logit std ~4 so routing is decisive, as in trained models.
    const double ws = 4.0 / std::sqrt(static_cast<double>(c.C));
    MoHGateWeights w;
    w.wg = torch::randn({cfg.experts(), c.C}, opt) * ws;
    w.wg_0 = torch::randn({2, c.C}, opt) * ws;
    w.wg_1 = torch::randn({c.hs, c.C}, opt) * ws;
    const auto u = torch::randn({B, c.N, c.C}, opt);                       // [B, N, C]
    const auto qkv = torch::randn({B, c.N, 3, c.h, c.d}, opt);            // [B, N, 3, h, d], the qkv GEMM output
    const auto p = qkv.permute({2, 0, 3, 1, 4});                          // -> [3, B, h, N, d]
    const auto q = p[0], k = p[1], v = p[2];                              // [B, h, N, d] strided views

    std::printf("\ncase %s (%s): B=%lld N=%lld h=%lld d=%lld, %lld shared + top-%lld of %lld routed, C=%lld\n", c.name,
                c.what, static_cast<long long>(B), static_cast<long long>(c.N), static_cast<long long>(c.h),
                static_cast<long long>(c.d), static_cast<long long>(c.hs), static_cast<long long>(c.hr),
                static_cast<long long>(cfg.experts()), static_cast<long long>(c.C));
    auto per_call = [&](const Timing& t) { return Timing{t.median_ms / reps, t.min_ms / reps, t.max_ms / reps}; };
    auto repeat = [&](const std::function<void()>& fn) {
      return [fn, reps]() {
        for (int i = 0; i < reps; ++i) fn();
      };
    };
    torch::NoGradGuard no_grad;

    // (a) ours: router kernel + sparse-head attention kernel (router weights stacked once, as at load time).
#ifdef MOH_WITH_CUDA
    const auto stacked = kernels ? cuda::stack_router_weights(cfg, w, opt) : cuda::StackedRouterWeights{};
#endif
    auto ours = [&]() -> torch::Tensor {
#ifdef MOH_WITH_CUDA
      if (kernels) return cuda::moh_gated_attention(q, k, v, cuda::moh_router(u, cfg, stacked).gates, scale);
#endif
      return moh_gated_attention_reference(q, k, v, moh_gates(u, cfg, w), scale);
    };
    auto reference = [&]() { return moh_gated_attention_reference(q, k, v, moh_gates(u, cfg, w), scale); };
    const Timing ta = per_call(time_it(repeat([&] { ours(); }), dev, warmup, iters));
    const Timing tb = per_call(time_it(repeat([&] { reference(); }), dev, warmup, iters));
    const Timing tc = per_call(time_it(repeat([&] { dense_attention(q, k, v, scale); }), dev, warmup, iters));
    report("  (a) ours: router + sparse attention", ta);
#ifdef MOH_WITH_CUDA
    if (kernels) {
      const auto gates = cuda::moh_router(u, cfg, stacked).gates;
      const Timing tr = per_call(time_it(repeat([&] { cuda::moh_router(u, cfg, stacked); }), dev, warmup, iters));
      const Timing tt = per_call(time_it(repeat([&] { cuda::moh_gated_attention(q, k, v, gates, scale); }), dev,
                                         warmup, iters));
      const Timing ts = per_call(time_it(repeat([&] {
                                           cuda::moh_gated_attention(q, k, v, gates, scale,
                                                                     cuda::AttnKernelChoice::kSimple);
                                         }),
                                         dev, warmup, iters));
      report("      router only", tr);
      report("      sparse attention only (auto kernel)", tt);
      report("      sparse attention only (SIMT kernel)", ts);
      const double pairs = gates.ne(0).to(torch::kFloat32).mean().item<double>();
      std::printf("      computed (token, head) pairs: %.1f%% of dense\n", 100.0 * pairs);
    }
#endif
    report("  (b) masked dense reference (moh_gates + reference)", tb);
    report(std::string("  (c) dense attention, all heads (") + dense_name() + ")", tc);
    const auto ya = ours().to(torch::kFloat32), yb = reference().to(torch::kFloat32);
    const double diff = (ya - yb).abs().max().item<double>(), mref = yb.abs().max().item<double>();
    std::printf("  ratios: a/c = %.3f (target <= 0.85), a/b = %.3f;  max |a - b| = %.3g (max |b| %.3g)\n",
                ta.median_ms / tc.median_ms, ta.median_ms / tb.median_ms, diff, mref);
    std::fflush(stdout);
    results.push_back({{"case", c.name}, {"B", B}, {"N", c.N}, {"h", c.h}, {"d", c.d}, {"shared", c.hs},
                       {"routed", c.hr}, {"device", device_to_string(dev)}, {"dtype", dtype_to_string(dt)},
                       {"kernels", kernels}, {"ours_ms", ta.median_ms}, {"masked_reference_ms", tb.median_ms},
                       {"dense_ms", tc.median_ms}, {"dense", dense_name()}, {"ratio_a_c", ta.median_ms / tc.median_ms},
                       {"ratio_a_b", ta.median_ms / tb.median_ms}, {"max_abs_diff_a_b", diff}});
  }
  if (!o.json_out.empty()) write_file_atomic(o.json_out, results.dump(2) + "\n");
  return 0;
}

}  // namespace moh::bench
