#include "apps/bench/bench_common.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>

#include "common/cpu_gemm/onednn_linear.h"
#include "common/error.h"
#include "common/io/json_file.h"

namespace moh::bench {

namespace {
void sync(const torch::Device& d) {
  if (d.is_cuda()) torch::cuda::synchronize(d.index());
}
}  // namespace

Timing time_it(const std::function<void()>& fn, const torch::Device& device, int warmup, int iters) {
  for (int i = 0; i < warmup; ++i) fn();
  sync(device);
  std::vector<double> ms;
  for (int i = 0; i < std::max(1, iters); ++i) {
    auto t0 = std::chrono::steady_clock::now();
    fn();
    sync(device);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return {ms[ms.size() / 2], ms.front(), ms.back()};
}

void report(const std::string& name, const Timing& t, const std::string& extra) {
  std::printf("%-48s %10.3f ms  (min %.3f, max %.3f)%s%s\n", name.c_str(), t.median_ms, t.min_ms, t.max_ms,
              extra.empty() ? "" : "  ", extra.c_str());
  std::fflush(stdout);
}

RelErr rel_err(const torch::Tensor& out, const torch::Tensor& ref) {
  const auto r = ref.to(torch::kCPU, torch::kFloat64);
  const auto d = out.to(torch::kCPU, torch::kFloat64) - r;
  return {d.abs().max().item<double>() / std::max(r.abs().max().item<double>(), 1e-30),
          d.pow(2).mean().sqrt().item<double>() / std::max(r.pow(2).mean().sqrt().item<double>(), 1e-30)};
}

void report_rel_err(const RelErr& e, nlohmann::json& result) {
  std::printf("  error vs fp32: max|out - fp32| / max|fp32| = %.2e, rms(out - fp32) / rms(fp32) = %.2e\n", e.max_rel,
              e.rms_rel);
  result["rel_err_vs_fp32"] = e.max_rel;
  result["rel_rms_vs_fp32"] = e.rms_rel;
}

GemmRate gemm_rate(const std::function<void()>& fn, const Timing& t, torch::Dtype dtype) {
  static std::map<torch::Dtype, double> peaks;
  GemmRate r;
  const auto f0 = cpu_gemm::linear_flops();
  fn();
  r.gflop = double(cpu_gemm::linear_flops() - f0) / 1e9;
  r.gflop_s = r.gflop / (t.median_ms / 1e3);
  r.peak_path = cpu_gemm::describe();
  if (!peaks.count(dtype)) {
    torch::NoGradGuard no_grad;
    const int64_t n = 2048;
    const auto x = torch::randn({n, n}).to(dtype), w = (torch::randn({n, n}) / 45.0).to(dtype);
    const auto p = time_it([&] { cpu_gemm::linear(x, w, {}); }, torch::kCPU, 2, 5);
    peaks[dtype] = 2.0 * n * n * n / 1e9 / (p.median_ms / 1e3);
  }
  r.peak_gflop_s = peaks[dtype];
  return r;
}

std::string gemm_rate_text(const GemmRate& r) {
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "Linear GEMMs %.2f GFLOP per call: %.1f GFLOP/s end to end = %.0f %% of this machine's GEMM peak "
                "(%.1f GFLOP/s: 2048^3 through %s)",
                r.gflop, r.gflop_s, 100.0 * r.gflop_s / r.peak_gflop_s, r.peak_gflop_s, r.peak_path.c_str());
  return buf;
}

nlohmann::json gemm_rate_json(const GemmRate& r) {
  return {{"linear_gflop", r.gflop}, {"linear_gflop_per_s", r.gflop_s}, {"gemm_peak_gflop_per_s", r.peak_gflop_s},
          {"share_of_gemm_peak", r.gflop_s / r.peak_gflop_s}, {"gemm_path", r.peak_path}};
}

Against::Against(const std::string& p) : path(p) {
  doc = read_json_file(p, "--against file (written by scripts/bench-official.py --out FILE)");
  MOH_CHECK(doc.is_object() && doc.value("device", "") == "cpu" && doc.value("dtype", "") == "fp32", "--against: '", p,
            "' is not a bench-official.py CPU fp32 result");
  const int threads = doc.value("threads", 0);
  const int ours = at::get_num_threads();
  MOH_CHECK(threads == ours, "--against: '", p, "' was measured with ", threads, " threads, this run uses ", ours,
            " (set OMP_NUM_THREADS to the same value for both)");
}

const nlohmann::json* Against::official_case(const std::string& family, const std::string& key,
                                             const std::string& value, int64_t batch) const {
  if (!doc.contains(family)) return nullptr;
  for (const auto& c : doc[family]) {
    if (c.value(key, "") != value) continue;
    MOH_CHECK(c.value("batch", int64_t{-1}) == batch, "--against: '", path, "' has ", family, " ", value, " at batch ",
              c.value("batch", int64_t{-1}), ", this run uses batch ", batch);
    return &c;
  }
  return nullptr;
}

std::string against_text(double official, double ours, const char* unit, bool higher_is_better) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "official %.2f %s, ours %.2f %s: ours/official x%.2f", official, unit, ours, unit,
                higher_is_better ? ours / official : official / ours);
  return buf;
}

}  // namespace moh::bench
