// moh-serve's counters and histograms, rendered as Prometheus text (exposition format 0.0.4) for GET /metrics:
// requests by route and status code, request latency, classify batch sizes and forward passes, generation queue
// length and images generated. Thread-safe; every HTTP thread and both workers write here.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace moh::serve {

// A cumulative histogram with fixed upper bounds (the +Inf bucket is implicit).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  // Lines "<name>_bucket{le=...}", "_sum", "_count" (with `labels` added inside the braces, may be empty).
  std::string render(const std::string& name, const std::string& labels = "") const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // one per bound + the +Inf bucket, not cumulative
  double sum_ = 0;
  uint64_t count_ = 0;
};

class Metrics {
 public:
  Metrics();
  void request(const std::string& route, int status, double seconds);  // seconds < 0: latency unknown
  void classify_batch(int64_t images);  // one forward pass over `images` inputs
  void images_generated(int64_t n);
  void job_finished(const std::string& state);
  // Gauges read at render time (queue lengths).
  void set_gauge(const std::string& name, const std::string& help, std::function<double()> read);

  int64_t forward_passes() const;
  std::string prometheus() const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::map<std::string, Histogram> latency_;  // per route
  Histogram batch_sizes_;
  int64_t forward_passes_ = 0, classified_images_ = 0, images_generated_ = 0;
  std::map<std::string, uint64_t> jobs_;
  std::vector<std::tuple<std::string, std::string, std::function<double()>>> gauges_;
};

}  // namespace moh::serve
