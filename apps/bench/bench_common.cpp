#include "apps/bench/bench_common.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

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

}  // namespace moh::bench
