// Op-level CPU/GPU-host profile for moh-bench --profile: a global ATen RecordFunction observer (present in LibTorch
// 1.13 and 2.x) that sums inclusive and self wall time per operator name (aten::addmm, moh::..., ...), printed as a
// table. Our own code (no official counterpart). Self time = inclusive time minus nested ops on the same thread.
#pragma once
#include <string>

namespace moh::bench {

class OpProfiler {
 public:
  OpProfiler();  // starts observing
  ~OpProfiler();
  // Stops observing and prints the `top` operators by self time, as "name  calls  self ms  incl ms  self %"; times
  // are divided by `runs` (per forward).
  void print(int top, int runs, const std::string& title);

 private:
  uint64_t handle_ = 0;
  bool active_ = false;
  void stop();
};

}  // namespace moh::bench
