// Shared pieces of the CLI apps: the main() wrapper that maps exceptions to one clear message and an exit code
// (1: bad input or failure, 2: unsupported request, 128 + signal: interrupted by Ctrl-C / SIGTERM, after the
// partial output was removed), and the options every app takes (--threads).
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <optional>
#include <string>

#include "common/error.h"

namespace moh {

int run_app(const char* name, const std::function<int()>& body);

// Parses the command line; returns the exit code when the app should stop: 0 after --help, 1 after a bad
// flag or value (CLI11's message and a pointer to --help on stderr). Empty: go on.
std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv);

// Runs `f`; a moh::Error it throws comes back with "<flag>: " in front, so a library message (which speaks of its
// own parameters: "device 'cuda:7' ...") names the flag the user typed ("--device: device 'cuda:7' ...").
template <typename F>
auto with_flag(const char* flag, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Unsupported& e) {
    throw Unsupported(std::string(flag) + ": " + e.what());
  } catch (const Error& e) {
    throw Error(std::string(flag) + ": " + e.what());
  }
}

// --threads N: CPU threads for LibTorch and BLAS together (default: every available core, the fast setting).
// Call apply_threads_option() after parsing.
void add_threads_option(CLI::App& app, int& threads);
void apply_threads_option(int threads);  // threads <= 0: OMP_NUM_THREADS if set, else all cores

}  // namespace moh
