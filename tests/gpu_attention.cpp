// GPU checks of the MoH CUDA kernels (kernels/README.md) against the LibTorch references:
// sparse-head attention (SIMT and tensor-core paths) vs moh::moh_gated_attention_reference on fp64-upcast inputs,
// and the router kernel vs moh::moh_gates (gates and per-(batch, head) token lists). Seeded random inputs; q/k/v
// are strided views of one [B, N, 3, h, d] tensor, as the qkv GEMM produces them (spec/moh-attention.md §4.1).
// Tolerances (DESIGN.md): fp32 atol + rtol*|ref|; bf16/fp16 error <= 2x the naive LibTorch computation's error in
// the same dtype (both against fp64), plus a tiny floor. Built only with CUDA Torch; tag [gpu].
#include <torch/torch.h>

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "common/moh/attention.h"
#include "common/moh/attention_cuda.h"
#include "common/moh/gates.h"
#include "tests/catch_compat.h"

namespace {

using moh::cuda::AttnKernelChoice;

torch::Device gpu() {
  REQUIRE(torch::cuda::is_available());  // the [gpu] tests need a visible CUDA device
  return torch::Device(torch::kCUDA, 0);
}

const char* dtype_name(torch::ScalarType t) {
  return t == torch::kFloat32 ? "fp32" : t == torch::kBFloat16 ? "bf16" : t == torch::kFloat16 ? "fp16" : "?";
}

struct RouteCase {
  int64_t h, hs, hr;
  bool single_shared = false;  // ViT hs == 1 constant gate
  int forced = 0;              // 0: random routing; 1: routed candidate 0 never picked; 2: all tokens pick the same
};

std::string describe(int64_t B, int64_t N, int64_t d, const RouteCase& rc) {
  std::ostringstream os;
  os << "B=" << B << " N=" << N << " h=" << rc.h << " hs=" << rc.hs << " hr=" << rc.hr << " d=" << d
     << (rc.single_shared ? " (hs=1 constant gate)" : "")
     << (rc.forced == 1 ? " (routed head hs+0 never picked)" : rc.forced == 2 ? " (all tokens pick the same heads)" : "");
  return os.str();
}

moh::MoHGateConfig gate_config(const RouteCase& rc) {
  moh::MoHGateConfig cfg;
  cfg.num_heads = rc.h, cfg.shared_head = rc.hs, cfg.routed_head = rc.hr, cfg.allow_single_shared = rc.single_shared;
  cfg.validate("gpu test");
  return cfg;
}

// Router weights scaled so routing is decisive (logit std ~3), with the forced-routing patterns applied.
moh::MoHGateWeights gate_weights(const moh::MoHGateConfig& cfg, int64_t C, int forced, const torch::Device& dev) {
  auto opt = torch::TensorOptions().device(dev).dtype(torch::kFloat32);
  moh::MoHGateWeights w;
  const double s = 3.0 / std::sqrt(static_cast<double>(C));
  if (cfg.has_wg()) {
    w.wg = torch::randn({cfg.experts(), C}, opt) * s;
    if (forced == 1) w.wg[0].fill_(-1.0);  // u > 0 below: candidate 0 always has the lowest logit
    if (forced == 2)
      for (int64_t j = 0; j < cfg.routed_head; ++j) w.wg[j].fill_(1.0 + 0.1 * static_cast<double>(j));
  }
  if (cfg.has_wg0()) w.wg_0 = torch::randn({2, C}, opt) * s;
  if (cfg.has_wg1()) w.wg_1 = torch::randn({cfg.shared_head, C}, opt) * s;
  return w;
}

torch::Tensor router_input(int64_t B, int64_t N, int64_t C, int forced, const torch::Device& dev) {
  auto opt = torch::TensorOptions().device(dev).dtype(torch::kFloat32);
  return forced ? torch::rand({B, N, C}, opt) + 0.1 : torch::randn({B, N, C}, opt);  // [B, N, C]
}

struct Qkv {
  torch::Tensor q, k, v;  // [B, h, N, d] strided views
};
Qkv make_qkv(int64_t B, int64_t N, int64_t h, int64_t d, torch::ScalarType dt, const torch::Device& dev) {
  auto qkv = (torch::randn({B, N, 3, h, d}, torch::TensorOptions().device(dev)) * 1.5).to(dt);  // [B, N, 3, h, d]
  auto p = qkv.permute({2, 0, 3, 1, 4});  // [B, N, 3, h, d] -> [3, B, h, N, d]
  return {p[0], p[1], p[2]};
}

// Where the largest error sits, for failure messages.
std::string worst_at(const torch::Tensor& err, int64_t h, int64_t d) {
  const int64_t flat = err.reshape({-1}).argmax().item<int64_t>();
  const int64_t N = err.size(1), HD = h * d;
  std::ostringstream os;
  os << "worst at b=" << flat / (N * HD) << " token=" << (flat / HD) % N << " head=" << (flat % HD) / d
     << " col=" << flat % d;
  return os.str();
}

// Runs `which` on the inputs and checks it against the fp64 reference; prints the numbers when it fails.
void check_attention(const Qkv& in, const torch::Tensor& gates, double scale, AttnKernelChoice which,
                     const std::string& what) {
  const auto dt = in.q.scalar_type();
  const int64_t B = in.q.size(0), h = in.q.size(1), N = in.q.size(2), d = in.q.size(3);
  const auto g_used = gates.to(dt);  // the kernel and the reference both gate in the output dtype
  const auto ref64 = moh::moh_gated_attention_reference(in.q.to(torch::kFloat64), in.k.to(torch::kFloat64),
                                                        in.v.to(torch::kFloat64), g_used.to(torch::kFloat64), scale);
  // Poisoned output: every slot must be written (zeros for skipped pairs).
  auto out = torch::full({B, N, h * d}, std::nan(""), in.q.options());
  out = moh::cuda::moh_gated_attention(in.q, in.k, in.v, gates, scale, which, out);
  torch::cuda::synchronize();
  const char* kname = which == AttnKernelChoice::kSimple ? "simple" : which == AttnKernelChoice::kTensorCore ? "tc" : "auto";
  INFO(what << " dtype=" << dtype_name(dt) << " kernel=" << kname);
  REQUIRE(out.sizes() == ref64.sizes());
  const int64_t nonfinite = (~torch::isfinite(out)).sum().item<int64_t>();
  INFO("non-finite outputs (unwritten slots stay NaN): " << nonfinite);
  CHECK(nonfinite == 0);
  const auto zero_mask = g_used.eq(0).unsqueeze(-1).expand({B, N, h, d}).reshape({B, N, h * d});
  const int64_t skipped = g_used.eq(0).sum().item<int64_t>();
  const double skipped_abs = skipped ? out.masked_select(zero_mask).to(torch::kFloat64).abs().max().item<double>() : 0.0;
  INFO("skipped (token, head) pairs: " << skipped << " of " << B * N * h << ", max |out| there " << skipped_abs);
  CHECK(skipped_abs == 0.0);

  const auto err = (out.to(torch::kFloat64) - ref64).abs();
  const double max_err = err.max().item<double>(), max_ref = ref64.abs().max().item<double>();
  INFO("max |ours - fp64 ref| = " << max_err << ", max |ref| = " << max_ref << ", " << worst_at(err, h, d));
  if (dt == torch::kFloat32) {
    const double atol = 2e-5, rtol = 2e-4;
    const double excess = (err - (atol + rtol * ref64.abs())).max().item<double>();
    INFO("fp32 rule |err| <= " << atol << " + " << rtol << "*|ref|: worst excess " << excess);
    CHECK(excess <= 0.0);
  } else {
    const auto naive = moh::moh_gated_attention_reference(in.q, in.k, in.v, g_used, scale);
    const double naive_err = (naive.to(torch::kFloat64) - ref64).abs().max().item<double>();
    const double floor = 1e-4 * max_ref + 1e-6;
    INFO("naive LibTorch " << dtype_name(dt) << " error " << naive_err << "; allowed 2x that + " << floor);
    CHECK(max_err <= 2.0 * naive_err + floor);
  }
}

void check_all_paths(const Qkv& in, const torch::Tensor& gates, double scale, const std::string& what) {
  check_attention(in, gates, scale, AttnKernelChoice::kSimple, what);
  if (in.q.scalar_type() != torch::kFloat32 && in.q.size(3) % 8 == 0)
    check_attention(in, gates, scale, AttnKernelChoice::kTensorCore, what);
}

}  // namespace

