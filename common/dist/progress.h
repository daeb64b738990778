// One progress bar for a whole multi-process job: every rank adds its work to a shared c10d counter (throttled),
// rank 0 draws the job's total with the ETA of the whole job (common/runtime/progress.h); at the end every rank waits
// for the job to complete, with the stall timeout of dist::Group::wait_counter. In a single process it is a
// plain Progress. The role of sample_ddp.py's tqdm on rank 0, made to count every rank's work.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

#include "common/dist/distributed.h"
#include "common/runtime/progress.h"

namespace moh::dist {

class JobProgress {
 public:
  // `total`: the work of all ranks together; `key`: the shared counter (unique per job phase).
  JobProgress(Group& group, std::string key, std::string label, int64_t total, std::string unit, bool enabled);
  // This rank did n more units. Also where Ctrl-C and failures of other ranks take effect.
  void advance(int64_t n = 1);
  // Publishes the rest and waits until all ranks' work is counted; rank 0 prints the final line.
  void finish_and_wait(const std::string& what);

 private:
  void push();
  Group& g_;
  std::string key_;
  int64_t total_, pending_ = 0, shown_ = 0;
  Progress bar_;
  std::chrono::steady_clock::time_point last_push_;
};

}  // namespace moh::dist
