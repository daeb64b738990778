// Multi-process CLI options (see cli.h).
#include "common/dist/cli.h"

namespace moh::dist {

void add_dist_options(CLI::App& app, Options& o) {
  const std::string group = "Multi-process (torchrun / srun)";
  app.add_option("--dist-timeout", o.timeout_s,
                 "seconds a rank waits for the others (rendezvous, each collective, and the longest time the job "
                 "may make no progress) before it ends with an error (default 300)")
      ->group(group)
      ->check(CLI::PositiveNumber);
  app.add_option("--dist-backend", o.backend,
                 std::string("c10d process group: auto (= gloo: the ranks only exchange counts), gloo") +
                     (nccl_supported() ? ", nccl" : " (this build has no nccl)"))
      ->group(group)
      ->check(CLI::IsMember({"auto", "gloo", "nccl"}));
  app.add_option("--master-addr", o.launch.master_addr,
                 "rendezvous host (rank 0's); default MASTER_ADDR, under Slurm the first host of the job")
      ->group(group);
  app.add_option("--master-port", o.launch.master_port,
                 "rendezvous TCP port; default MASTER_PORT, under Slurm 29500 + job id % 10000")
      ->group(group)
      ->check(CLI::Range(1, 65535));
}

}  // namespace moh::dist
