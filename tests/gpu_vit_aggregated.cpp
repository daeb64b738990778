// [gpu] The fused MoH-ViT aggregated-attention kernel (kernels/moh_vit_aggregated.cu via
// AggregatedAttention::forward_fused_cuda) against the CPU-tested LibTorch reference AggregatedAttention::
// forward_reference (the official nn.Unfold formulation, checked against the official goldens on the CPU):
// seeded random modules, odd grids (7x5), window 3 and 5, pooled grids of 6 to 16 keys, batch 1 and 3, a routed head no
// pixel selects, the ViT hs == 1 constant gate. proj is the identity, so the module output is the gated heads and the
// skipped (pixel, head) pairs must be exactly 0. fp32: atol + rtol*|ref| vs the fp32 reference on the same device;
// bf16 and mixed (bf16 q/kv, fp32 math): error <= 2x the naive LibTorch bf16 error, both against an fp64 reference.
// Built only with CUDA Torch. UNRUN so far: written without a GPU (issue 16).
#include <torch/torch.h>

#include <sstream>
#include <vector>

#include "common/runtime/precision.h"
#include "tests/catch_compat.h"
#include "vit/attention.h"
#include "vit/cpb.h"

namespace {

struct AggCase {
  int64_t B, H, W, h, hs, hr, ws, ph, pw;
};

double max_abs(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kCPU, torch::kFloat64) - b.to(torch::kCPU, torch::kFloat64)).abs().max().item<double>();
}

moh::vit::AggregatedAttention make_module(const AggCase& c, int64_t d) {
  moh::vit::AttentionOptions o;
  o.dim = c.h * d;
  o.num_heads = c.h;
  o.input_resolution = {c.H, c.W};
  o.shared_head = c.hs;
  o.routed_head = c.hr;
  o.window_size = c.ws;
  o.sr_ratio = 2;
  o.pool_size = {c.ph, c.pw};
  moh::vit::AggregatedAttention m(o);
  torch::NoGradGuard no_grad;
  m->learnable_bias.normal_(0.0, 0.1);
  m->relative_pos_bias_local.normal_(0.0, 0.5);
  m->temperature.normal_(std::log(std::expm1(1.0 / 0.24)), 0.1);
  m->proj->weight.copy_(torch::eye(o.dim));  // proj = identity: the output is the gated heads
  m->proj->bias.zero_();
  if (m->gate.wg) {
    m->gate.wg->weight.mul_(3.0 * std::sqrt(static_cast<double>(o.dim)));  // decisive routing
    m->gate.wg->weight[0].fill_(-1.0);  // x > 0 below: routed candidate 0 (head hs) is never selected
  }
  m->eval();
  return m;
}

}  // namespace

TEST_CASE("Fused ViT aggregated-attention kernel matches forward_reference; skipped pairs are exactly 0", "[gpu]") {
  REQUIRE(torch::cuda::is_available());
  torch::NoGradGuard no_grad;
  const torch::Device dev(torch::kCUDA, 0);
  torch::manual_seed(1616);
  const int64_t d = 24;
  const std::vector<AggCase> cases = {{1, 7, 5, 4, 1, 2, 3, 3, 2}, {3, 8, 8, 4, 2, 1, 3, 4, 4}, {2, 6, 8, 6, 2, 2, 5, 3, 4},
                                      {1, 14, 14, 8, 2, 3, 3, 4, 4}};
  for (const auto& c : cases) {
    std::ostringstream os;
    os << "B=" << c.B << " grid " << c.H << "x" << c.W << " h=" << c.h << " hs=" << c.hs << " hr=" << c.hr
       << " ws=" << c.ws << " pool " << c.ph << "x" << c.pw;
    INFO(os.str());
    auto m = make_module(c, d);
    moh::vit::DeviceCpbTables tables(moh::vit::relative_position_cpb({c.H, c.W}, {c.ph, c.pw}, {c.H, c.W}));
    const auto x_cpu = torch::rand({c.B, c.H * c.W, c.h * d}) + 0.1;  // [B, N, C], positive (forced routing)

    // fp64 reference (the module in double precision on the GPU).
    m->to(dev, torch::kFloat64);
    const auto x64 = x_cpu.to(dev, torch::kFloat64);
    moh::vit::AttentionDebug dbg;
    const auto ref64 = m->forward_reference(x64, c.H, c.W, tables.like(x64), &dbg);
    // [B, N, h] gates -> [B, N, h*d] mask of the skipped (pixel, head) slots of that run.
    auto zeros_of = [&](const moh::vit::AttentionDebug& g) {
      return (g.gates == 0).unsqueeze(-1).expand({c.B, c.H * c.W, c.h, d}).reshape(ref64.sizes());
    };
    CHECK(zeros_of(dbg).any().item<bool>());  // the forced never-selected head

    // fp32: kernel vs the fp32 reference on the same device.
    m->to(dev, torch::kFloat32);
    const auto x32 = x_cpu.to(dev);
    const auto ref32 = m->forward_reference(x32, c.H, c.W, tables.like(x32));
    moh::vit::AttentionDebug d32, d16, dmix;
    const auto k32 = m->forward_fused_cuda(x32, c.H, c.W, tables.like(x32), &d32);
    const double excess = ((k32 - ref32).abs() - (2e-5 + 2e-4 * ref32.abs())).max().item<double>();
    INFO("fp32 max |kernel - ref| " << max_abs(k32, ref32));
    CHECK(excess <= 0);
    CHECK((k32.masked_select(zeros_of(d32)) == 0).all().item<bool>());

    // bf16 throughout: the kernel (fp32 math on bf16 q/kv) vs 2x the naive LibTorch bf16 error.
    m->to(dev, torch::kBFloat16);
    const auto x16 = x_cpu.to(dev, torch::kBFloat16);
    const auto naive16 = m->forward_reference(x16, c.H, c.W, tables.like(x16));
    const auto k16 = m->forward_fused_cuda(x16, c.H, c.W, tables.like(x16), &d16);
    INFO("bf16: kernel err " << max_abs(k16, ref64) << ", naive err " << max_abs(naive16, ref64));
    CHECK(max_abs(k16, ref64) <= 2 * max_abs(naive16, ref64) + 1e-6);
    CHECK((k16.masked_select(zeros_of(d16)) == 0).all().item<bool>());

    // Mixed precision (vit/precision.h layout): bf16 GEMM weights, fp32 module tensors, LayerNorm and router; bf16
    // input as the block hands it over. The reference then does its attention math in fp32 as the kernel does.
    m->to(dev, torch::kFloat32);
    for (auto* lin : {m->q.get(), m->kv.get(), m->proj.get(), m->cpb_fc1.get(), m->cpb_fc2.get()}) lin->to(torch::kBFloat16);
    m->sr->to(torch::kBFloat16);
    const auto mixed_ref = m->forward_reference(x16, c.H, c.W, tables.like(x16));
    const auto kmix = m->forward_fused_cuda(x16, c.H, c.W, tables.like(x16), &dmix);
    INFO("mixed: kernel err " << max_abs(kmix, ref64) << ", LibTorch mixed err " << max_abs(mixed_ref, ref64));
    CHECK(kmix.scalar_type() == torch::kBFloat16);
    CHECK(max_abs(kmix, ref64) <= 2 * max_abs(mixed_ref, ref64) + 1e-6);
    CHECK((kmix.masked_select(zeros_of(dmix)) == 0).all().item<bool>());
  }
}
