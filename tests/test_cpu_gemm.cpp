// [gemm] The CPU GEMMs of the Linear layers through oneDNN (common/cpu_gemm/onednn_linear.h) against LibTorch's
// ops: fp32 and bf16, with and without bias, the GELU epilogues, shapes from 1 row to the DiT's MLP; the packed
// weight follows in-place updates and is dropped with its weight; autograd falls back to LibTorch; concurrent calls.
// Bounds are relative to an fp64 reference and to LibTorch's own error on the same inputs (no bit equality: the
// kernels and their summation order differ by CPU and thread count). ctest runs the group three times: as oneDNN picks
// its kernels for this CPU (gemm), and limited to AVX2 (gemm-avx2, DNNL_MAX_CPU_ISA=AVX2: the kernels of a machine
// without AVX-512; the bf16 case is left out there because LibTorch 1.13's own bf16 matmul, the reference, then
// fails: it asks oneDNN for AVX-512 kernels that the variable hides), and on unpacked weights (gemm-plain,
// MOH_CPU_GEMM_PACK=0).
#include <torch/torch.h>

#include <thread>
#include <vector>

#include "common/cpu_gemm/onednn_linear.h"
#include "tests/catch_compat.h"
#include "tests/expect_error.h"
#include "tests/test_support.h"

namespace {
using moh::cpu_gemm::Epilogue;

// max |a - ref| / max |ref|, in fp64
double max_rel(const torch::Tensor& a, const torch::Tensor& ref) {
  auto r = ref.to(torch::kFloat64);
  return (a.to(torch::kFloat64) - r).abs().max().item<double>() / std::max(r.abs().max().item<double>(), 1e-30);
}

torch::Tensor reference64(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, Epilogue e) {
  auto y = torch::linear(x.to(torch::kFloat64), w.to(torch::kFloat64), b.defined() ? b.to(torch::kFloat64) : b);
  if (e == Epilogue::kGeluTanh) return torch::gelu(y, "tanh");
  if (e == Epilogue::kGeluErf) return torch::gelu(y);
  return y;
}

struct Case {
  int64_t rows, in, out;
};
const std::vector<Case> kCases = {{1, 3, 5}, {37, 96, 160}, {512, 384, 1152}, {3, 1152, 4608}, {98, 64, 1}};

}  // namespace

TEST_CASE("oneDNN linear matches LibTorch's fp32 linear within its own rounding", "[gemm]") {
  INFO(moh::cpu_gemm::describe());
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(7);
  for (const auto& c : kCases)
    for (bool with_bias : {true, false})
      for (auto e : {Epilogue::kNone, Epilogue::kGeluTanh, Epilogue::kGeluErf}) {
        const auto x = at::randn({c.rows, c.in}, gen, torch::kFloat32);
        const auto w = at::randn({c.out, c.in}, gen, torch::kFloat32) / std::sqrt(double(c.in));
        const auto b = with_bias ? at::randn({c.out}, gen, torch::kFloat32) : torch::Tensor();
        const auto ref = reference64(x, w, b, e);
        const auto ours = moh::cpu_gemm::linear(x, w, b, e);
        const auto theirs = moh::cpu_gemm::torch_linear(x, w, b, e);
        INFO("rows " << c.rows << " in " << c.in << " out " << c.out << " bias " << with_bias << " epilogue "
                     << int(e));
        REQUIRE(ours.sizes() == theirs.sizes());
        REQUIRE(ours.scalar_type() == torch::kFloat32);
        const double err = max_rel(ours, ref), err_torch = max_rel(theirs, ref);
        INFO("ours " << err << " LibTorch " << err_torch);
        CHECK(err <= std::max(4 * err_torch, 2e-6));
      }
}

TEST_CASE("oneDNN linear keeps leading dimensions and takes strided inputs", "[gemm]") {
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(8);
  const auto w = at::randn({24, 16}, gen, torch::kFloat32), b = at::randn({24}, gen, torch::kFloat32);
  const auto x = at::randn({2, 5, 7, 16}, gen, torch::kFloat32);
  const auto strided = at::randn({2, 7, 5, 16}, gen, torch::kFloat32).transpose(1, 2);  // [2, 5, 7, 16], not contiguous
  for (const auto& in : {x, strided}) {
    const auto ours = moh::cpu_gemm::linear(in, w, b);
    REQUIRE(ours.sizes() == torch::IntArrayRef({2, 5, 7, 24}));
    CHECK(max_rel(ours, reference64(in, w, b, Epilogue::kNone)) < 1e-5);
  }
}

TEST_CASE("oneDNN linear in bf16: output in bf16, error of one bf16 rounding", "[gemm][bf16]") {
  INFO(moh::cpu_gemm::describe());
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(9);
  for (const auto& c : kCases) {
    const auto x = at::randn({c.rows, c.in}, gen, torch::kFloat32);  // fp32 input: cast to the weight's bf16
    const auto w = (at::randn({c.out, c.in}, gen, torch::kFloat32) / std::sqrt(double(c.in))).to(torch::kBFloat16);
    const auto b = at::randn({c.out}, gen, torch::kFloat32).to(torch::kBFloat16);
    const auto ref = reference64(x.to(torch::kBFloat16), w, b, Epilogue::kGeluTanh);
    const auto ours = moh::cpu_gemm::linear(x, w, b, Epilogue::kGeluTanh);
    const auto theirs = moh::cpu_gemm::torch_linear(x, w, b, Epilogue::kGeluTanh);
    INFO("rows " << c.rows << " in " << c.in << " out " << c.out << "; oneDNN path: "
                 << moh::cpu_gemm::uses_onednn(x, w));
    REQUIRE(ours.scalar_type() == torch::kBFloat16);
    const double err = max_rel(ours, ref), err_torch = max_rel(theirs, ref);
    INFO("ours " << err << " LibTorch " << err_torch);
    // bf16 keeps 8 significant bits: one rounding of the output is <= 2^-8 relative; LibTorch may round more
    CHECK(err <= std::max(2 * err_torch, 8e-3));
  }
}

