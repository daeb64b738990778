// Console progress bar for long work: "label [#####.....] 120/250 steps  3.4 steps/s  ETA 0:38".
// Redraws on stderr at most ~10 times a second when stderr is a terminal, otherwise prints a line every ~10 %.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace moh {

class Progress {
 public:
  Progress(std::string label, int64_t total, std::string unit = "it", bool enabled = true);
  ~Progress();
  void advance(int64_t n = 1);
  void set_suffix(const std::string& s) { suffix_ = s; }  // e.g. "loss 0.123"
  void finish();
  double rate() const;  // units per second so far

 private:
  void draw(bool final);
  std::string label_, unit_, suffix_;
  int64_t total_, done_ = 0;
  bool enabled_, tty_, finished_ = false;
  int last_decile_ = -1;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

std::string format_duration(double seconds);  // "1:02:03" / "2:03"

}  // namespace moh
