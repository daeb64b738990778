// Timing helpers for moh-bench: warm-up, then median of repeated runs, timed with CUDA events on the GPU
// (via torch::cuda::synchronize around steady_clock, which is what LibTorch 1.13 and 2.x both offer portably)
// and steady_clock on the CPU.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace moh::bench {

struct BenchOptions {
  std::string device = "auto";
  std::string dtype = "auto";
  int warmup = 3;
  int iters = 10;
  std::string weights;   // optional checkpoint; random weights when empty
  std::string json_out;  // optional path for machine-readable results
  std::vector<std::string> only;  // sub-benchmarks to run (empty = all)
  bool profile = false;           // after timing, print a per-operator profile of extra runs (bench_profile.h)
  std::string against;            // JSON from scripts/bench-official.py: print its figures and the ratio
  uint64_t input_seed = 0;        // seed of the dit/vit forward input (bench-official.py --input-seed draws the same)
};

struct Timing {
  double median_ms = 0, min_ms = 0, max_ms = 0;
};

// Runs fn `warmup` times, then `iters` timed runs; synchronises the device around each timed run.
Timing time_it(const std::function<void()>& fn, const torch::Device& device, int warmup, int iters);

// One result line, printed as "name: 1.234 ms (min 1.2, max 1.3)" plus extra text.
void report(const std::string& name, const Timing& t, const std::string& extra = "");

// --against: the JSON scripts/bench-official.py wrote. official_case returns the entry of `family` ("vit" or "dit")
// whose `key` equals `value` (nullptr when absent); it throws when the file cannot be read or the entry was measured
// with another batch, thread count or dtype than ours (a ratio of different workloads means nothing).
struct Against {
  nlohmann::json doc;
  explicit Against(const std::string& path);
  const nlohmann::json* official_case(const std::string& family, const std::string& key, const std::string& value,
                                      int64_t batch) const;
  std::string path;
};

// "official 2.14 img/s, ours 4.30 img/s: ours/official x2.01" style text for one case (higher_is_better: img/s).
std::string against_text(double official, double ours, const char* unit, bool higher_is_better);

// CPU runs: the Linear layers' FLOPs per call of fn (counted by common/cpu_gemm, any path), their rate over the
// median time t, and this machine's GEMM peak: one [2048, 2048] x [2048, 2048] linear in `dtype` through the same
// path (oneDNN where the build has it), median of 5 after 2 warm-ups, measured once per dtype and run.
struct GemmRate {
  double gflop = 0, gflop_s = 0, peak_gflop_s = 0;
  std::string peak_path;  // e.g. "oneDNN 2.6.3 (avx512_core_bf16)"
};
GemmRate gemm_rate(const std::function<void()>& fn, const Timing& t, torch::Dtype dtype);
// "Linear GEMMs 21.7 GFLOP per call: 150.2 GFLOP/s end to end = 35 % of this machine's GEMM peak (430.1 GFLOP/s ...)"
std::string gemm_rate_text(const GemmRate& r);
nlohmann::json gemm_rate_json(const GemmRate& r);

// The error of a reduced-precision run against the same model in fp32, in fp64: max_rel = max |out - ref| / max |ref|
// (one element decides it: a token routed to another head moves it), rms_rel = rms(out - ref) / rms(ref) (every
// element counts). scripts/bench-official.py gives the official code's autocast and ONNX modes the same two.
struct RelErr {
  double max_rel = 0, rms_rel = 0;
};
RelErr rel_err(const torch::Tensor& out, const torch::Tensor& ref);
// Prints "  error vs fp32: max ... rms ..." and stores rel_err_vs_fp32 / rel_rms_vs_fp32 in `result`.
void report_rel_err(const RelErr& e, nlohmann::json& result);

int bench_attention(const BenchOptions& o);
int bench_dit(const BenchOptions& o);
int bench_vit(const BenchOptions& o);

}  // namespace moh::bench
