// moh-parity FILE...: compares this toolkit against reference files written by the official Python code
// (format: moh-golden-v1). Each file's metadata says what to build; nothing about a file is hard-coded here.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "apps/app_main.h"
#include "common/error.h"
#include "parity/parity.h"
#include "dit/parity.h"
#include "vit/parity.h"

namespace {

std::map<std::string, moh::ParityRunner> all_runners() {
  std::map<std::string, moh::ParityRunner> runners = {{"preproc", moh::run_preproc_parity}};
  for (auto& [k, v] : moh::dit::parity_runners()) runners[k] = v;
  for (auto& [k, v] : moh::vit::parity_runners()) runners[k] = v;
  return runners;
}

}  // namespace

int main(int argc, char** argv) {
  return moh::run_app("moh-parity", [&]() -> int {
    CLI::App app{"Compare this toolkit against reference files produced by the official Python code.\n"
                 "Each FILE is a moh-golden-v1 safetensors file; its metadata (family, config) says what to build.\n"
                 "Exit code: 0 all checks pass, 1 a check failed or a file could not be read, 2 a file's family is "
                 "not supported (and nothing failed)."};
    std::vector<std::string> files;
    double tol_scale = 1.0;
    bool quiet = false;
    app.add_option("files", files, "reference files (*.safetensors)")->required();
    app.add_option("--tol-scale", tol_scale, "multiply every recommended tolerance by this factor (default 1)");
    app.add_flag("-q,--quiet", quiet, "print only one line per file");
    int threads = 0;
    moh::add_threads_option(app, threads);
    if (const auto rc = moh::parse_command_line(app, argc, argv)) return *rc;
    moh::apply_threads_option(threads);
    const auto runners = all_runners();
    int failed = 0, unsupported = 0, errors = 0, passed = 0;
    for (const auto& path : files) {
      try {
        moh::GoldenFile g(path);
        auto it = runners.find(g.family());
        if (it == runners.end()) {
          std::cout << "UNSUPPORTED " << path << ": family '" << g.family() << "' is not supported by this build\n";
          ++unsupported;
          continue;
        }
        torch::NoGradGuard no_grad;
        auto checks = it->second(g);
        MOH_CHECK(!checks.empty(), "reference file '", path, "' has no outputs this toolkit can compare");
        bool all_ok = true;
        for (auto& c : checks) {
          moh::Tolerance tol{c.tol.atol * tol_scale, c.tol.rtol * tol_scale};
          auto r = moh::compare_tensors(c.ours, c.ref, tol);
          all_ok = all_ok && r.pass;
          if (!quiet || !r.pass) {
            char line[512];
            std::snprintf(line, sizeof line, "  %-40s max_abs %.3e  max_rel %.3e  (max|ref| %.3g, atol %.2g, rtol %.2g)  %s%s%s",
                          c.name.c_str(), r.max_abs, r.max_rel, r.max_ref, tol.atol, tol.rtol, r.pass ? "PASS" : "FAIL",
                          r.note.empty() ? "" : "  ", r.note.c_str());
            std::cout << line << "\n";
          }
        }
        std::cout << (all_ok ? "PASS " : "FAIL ") << path << " (" << g.family() << ", " << checks.size()
                  << " checks)\n";
        (all_ok ? passed : failed)++;
      } catch (const moh::Unsupported& e) {
        std::cout << "UNSUPPORTED " << path << ": " << e.what() << "\n";
        ++unsupported;
      } catch (const std::exception& e) {
        std::cout << "ERROR " << path << ": " << e.what() << "\n";
        ++errors;
      }
    }
    std::cout << "summary: " << passed << " passed, " << failed << " failed, " << errors << " errors, "
              << unsupported << " unsupported\n";
    if (failed || errors) return 1;
    return unsupported ? 2 : 0;
  });
}
