// Aggregated job progress over a c10d counter (see progress.h).
#include "common/dist/progress.h"

namespace moh::dist {

JobProgress::JobProgress(Group& group, std::string key, std::string label, int64_t total, std::string unit,
                         bool enabled)
    : g_(group),
      key_(std::move(key)),
      total_(total),
      bar_(std::move(label), total, std::move(unit), enabled && group.is_main()),
      last_push_(std::chrono::steady_clock::now()) {}

void JobProgress::push() {
  last_push_ = std::chrono::steady_clock::now();
  const int64_t all = g_.counter_add(key_, pending_);
  pending_ = 0;
  if (all > shown_) {
    bar_.advance(all - shown_);
    shown_ = all;
  }
}

void JobProgress::advance(int64_t n) {
  pending_ += n;
  if (!g_.multi()) {
    bar_.advance(n);  // also the Ctrl-C check
    shown_ += n;
    pending_ = 0;
    return;
  }
  bar_.advance(0);  // Ctrl-C check
  if (std::chrono::steady_clock::now() - last_push_ > std::chrono::milliseconds(250)) {
    g_.check_peers();
    push();
  }
}

void JobProgress::finish_and_wait(const std::string& what) {
  if (g_.multi()) {
    push();
    g_.wait_counter(key_, total_, what, [&](int64_t all) {
      if (all > shown_) {
        bar_.advance(all - shown_);
        shown_ = all;
      }
    });
  }
  bar_.finish();
}

}  // namespace moh::dist
