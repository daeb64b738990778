// Command-line options of multi-process runs, shared by the apps that scale out (moh-eval, moh-generate):
// --dist-timeout, --dist-backend, --master-addr, --master-port (see common/dist/distributed.h).
#pragma once
#include <CLI/CLI.hpp>

#include "common/dist/distributed.h"

namespace moh::dist {

void add_dist_options(CLI::App& app, Options& options);

}  // namespace moh::dist