TEST_CASE("CUDA sparse-head attention matches the reference: routing branches, token counts, head dims", "[gpu]") {
  const auto dev = gpu();
  torch::manual_seed(2024);
  struct Case {
    int64_t B, N, d;
    RouteCase rc;
  };
  const std::vector<Case> cases = {
      {2, 256, 72, {24, 16, 3}},           // MoH-DiT-XL/2-90 layer shape (shared + routed)
      {1, 197, 64, {12, 0, 4}},            // routed only, batch 1, odd N
      {3, 49, 24, {8, 8, 0}},              // shared only (all heads, soft weights), ViT head dim
      {2, 49, 24, {4, 1, 2, true}},        // ViT hs == 1 constant shared gate
      {1, 1, 128, {6, 2, 2}},              // a single token
      {2, 1000, 72, {16, 10, 2}},          // long sequence, several key tiles with a ragged last tile
      {1, 77, 128, {8, 4, 2, false, 1}},   // a routed head no token picks
      {2, 130, 64, {8, 2, 3, false, 2}},   // every token picks the same routed heads
      {2, 33, 40, {5, 2, 1}},              // d = 40 (padded to 64), odd N < one tile
      {1, 65, 20, {4, 2, 1}},              // d = 20: not a multiple of 8, SIMT only
  };
  for (const auto& cs : cases) {
    const auto cfg = gate_config(cs.rc);
    const int64_t C = 32;
    const auto gates = moh::moh_gates(router_input(cs.B, cs.N, C, cs.rc.forced, dev), cfg,
                                      gate_weights(cfg, C, cs.rc.forced, dev));  // [B, N, h] fp32
    if (cs.rc.forced == 1) REQUIRE(gates.select(2, cs.rc.hs).abs().max().item<double>() == 0.0);
    if (cs.rc.forced == 2)
      REQUIRE(gates.slice(2, cs.rc.hs, cs.rc.hs + cs.rc.hr).min().item<double>() > 0.0);
    const double scale = 1.0 / std::sqrt(static_cast<double>(cs.d));
    for (auto dt : {torch::kFloat32, torch::kBFloat16, torch::kFloat16}) {
      const auto in = make_qkv(cs.B, cs.N, cs.rc.h, cs.d, dt, dev);
      check_all_paths(in, gates, scale, describe(cs.B, cs.N, cs.d, cs.rc));
    }
  }
}

