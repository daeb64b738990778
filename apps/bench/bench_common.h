// Timing helpers for moh-bench: warm-up, then median of repeated runs, timed with CUDA events on the GPU
// (via torch::cuda::synchronize around steady_clock, which is what LibTorch 1.13 and 2.x both offer portably)
// and steady_clock on the CPU.
#pragma once
#include <torch/torch.h>

#include <functional>
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
};

struct Timing {
  double median_ms = 0, min_ms = 0, max_ms = 0;
};

// Runs fn `warmup` times, then `iters` timed runs; synchronises the device around each timed run.
Timing time_it(const std::function<void()>& fn, const torch::Device& device, int warmup, int iters);

// One result line, printed as "name: 1.234 ms (min 1.2, max 1.3)" plus extra text.
void report(const std::string& name, const Timing& t, const std::string& extra = "");

int bench_attention(const BenchOptions& o);
int bench_dit(const BenchOptions& o);
int bench_vit(const BenchOptions& o);

}  // namespace moh::bench
