// SIGINT / SIGTERM -> an atomic flag polled by long loops (see interrupt.h).
#include "common/runtime/interrupt.h"

#include <atomic>
#include <csignal>
#include <cstring>

namespace moh {
namespace {

std::atomic<int> g_signal{0};

extern "C" void on_signal(int sig) {
  g_signal.store(sig);
  // The next signal gets the default action: a user who presses Ctrl-C twice means it.
  std::signal(sig, SIG_DFL);
}

std::string signal_name(int sig) {
  if (sig == SIGINT) return "SIGINT (Ctrl-C)";
  if (sig == SIGTERM) return "SIGTERM";
  return "signal " + std::to_string(sig);
}

}  // namespace

Interrupted::Interrupted(int sig)
    : Error("interrupted by " + signal_name(sig) + "; partial output was removed"), sig_(sig) {}

void install_interrupt_handlers() {
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // blocking reads/writes resume; the loops notice the flag
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

int interrupt_signal() { return g_signal.load(); }

void throw_if_interrupted() {
  const int sig = g_signal.load();
  if (sig != 0) throw Interrupted(sig);
}

void reset_interrupt_for_tests() {
  g_signal.store(0);
  install_interrupt_handlers();
}

}  // namespace moh