TEST_CASE("CUDA sparse-head attention: dispatch, contiguous inputs, strided fp32 gates, cross-attention length",
          "[gpu]") {
  const auto dev = gpu();
  torch::manual_seed(77);
  const int64_t B = 2, N = 150, h = 6, d = 72;
  const RouteCase rc{h, 2, 2};
  const auto cfg = gate_config(rc);
  const auto gates = moh::moh_gates(router_input(B, N, 32, 0, dev), cfg, gate_weights(cfg, 32, 0, dev));
  const auto in = make_qkv(B, N, h, d, torch::kBFloat16, dev);
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  // moh::moh_gated_attention routes CUDA tensors to the kernels (auto choice = tensor cores here).
  const auto via_dispatch = moh::moh_gated_attention(in.q, in.k, in.v, gates, scale);
  const auto via_tc = moh::cuda::moh_gated_attention(in.q, in.k, in.v, gates, scale, AttnKernelChoice::kTensorCore);
  CHECK(torch::equal(via_dispatch, via_tc));
  // Contiguous copies and gates as a transposed (non-contiguous) view give the same bits.
  const auto gates_t = gates.transpose(1, 2).contiguous().transpose(1, 2);  // [B, N, h] with strides of [B, h, N]
  const auto contig = moh::cuda::moh_gated_attention(in.q.contiguous(), in.k.contiguous(), in.v.contiguous(), gates_t,
                                                     scale, AttnKernelChoice::kTensorCore);
  CHECK(torch::equal(contig, via_tc));
  // Keys and queries of different lengths (the kernels take Nk separately).
  Qkv cross{in.q, in.k.slice(2, 0, 101), in.v.slice(2, 0, 101)};
  check_all_paths(cross, gates, scale, "Nq=150, Nk=101");
  // Asking for tensor cores where they cannot run fails loudly.
  const auto in32 = make_qkv(B, N, h, d, torch::kFloat32, dev);
  CHECK_THROWS(moh::cuda::moh_gated_attention(in32.q, in32.k, in32.v, gates, scale, AttnKernelChoice::kTensorCore));
}

