// Console progress bar (see progress.h). No official counterpart.
#include "common/runtime/progress.h"

#include "common/runtime/interrupt.h"

#include <unistd.h>

#include <cstdio>

namespace moh {

std::string format_duration(double s) {
  if (!(s >= 0) || s > 1e7) return "?";
  const long t = static_cast<long>(s + 0.5);
  char buf[32];
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
  return buf;
}

Progress::Progress(std::string label, int64_t total, std::string unit, bool enabled)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), enabled_(enabled),
      tty_(::isatty(STDERR_FILENO)), start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

Progress::~Progress() { finish(); }

double Progress::rate() const {
  const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  return dt > 0 ? done_ / dt : 0.0;
}

void Progress::advance(int64_t n) {
  throw_if_interrupted();  // every long loop reports progress: this is where Ctrl-C / SIGTERM take effect
  done_ += n;
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (tty_) {
    if (now - last_draw_ > std::chrono::milliseconds(100) || done_ >= total_) draw(false);
  } else if (total_ > 0) {
    const int decile = static_cast<int>(done_ * 10 / total_);
    if (decile != last_decile_) {
      last_decile_ = decile;
      draw(false);
    }
  }
}

void Progress::draw(bool final) {
  last_draw_ = std::chrono::steady_clock::now();
  const double r = rate();
  const double eta = r > 0 && total_ > done_ ? (total_ - done_) / r : 0.0;
  const double elapsed = std::chrono::duration<double>(last_draw_ - start_).count();
  constexpr int kWidth = 24;
  const int filled = total_ > 0 ? static_cast<int>(kWidth * std::min<int64_t>(done_, total_) / total_) : 0;
  std::string bar(filled, '#');
  bar += std::string(kWidth - filled, '.');
  std::fprintf(stderr, "%s%s [%s] %lld/%lld %s  %.2f %s/s  %s %s%s%s%s%s", tty_ ? "\r" : "", label_.c_str(),
               bar.c_str(), (long long)done_, (long long)total_, unit_.c_str(), r, unit_.c_str(),
               final ? "took" : "ETA", format_duration(final ? elapsed : eta).c_str(), suffix_.empty() ? "" : "  ",
               suffix_.c_str(), tty_ ? "\033[K" : "", (!tty_ || final) ? "\n" : "");
  std::fflush(stderr);
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (enabled_ && done_ > 0) draw(true);
}

}  // namespace moh
