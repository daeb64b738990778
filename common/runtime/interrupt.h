// Orderly interruption of long work by Ctrl-C (SIGINT) or SIGTERM. The handler only records the signal; long loops
// call throw_if_interrupted() (Progress::advance does), which throws moh::Interrupted, so destructors run and
// remove staging folders and temporary files: an interrupted app leaves nothing half-written behind. A second
// signal while the first is being handled ends the process at once (the default action).
#pragma once
#include <string>

#include "common/error.h"

namespace moh {

// Thrown when a handled signal arrived. Apps exit with 128 + signal (130 for SIGINT, 143 for SIGTERM).
class Interrupted : public Error {
 public:
  explicit Interrupted(int sig);
  int signal() const { return sig_; }

 private:
  int sig_;
};

// Installs the SIGINT / SIGTERM handlers (idempotent).
void install_interrupt_handlers();
// The signal number received so far, 0 when none.
int interrupt_signal();
// Throws moh::Interrupted when a handled signal has arrived.
void throw_if_interrupted();
// For tests: forget a recorded signal and re-arm the handlers.
void reset_interrupt_for_tests();

}  // namespace moh