TEST_CASE("CUDA router kernel matches moh_gates; token lists match the non-zero gates", "[gpu]") {
  const auto dev = gpu();
  torch::manual_seed(31);
  const std::vector<RouteCase> cases = {{24, 16, 3}, {16, 10, 2}, {24, 8, 12}, {12, 0, 4}, {8, 8, 0},
                                        {4, 1, 2, true}, {8, 4, 2, false, 1}, {8, 2, 3, false, 2}, {40, 0, 5}};
  for (const auto& rc : cases) {
    const auto cfg = gate_config(rc);
    const int64_t B = 3, N = 197, C = 64;
    const auto u = router_input(B, N, C, rc.forced, dev);
    const auto w = gate_weights(cfg, C, rc.forced, dev);
    for (auto dt : {torch::kFloat32, torch::kBFloat16}) {
      INFO(describe(B, N, 0, rc) << " router dtype=" << dtype_name(dt));
      const auto ud = u.to(dt);
      moh::MoHGateWeights wd;
      if (w.wg.defined()) wd.wg = w.wg.to(dt);
      if (w.wg_0.defined()) wd.wg_0 = w.wg_0.to(dt);
      if (w.wg_1.defined()) wd.wg_1 = w.wg_1.to(dt);
      const auto res = moh::cuda::moh_router(ud, cfg, wd, /*want_token_lists=*/true);
      REQUIRE(res.gates.sizes() == torch::IntArrayRef({B, N, rc.h}));
      REQUIRE(res.gates.scalar_type() == dt);
      // Reference: moh_gates in fp64 on the same (rounded) inputs. Tokens whose k-th and (k+1)-th router
      // probabilities are closer than the dtype can resolve may legitimately pick differently: excluded.
      moh::MoHGateWeights w64;
      if (wd.wg.defined()) w64.wg = wd.wg.to(torch::kFloat64);
      if (wd.wg_0.defined()) w64.wg_0 = wd.wg_0.to(torch::kFloat64);
      if (wd.wg_1.defined()) w64.wg_1 = wd.wg_1.to(torch::kFloat64);
      moh::MoHGateDebug dbg;
      const auto ref = moh::moh_gates(ud.to(torch::kFloat64), cfg, w64, &dbg).reshape({B * N, rc.h});  // [B*N, h]
      auto keep = torch::ones({B * N}, torch::TensorOptions().device(dev).dtype(torch::kBool));
      if (rc.hr > 0 && rc.hr < cfg.experts()) {
        const auto sorted = std::get<0>(dbg.router_probs.sort(-1, /*descending=*/true));  // [B*N, E]
        const auto gap = sorted.select(1, rc.hr - 1) - sorted.select(1, rc.hr);
        // Relative: rounding moves a probability by a fraction of itself (fp32 ~1e-7, bf16 logits ~1e-2).
        keep = gap > sorted.select(1, rc.hr - 1) * (dt == torch::kFloat32 ? 1e-5 : 5e-2);
      }
      const int64_t kept = keep.sum().item<int64_t>();
      INFO("tokens compared: " << kept << " of " << B * N);
      CHECK(kept >= B * N / 2);
      const auto ours = res.gates.reshape({B * N, rc.h}).to(torch::kFloat64);  // [B, N, h] -> [B*N, h]
      const auto err = (ours - ref).abs().index({keep});
      if (dt == torch::kFloat32) {
        const double excess = (err - (1e-5 + 1e-5 * ref.abs().index({keep}))).max().item<double>();
        INFO("max |gate err| " << err.max().item<double>() << ", worst excess over 1e-5 + 1e-5*|ref| " << excess);
        CHECK(excess <= 0.0);
      } else {  // DESIGN.md rule: at most 2x the error of moh_gates computed naively in the same dtype
        const auto naive = moh::moh_gates(ud, cfg, wd).reshape({B * N, rc.h}).to(torch::kFloat64);  // [B*N, h]
        const double naive_err = (naive - ref).abs().index({keep}).max().item<double>();
        INFO("max |gate err| " << err.max().item<double>() << ", naive " << dtype_name(dt) << " moh_gates error "
                               << naive_err);
        CHECK(err.max().item<double>() <= 2.0 * naive_err + 1e-3);
      }
      // Same heads switched on (bit pattern of non-zero gates) for the compared tokens.
      CHECK(torch::equal(ours.ne(0).index({keep}), ref.ne(0).index({keep})));

      // Token lists: counts and ascending indices of the non-zero gates, -1 after.
      const auto g_cpu = res.gates.to(torch::kCPU).to(torch::kFloat32);
      const auto counts = res.counts.to(torch::kCPU), indices = res.indices.to(torch::kCPU);
      REQUIRE(counts.sizes() == torch::IntArrayRef({B, rc.h}));
      REQUIRE(indices.sizes() == torch::IntArrayRef({B, rc.h, N}));
      bool lists_ok = true;
      for (int64_t b = 0; b < B && lists_ok; ++b)
        for (int64_t hd = 0; hd < rc.h && lists_ok; ++hd) {
          const auto nz = g_cpu[b].select(1, hd).ne(0).nonzero().reshape({-1}).to(torch::kInt32);  // [count]
          const int64_t n = nz.size(0);
          lists_ok = counts[b][hd].item<int64_t>() == n && torch::equal(indices[b][hd].slice(0, 0, n), nz) &&
                     (n == N || indices[b][hd].slice(0, n, N).eq(-1).all().item<bool>());
          if (!lists_ok) UNSCOPED_INFO("token list mismatch at b=" << b << " head=" << hd << " count " << n);
        }
      CHECK(lists_ok);
    }
  }
}

TEST_CASE("CUDA router kernel breaks top-k ties toward the lowest head index", "[gpu]") {
  const auto dev = gpu();
  torch::manual_seed(5);
  const RouteCase rc{6, 2, 1};
  const auto cfg = gate_config(rc);
  const int64_t C = 16;
  const auto u = router_input(2, 9, C, 1, dev);
  auto w = gate_weights(cfg, C, 0, dev);
  w.wg.fill_(0.0);
  w.wg[1].fill_(1.0);
  w.wg[3].fill_(1.0);  // candidates 1 and 3 tie for the top probability for every token
  const auto g = moh::cuda::moh_router(u, cfg, w).gates;
  CHECK(g.select(2, rc.hs + 1).min().item<double>() > 0.0);
  CHECK(g.select(2, rc.hs + 3).abs().max().item<double>() == 0.0);
}
