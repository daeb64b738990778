// Generation jobs of POST /v1/generate: one work queue per device (a single worker thread runs the jobs one after
// another on the generator's device), bounded by --max-queue (queued + running; submit() throws QueueFull, which
// the server answers with 429). A job records its state (queued, running, done, cancelled, failed), progress,
// ETA, the latest predicted x_0 (for the live preview) and, when done, its PNGs and the JSON sidecar moh-generate
// writes. Cancelling takes effect at the job's next sampler step.
#pragma once
#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/error.h"
#include "dit/generator.h"
#include "serve/metrics.h"

namespace moh::serve {

class QueueFull : public Error {
 public:
  using Error::Error;
};

enum class JobState { kQueued, kRunning, kDone, kCancelled, kFailed };
const char* job_state_name(JobState s);

struct JobRequest {
  dit::GenerateParams params;     // labels filled, progress off
  std::vector<int64_t> classes;   // the distinct requested classes (sidecar)
  int64_t num_per_class = 1;
};

struct Job {
  std::string id;
  JobRequest request;
  mutable std::mutex mu;
  JobState state = JobState::kQueued;
  int64_t steps_done = 0, steps_total = 0;
  std::chrono::steady_clock::time_point created, started, finished;
  std::string error;
  std::vector<std::vector<uint8_t>> pngs;  // done: one PNG per image, in order
  std::vector<std::string> files;          // moh-generate's file name of each PNG
  nlohmann::json sidecar;                  // done: moh-generate's generation.json
  torch::Tensor x0;                        // latest predicted x_0 of the current batch's first image [1, C, L, L]
  std::atomic<bool> cancel_requested{false};

  nlohmann::json status_json() const;  // state, progress, ETA, image count, error
};

class JobQueue {
 public:
  JobQueue(dit::Generator& gen, int max_queue, Metrics& metrics);
  ~JobQueue();
  JobQueue(const JobQueue&) = delete;
  JobQueue& operator=(const JobQueue&) = delete;

  std::shared_ptr<Job> submit(JobRequest r);  // throws QueueFull when --max-queue jobs are queued or running
  std::shared_ptr<Job> find(const std::string& id) const;  // null when unknown (or long finished and forgotten)
  bool cancel(const std::string& id);  // false when unknown; a finished job stays as it is
  void cancel_all();
  void stop();  // cancels everything and joins the worker
  size_t pending() const;  // queued + running

  // The preview PNG of a job's latest x_0 (decoded by the VAE for latent models); empty when no step ran yet.
  std::vector<uint8_t> preview_png(const Job& job);

 private:
  void run();
  void run_job(Job& job);

  dit::Generator& gen_;
  const size_t max_queue_;
  Metrics& metrics_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  std::map<std::string, std::shared_ptr<Job>> jobs_;  // every job still remembered
  std::deque<std::string> finished_order_;            // oldest finished first (forgotten beyond kKeepFinished)
  std::shared_ptr<Job> running_;
  uint64_t next_id_ = 1;
  bool stopping_ = false;
  std::mutex vae_mu_;  // preview decodes share the VAE with the worker's decode
  const int threads_;  // the CPU threads of the thread that made this (the app's --threads), for the worker
  std::thread worker_;
};

}  // namespace moh::serve
