// Shared main() wrapper and common options of the CLI apps (see app_main.h).
#include "apps/app_main.h"

#include <cstdlib>
#include <exception>
#include <iostream>

#include "common/error.h"
#include "common/runtime/interrupt.h"
#include "common/runtime/threads.h"

namespace moh {

int run_app(const char* name, const std::function<int()>& body) {
  install_interrupt_handlers();
  try {
    return body();
  } catch (const Interrupted& e) {
    std::cerr << name << ": " << e.what() << "\n";
    return 128 + e.signal();
  } catch (const Unsupported& e) {
    std::cerr << name << ": unsupported: " << e.what() << "\n";
    return 2;
  } catch (const Error& e) {
    std::cerr << name << ": error: " << e.what() << "\n";
    return 1;
  } catch (const c10::Error& e) {
    std::cerr << name << ": internal error in LibTorch: " << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << name << ": error: " << e.what() << "\n";
    return 1;
  }
}

std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);  // prints help, or the error and "Run with --help for more information."
    return rc == 0 ? 0 : 1;      // CLI11's own codes (105, 106, ...) would say nothing the docs promise
  }
  return std::nullopt;
}

void add_threads_option(CLI::App& app, int& threads) {
  threads = 0;
  app.add_option("--threads", threads,
                 "CPU threads for the model (LibTorch and BLAS together; default: OMP_NUM_THREADS when set, "
                 "else " + std::to_string(available_cores()) + " = every available core)")
      ->check(CLI::NonNegativeNumber);
}

void apply_threads_option(int threads) {
  // No --threads: an OMP_NUM_THREADS the user set still decides (scripts and benchmarks rely on it); otherwise
  // every available core.
  if (threads <= 0)
    if (const char* env = std::getenv("OMP_NUM_THREADS")) threads = std::atoi(env);
  set_cpu_threads(threads);
}

}  // namespace moh
