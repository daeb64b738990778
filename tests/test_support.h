// Helpers shared by the Catch2 tests: fixture paths and temporary folders.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/catch_compat.h"

namespace moh::test {
std::string data_path(const std::string& rel);                 // tests/data/<rel>
std::vector<std::string> data_glob(const std::string& pattern);  // sorted matches under tests/data
std::string temp_dir(const std::string& tag);                    // fresh empty folder, removed at exit
std::string bin_path(const std::string& app);                    // build/bin/<app>
// Runs a shell command, returns its exit code and (optionally) its combined output.
int run_command(const std::string& cmd, std::string* output = nullptr);
// Parses a JSON file; throws std::runtime_error naming the file when it cannot be read.
nlohmann::json read_json(const std::string& path);
// True when CI=true is set in the environment (the CI run must never skip a check silently).
bool in_ci();
std::string read_file(const std::string& path);  // whole file as bytes ("" when it cannot be read)
std::string repo_root();                         // the source tree's root
std::string repo_path(const std::string& rel);   // <repo root>/<rel>
int free_port();                                 // a loopback TCP port that was free a moment ago
// scripts/torchrun.sh finds a launcher (MOH_TORCHRUN, torchrun or python3 -m torch.distributed.run; checked once).
bool torchrun_available();
// "scripts/torchrun.sh ... --no_python " launching `nproc` ranks on a fresh loopback port: append PROGRAM ARGS.
std::string torchrun_prefix(int nproc);
}  // namespace moh::test

// For checks that need something outside the repository (an installed dataset, a GPU): when it is missing the
// test fails under CI=true and is a visible warning ("SKIPPED: ...") elsewhere. Use: `if (!MOH_NEED(ok, "...")) return;`
#define MOH_NEED(present, what)                                                              \
  ((present) ? true                                                                          \
             : (::moh::test::in_ci() ? ([&] { FAIL("missing under CI=true: " << (what)); }(), false) \
                                     : ([&] { WARN("SKIPPED: " << (what)); }(), false)))