TEST_CASE("oneDNN linear sees in-place weight updates and drops the packed copy of a freed weight", "[gemm]") {
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(10);
  const auto x = at::randn({8, 32}, gen, torch::kFloat32);
  const size_t before = moh::cpu_gemm::cached_weight_count();
  {
    auto w = at::randn({16, 32}, gen, torch::kFloat32);
    const auto y0 = moh::cpu_gemm::linear(x, w, {});
    const bool packed = moh::cpu_gemm::uses_onednn(x, w) && moh::cpu_gemm::packs_weights();
    CHECK(moh::cpu_gemm::cached_weight_count() == before + (packed ? 1 : 0));
    w.mul_(-2);  // an optimizer-like in-place step: the version counter moves
    const auto y1 = moh::cpu_gemm::linear(x, w, {});
    CHECK(max_rel(y1, reference64(x, w, {}, Epilogue::kNone)) < 1e-5);
    CHECK(max_rel(y1, -2 * y0) < 1e-5);
    // a view of the same weight with another shape is another matrix
    const auto y2 = moh::cpu_gemm::linear(x.slice(1, 0, 16), w.view({32, 16}).slice(0, 0, 16).contiguous(), {});
    CHECK(y2.size(1) == 16);
  }
  CHECK(moh::cpu_gemm::cached_weight_count() == before);  // w and the contiguous() copy are gone, so are their packs
}

TEST_CASE("linear with autograd runs through LibTorch and has gradients", "[gemm]") {
  auto gen = at::detail::createCPUGenerator(11);
  auto w = at::randn({6, 4}, gen, torch::kFloat32).requires_grad_(true);
  const auto x = at::randn({3, 4}, gen, torch::kFloat32);
  CHECK_FALSE(moh::cpu_gemm::uses_onednn(x, w));
  auto y = moh::cpu_gemm::linear(x, w, {}, Epilogue::kGeluErf);
  REQUIRE(y.requires_grad());
  y.sum().backward();
  REQUIRE(w.grad().defined());
  CHECK(w.grad().abs().sum().item<double>() > 0);
}

TEST_CASE("concurrent oneDNN linear calls on shared weights give LibTorch's results", "[gemm]") {
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(12);
  const auto w = at::randn({96, 64}, gen, torch::kFloat32), b = at::randn({96}, gen, torch::kFloat32);
  std::vector<torch::Tensor> xs, ys(4);
  for (int i = 0; i < 4; ++i) xs.push_back(at::randn({17 + i, 64}, gen, torch::kFloat32));
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&, i] {
      torch::NoGradGuard inner;
      for (int r = 0; r < 20; ++r) ys[i] = moh::cpu_gemm::linear(xs[i], w, b);
    });
  for (auto& t : threads) t.join();
  for (int i = 0; i < 4; ++i) CHECK(max_rel(ys[i], reference64(xs[i], w, b, Epilogue::kNone)) < 1e-5);
}

TEST_CASE("the oneDNN path is taken where the build has it, and MOH_CPU_GEMM-style switching works", "[gemm]") {
  torch::NoGradGuard no_grad;
  const auto x = torch::ones({2, 8}), w = torch::ones({4, 8});
#ifdef MOH_TEST_EXPECT_ONEDNN
  CHECK(moh::cpu_gemm::describe().rfind("oneDNN", 0) == 0);
  CHECK(moh::cpu_gemm::uses_onednn(x, w) == moh::cpu_gemm::enabled());
#endif
  const bool was = moh::cpu_gemm::enabled();
  moh::cpu_gemm::set_enabled(false);
  CHECK_FALSE(moh::cpu_gemm::uses_onednn(x, w));
  CHECK(moh::cpu_gemm::linear(x, w, {}).sum().item<double>() == 2 * 4 * 8);
  moh::cpu_gemm::set_enabled(was);
}

TEST_CASE("MOH_CPU_GEMM: a value other than onednn or torch is refused with the choices, not ignored", "[gemm]") {
  std::string out;
  const auto cmd = moh::test::bin_path("moh-bench") + " vit --only agg --iters 1 --warmup 0 2>&1";
#ifdef MOH_TEST_EXPECT_ONEDNN  // without oneDNN the variable is never read: there is no choice to make
  CHECK(moh::test::run_command("MOH_CPU_GEMM=onednnn " + cmd, &out) != 0);
  INFO(out);
  CHECK(moh::test::contains(out, "MOH_CPU_GEMM='onednnn'"));
  CHECK(moh::test::contains(out, "'torch'"));
#endif
  CHECK(moh::test::run_command("MOH_CPU_GEMM=torch " + cmd, &out) == 0);
  CHECK(moh::test::run_command("MOH_CPU_GEMM=onednn " + cmd, &out) == 0);
}
