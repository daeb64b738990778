// Multi-process jobs over LibTorch's c10d: a Group joins the job the launcher describes (common/dist/launch_env.h) with
// a TCPStore rendezvous (torchrun's agent store when TORCHELASTIC_USE_AGENT_STORE=True, else rank 0 serves) and a
// process group (ProcessGroupGloo; ProcessGroupNCCL on request in CUDA builds that have it), and offers what the
// apps need: barrier, sum all-reduce of int64/float64 tensors, gather of small strings to rank 0, shared counters
// with a stall timeout (progress of all ranks, and the wait for the slowest one), agreement checks. Without a
// launcher it is a single process and every call is local. A rank that fails flags it in the store on its way
// out, and every wait of the others ends with a clear error; a rank that dies silently ends them after the
// timeout. The c10d / Gloo headers stay inside distributed.cpp. Mirrors what torch.distributed does for
// sample_ddp.py (init_process_group, barrier, all_reduce) in the official scripts.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/dist/launch_env.h"

namespace moh::dist {

struct Options {
  LaunchOverrides launch;
  double timeout_s = 300;        // rendezvous, each collective, and the longest stall of a shared counter
  std::string backend = "auto";  // auto (= gloo) | gloo | nccl (CUDA builds with NCCL only)
};

// True when this build can run more than one process (compiled with Gloo).
bool multi_process_supported();
// True when --dist-backend nccl is available (CUDA build with LibTorch's ProcessGroupNCCL).
bool nccl_supported();

class Group {
 public:
  // Joins the job of the process environment. Throws moh::Unsupported when the launcher asks for more ranks than
  // this build supports, moh::Error when the rendezvous fails or times out.
  explicit Group(const Options& options);
  // A single-process group (tests, and apps run without a launcher).
  static std::unique_ptr<Group> single();
  ~Group();
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;
  struct Impl;  // c10d objects (distributed.cpp)

  int rank() const { return info_.rank; }
  int world_size() const { return info_.world_size; }
  int local_rank() const { return info_.local_rank; }
  bool is_main() const { return info_.rank == 0; }
  bool multi() const { return info_.world_size > 1; }
  const LaunchInfo& launch() const { return info_; }
  double timeout_seconds() const { return timeout_s_; }
  const std::string& backend() const { return backend_; }  // "none", "gloo" or "nccl"
  std::string describe() const;                            // "rank 1 of 4 (torchrun, gloo)"

  // `what` names the step in error messages ("final barrier").
  void barrier(const std::string& what);
  // In-place sum over ranks of a CPU int64 / float64 tensor (any shape).
  void all_reduce_sum(torch::Tensor& t, const std::string& what);
  // Every rank's `mine`, in rank order, on rank 0; an empty vector on the others.
  std::vector<std::string> gather_to_main(const std::string& mine, const std::string& tag);
  // Throws moh::Error on a rank whose `value` differs from rank 0's (ranks started with other data or flags).
  void check_same(const std::string& what, const std::string& value);

  // A counter shared by all ranks (c10d store): adds delta, returns the new total.
  int64_t counter_add(const std::string& key, int64_t delta);
  // Waits until the counter reaches `target`, calling on_value with each new value (for a progress bar). Throws
  // when it has not moved for the timeout (a rank died or hangs), or when another rank reported a failure.
  void wait_counter(const std::string& key, int64_t target, const std::string& what,
                    const std::function<void(int64_t)>& on_value = {});
  // Throws when another rank has reported a failure (cheap; call between batches).
  void check_peers();

 private:
  struct SingleTag {};
  explicit Group(SingleTag);  // single process
  LaunchInfo info_;
  double timeout_s_ = 300;
  std::string backend_ = "none";
  std::unique_ptr<Impl> impl_;
  int uncaught_at_start_ = 0;
};

// The device of this rank: "auto" / "cuda" in a multi-process job -> cuda:(local rank % GPUs) ("one GPU per local
// rank"); otherwise parse_device(spec).
torch::Device rank_device(const std::string& spec, const Group& group);
// CPU threads per rank when --threads is not given: the available cores split between the ranks of this node.
int default_threads(const Group& group);

// Global indices [0, n) owned by `rank`: rank, rank + world, ... (deterministic, every index exactly once).
std::vector<int64_t> strided_shard(int64_t n, int rank, int world_size);

}  // namespace moh::dist
