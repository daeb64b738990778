// Launcher environment -> LaunchInfo (see launch_env.h).
#include "common/dist/launch_env.h"

#include <cstdlib>
#include <string>

#include "common/error.h"

namespace moh::dist {
namespace {

bool has(const EnvLookup& env, const char* name) {
  const char* v = env(name);
  return v != nullptr && *v != '\0';
}

std::string get(const EnvLookup& env, const char* name) {
  const char* v = env(name);
  return v ? std::string(v) : std::string();
}

int get_int(const EnvLookup& env, const char* name, int fallback) {
  if (!has(env, name)) return fallback;
  const std::string s = get(env, name);
  size_t used = 0;
  long v = 0;
  try {
    v = std::stol(s, &used);
  } catch (...) {
    used = 0;
  }
  MOH_CHECK(used == s.size() && v >= 0 && v < (1L << 30), "environment variable ", name, "='", s,
            "' is not a non-negative integer (set by the launcher: torchrun or srun)");
  return static_cast<int>(v);
}

}  // namespace

std::string first_slurm_host(const std::string& nodelist) {
  // Grammar (simplified): host[,host...] where host = prefix or prefix[range,range...], range = a or a-b.
  std::string out;
  for (size_t i = 0; i < nodelist.size(); ++i) {
    const char c = nodelist[i];
    if (c == ',') break;
    if (c == '[') {
      for (size_t j = i + 1; j < nodelist.size() && nodelist[j] != '-' && nodelist[j] != ',' && nodelist[j] != ']'; ++j)
        out += nodelist[j];
      break;
    }
    out += c;
  }
  return out;
}

LaunchInfo detect_launch(const EnvLookup& env, const LaunchOverrides& ov) {
  LaunchInfo li;
  if (has(env, "RANK") || has(env, "WORLD_SIZE")) {
    MOH_CHECK(has(env, "RANK") && has(env, "WORLD_SIZE"), "the environment sets ",
              has(env, "RANK") ? "RANK" : "WORLD_SIZE", " but not ", has(env, "RANK") ? "WORLD_SIZE" : "RANK",
              "; launch with torchrun (scripts/torchrun.sh) or "
              "set both");
    li.launcher = has(env, "TORCHELASTIC_RUN_ID") || has(env, "TORCHELASTIC_RESTART_COUNT") ? "torchrun" : "env";
    li.rank = get_int(env, "RANK", 0);
    li.world_size = get_int(env, "WORLD_SIZE", 1);
    li.local_rank = get_int(env, "LOCAL_RANK", li.rank);
    li.local_world_size = get_int(env, "LOCAL_WORLD_SIZE", li.world_size);
    li.agent_store = get(env, "TORCHELASTIC_USE_AGENT_STORE") == "True";
    li.restart_count = get_int(env, "TORCHELASTIC_RESTART_COUNT", 0);
  } else if (has(env, "SLURM_PROCID") && (has(env, "SLURM_STEP_NUM_TASKS") || has(env, "SLURM_NTASKS"))) {
    li.launcher = "slurm";
    li.rank = get_int(env, "SLURM_PROCID", 0);
    // The step's task count (srun) rather than the allocation's: a lone process in an sbatch script is one rank.
    li.world_size =
        has(env, "SLURM_STEP_NUM_TASKS") ? get_int(env, "SLURM_STEP_NUM_TASKS", 1) : get_int(env, "SLURM_NTASKS", 1);
    li.local_rank = get_int(env, "SLURM_LOCALID", 0);
    li.local_world_size = 1;  // Slurm binds CPUs per task; the thread default then follows the affinity mask
  } else {
    return li;  // no launcher: one process
  }
  MOH_CHECK(li.world_size >= 1, "world size 0 from the ", li.launcher, " environment");
  MOH_CHECK(li.rank < li.world_size, "rank ", li.rank, " is not below the world size ", li.world_size, " (",
            li.launcher, " environment)");
  if (li.local_world_size < 1) li.local_world_size = 1;

  li.master_addr = !ov.master_addr.empty() ? ov.master_addr : get(env, "MASTER_ADDR");
  if (li.master_addr.empty() && li.launcher == "slurm")  // task 0 runs on the first node of the step
    li.master_addr = first_slurm_host(has(env, "SLURM_STEP_NODELIST") ? get(env, "SLURM_STEP_NODELIST")
                                                                      : get(env, "SLURM_JOB_NODELIST"));
  if (li.master_addr.empty() && li.world_size == 1) li.master_addr = "127.0.0.1";
  MOH_CHECK(!li.master_addr.empty(),
            "no rendezvous host: set MASTER_ADDR or pass --master-addr HOST (the host "
            "of rank 0)");
  li.master_port = ov.master_port > 0 ? ov.master_port : get_int(env, "MASTER_PORT", 0);
  if (li.master_port == 0)
    li.master_port = li.launcher == "slurm" ? 29500 + get_int(env, "SLURM_JOB_ID", 0) % 10000 : 29500;
  MOH_CHECK(li.master_port > 0 && li.master_port < 65536, "rendezvous port ", li.master_port, " is not a TCP port");
  return li;
}

LaunchInfo detect_launch_from_process_env(const LaunchOverrides& overrides) {
  return detect_launch([](const char* name) -> const char* { return std::getenv(name); }, overrides);
}

}  // namespace moh::dist
