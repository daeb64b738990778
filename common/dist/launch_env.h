// Which process of a multi-process job this is, read from the launcher's environment: torchrun / torch.distributed
// (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT, TORCHELASTIC_USE_AGENT_STORE,
// TORCHELASTIC_RESTART_COUNT) or Slurm's srun (SLURM_PROCID, SLURM_STEP_NUM_TASKS / SLURM_NTASKS, SLURM_LOCALID;
// master from MASTER_ADDR / --master-addr, else the first host of SLURM_STEP_NODELIST / SLURM_JOB_NODELIST).
// None set: one process. Pure functions of an environment lookup, so tests need no launcher. The torch side of
// this contract is torch/distributed/run.py (torchrun) and torch/distributed/rendezvous.py (env:// rendezvous).
#pragma once
#include <functional>
#include <string>

namespace moh::dist {

struct LaunchInfo {
  std::string launcher = "none";  // "none", "torchrun", "env" (RANK/WORLD_SIZE set by hand) or "slurm"
  int rank = 0, world_size = 1;
  int local_rank = 0, local_world_size = 1;
  std::string master_addr;  // rendezvous host (TCPStore)
  int master_port = 0;
  bool agent_store = false;  // torchrun's agent already serves the TCPStore: every rank connects as client
  int restart_count = 0;     // torchrun restart attempt (keys of a retried job must not collide)
};

// Command-line overrides for the rendezvous (Slurm clusters often need them; torchrun sets everything).
struct LaunchOverrides {
  std::string master_addr;  // --master-addr
  int master_port = 0;      // --master-port (0: from the environment, else 29500 + SLURM_JOB_ID % 10000 / 29500)
};

using EnvLookup = std::function<const char*(const char*)>;  // getenv-like: nullptr when unset

// Reads the environment. Throws moh::Error on an inconsistent one (RANK without WORLD_SIZE, rank >= world size, a
// non-numeric value). WORLD_SIZE 1 is a plain single process.
LaunchInfo detect_launch(const EnvLookup& env, const LaunchOverrides& overrides = {});
LaunchInfo detect_launch_from_process_env(const LaunchOverrides& overrides = {});

// "node[03-05,9],gpu1" -> "node03": the first host of a Slurm node list (the usual rendezvous host).
std::string first_slurm_host(const std::string& nodelist);

}  // namespace moh::dist
