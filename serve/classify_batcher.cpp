// The classify batching worker (see classify_batcher.h).
#include "serve/classify_batcher.h"

#include <algorithm>

#include "common/error.h"
#include "common/runtime/threads.h"

namespace moh::serve {

ClassifyBatcher::ClassifyBatcher(vit::Classifier& clf, int max_batch, int window_ms, Metrics& metrics)
    : clf_(clf),
      max_batch_(static_cast<size_t>(std::max(1, max_batch))),
      window_(std::max(0, window_ms)),
      metrics_(metrics),
      threads_(cpu_threads()),
      worker_([this] { run(); }) {}

ClassifyBatcher::~ClassifyBatcher() { stop(); }

std::vector<std::vector<vit::ClassPrediction>> ClassifyBatcher::classify(std::vector<torch::Tensor> inputs, int k) {
  auto p = std::make_unique<Pending>();
  p->inputs = std::move(inputs);
  p->k = k;
  auto fut = p->done.get_future();
  {
    std::lock_guard<std::mutex> l(mu_);
    MOH_CHECK(!stopping_, "the server is shutting down");
    queue_.push_back(std::move(p));
  }
  cv_.notify_all();
  return fut.get();
}

void ClassifyBatcher::stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void ClassifyBatcher::run() {
  set_cpu_threads(threads_);  // OpenMP's team size is per thread: give this worker the app's setting
  for (;;) {
    std::vector<std::unique_ptr<Pending>> batch;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left
      // The window starts when the first request of this batch is seen: a lone request waits at most window_.
      const auto deadline = std::chrono::steady_clock::now() + window_;
      auto queued_inputs = [&] {
        size_t n = 0;
        for (const auto& p : queue_) n += p->inputs.size();
        return n;
      };
      cv_.wait_until(l, deadline, [&] { return stopping_ || queued_inputs() >= max_batch_; });
      // Whole requests in arrival order while they fit; the first one always goes (even when larger).
      size_t n = 0;
      while (!queue_.empty() && (batch.empty() || n + queue_.front()->inputs.size() <= max_batch_)) {
        n += queue_.front()->inputs.size();
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    try {
      std::vector<torch::Tensor> inputs;
      int k = 1;
      for (const auto& p : batch) {
        inputs.insert(inputs.end(), p->inputs.begin(), p->inputs.end());
        k = std::max(k, p->k);
      }
      auto top = clf_.top_k(clf_.logits(torch::stack(inputs)), k);  // [n, C, S, S] -> top-k rows
      metrics_.classify_batch(static_cast<int64_t>(inputs.size()));
      size_t row = 0;
      for (auto& p : batch) {
        std::vector<std::vector<vit::ClassPrediction>> mine;
        for (size_t i = 0; i < p->inputs.size(); ++i, ++row) {
          auto r = std::move(top[row]);
          if (r.size() > static_cast<size_t>(p->k)) r.resize(p->k);
          mine.push_back(std::move(r));
        }
        p->done.set_value(std::move(mine));
      }
    } catch (...) {
      for (auto& p : batch) p->done.set_exception(std::current_exception());
    }
  }
}

}  // namespace moh::serve
