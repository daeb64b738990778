// The generation job queue and its worker (see job_queue.h).
#include "serve/job_queue.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <random>

#include "common/image/image_io.h"
#include "common/runtime/interrupt.h"
#include "common/runtime/threads.h"

namespace moh::serve {
namespace {

constexpr size_t kKeepFinished = 64;  // finished jobs remembered (their PNGs stay downloadable)

// Thrown from the sampler's step callback to stop a cancelled job at its next step.
struct JobCancelled : std::exception {
  const char* what() const noexcept override { return "cancelled"; }
};

std::string new_job_id(uint64_t serial) {
  static std::mutex mu;
  static std::mt19937_64 rng{std::random_device{}()};
  std::lock_guard<std::mutex> l(mu);
  char b[40];
  std::snprintf(b, sizeof b, "%llu-%012llx", static_cast<unsigned long long>(serial),
                static_cast<unsigned long long>(rng() & 0xffffffffffffULL));
  return b;
}

double seconds_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

const char* job_state_name(JobState s) {
  switch (s) {
    case JobState::kQueued: return "queued";
    case JobState::kRunning: return "running";
    case JobState::kDone: return "done";
    case JobState::kCancelled: return "cancelled";
    case JobState::kFailed: return "failed";
  }
  return "unknown";
}

nlohmann::json Job::status_json() const {
  std::lock_guard<std::mutex> l(mu);
  const auto now = std::chrono::steady_clock::now();
  nlohmann::json j{{"id", id},
                   {"state", job_state_name(state)},
                   {"steps_done", steps_done},
                   {"steps_total", steps_total},
                   {"progress", steps_total > 0 ? double(steps_done) / double(steps_total) : 0.0},
                   {"num_images", request.params.labels.size()},
                   {"labels", request.params.labels}};
  if (state == JobState::kRunning) {
    const double elapsed = seconds_between(started, now);
    j["elapsed_seconds"] = elapsed;
    if (steps_done > 0) j["eta_seconds"] = elapsed / double(steps_done) * double(steps_total - steps_done);
    else j["eta_seconds"] = nullptr;
  } else if (state == JobState::kQueued) {
    j["eta_seconds"] = nullptr;
  } else {
    j["eta_seconds"] = 0.0;
    if (started.time_since_epoch().count()) j["elapsed_seconds"] = seconds_between(started, finished);
  }
  if (!error.empty()) j["error"] = error;
  if (state == JobState::kDone) {
    nlohmann::json images = nlohmann::json::array();
    for (size_t k = 0; k < pngs.size(); ++k)
      images.push_back({{"url", "/v1/jobs/" + id + "/images/" + std::to_string(k) + ".png"}, {"file", files[k]}});
    j["images"] = images;
    j["sidecar"] = "/v1/jobs/" + id + "/generation.json";
  }
  return j;
}

JobQueue::JobQueue(dit::Generator& gen, int max_queue, Metrics& metrics)
    : gen_(gen), max_queue_(static_cast<size_t>(std::max(1, max_queue))), metrics_(metrics),
      threads_(cpu_threads()),
      worker_([this] { run(); }) {}

JobQueue::~JobQueue() { stop(); }

std::shared_ptr<Job> JobQueue::submit(JobRequest r) {
  auto job = std::make_shared<Job>();
  const auto& p = r.params;
  const int64_t n = static_cast<int64_t>(p.labels.size());
  job->steps_total = (n + p.batch_size - 1) / p.batch_size * p.steps;
  job->request = std::move(r);
  job->created = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> l(mu_);
    MOH_CHECK(!stopping_, "the server is shutting down");
    const size_t pending = queue_.size() + (running_ ? 1 : 0);
    if (pending >= max_queue_)
      throw QueueFull("the generation queue is full (" + std::to_string(pending) + " jobs queued or running, " +
                      "--max-queue " + std::to_string(max_queue_) + "); try again later");
    job->id = new_job_id(next_id_++);
    jobs_[job->id] = job;
    queue_.push_back(job);
  }
  cv_.notify_all();
  return job;
}

std::shared_ptr<Job> JobQueue::find(const std::string& id) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = jobs_.find(id);
  return it == jobs_.end() ? nullptr : it->second;
}

bool JobQueue::cancel(const std::string& id) {
  std::shared_ptr<Job> job;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return false;
    job = it->second;
    auto q = std::find(queue_.begin(), queue_.end(), job);
    if (q != queue_.end()) {  // never started: cancelled now
      queue_.erase(q);
      std::lock_guard<std::mutex> jl(job->mu);
      job->state = JobState::kCancelled;
      job->finished = std::chrono::steady_clock::now();
      finished_order_.push_back(job->id);
      metrics_.job_finished("cancelled");
      return true;
    }
  }
  job->cancel_requested = true;  // a running job stops at its next step; a finished one is left as it is
  return true;
}

void JobQueue::cancel_all() {
  std::vector<std::string> ids;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& j : queue_) ids.push_back(j->id);
    if (running_) running_->cancel_requested = true;
  }
  for (const auto& id : ids) cancel(id);
}

void JobQueue::stop() {
  cancel_all();
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

size_t JobQueue::pending() const {
  std::lock_guard<std::mutex> l(mu_);
  return queue_.size() + (running_ ? 1 : 0);
}

void JobQueue::run() {
  set_cpu_threads(threads_);  // OpenMP's team size is per thread: give this worker the app's setting
  for (;;) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = queue_.front();
      queue_.pop_front();
      running_ = job;
    }
    run_job(*job);
    {
      std::lock_guard<std::mutex> l(mu_);
      running_.reset();
      finished_order_.push_back(job->id);
      while (finished_order_.size() > kKeepFinished) {
        jobs_.erase(finished_order_.front());
        finished_order_.pop_front();
      }
    }
  }
}

void JobQueue::run_job(Job& job) {
  {
    std::lock_guard<std::mutex> l(job.mu);
    job.state = JobState::kRunning;
    job.started = std::chrono::steady_clock::now();
  }
  auto p = job.request.params;
  p.progress = false;
  p.on_x0 = [&job](const torch::Tensor& x0) {
    auto first = x0.slice(0, 0, 1).to(torch::kCPU, torch::kFloat32).clone();  // [1, C, L, L]
    std::lock_guard<std::mutex> l(job.mu);
    job.x0 = first;
  };
  p.on_step = [&job](int64_t) {
    {
      std::lock_guard<std::mutex> l(job.mu);
      ++job.steps_done;
    }
    if (job.cancel_requested) throw JobCancelled();
  };
  std::vector<std::vector<uint8_t>> pngs;
  std::vector<std::string> files;
  JobState final_state = JobState::kDone;
  std::string error;
  nlohmann::json sidecar;
  try {
    if (job.cancel_requested) throw JobCancelled();
    const auto stats = gen_.generate(p, [&](const dit::GeneratedBatch& b) {
      const auto& u8 = b.images_u8;  // [b, H, W, 3]
      for (int64_t i = 0; i < u8.size(0); ++i) {
        // moh-generate's bytes and names (dit/generation_output.cpp GenerationWriter::add)
        pngs.push_back(encode_png_memory(image_from_hwc_tensor(u8[i])));
        char prefix[32];
        std::snprintf(prefix, sizeof prefix, "%06lld_", static_cast<long long>(b.first_index + i));
        files.push_back(prefix + gen_.file_stem(b.labels.at(i)) + ".png");
      }
      metrics_.images_generated(u8.size(0));
    });
    // The sidecar moh-generate writes, with the server's tool name.
    sidecar = gen_.generation_sidecar("moh-serve", p, job.request.classes, job.request.num_per_class, stats);
    // File names, not the server's paths: a response tells the client nothing about the server's folders.
    for (const char* key : {"weights", "vae"})
      if (sidecar.contains(key) && sidecar[key].is_string())
        sidecar[key] = std::filesystem::path(sidecar[key].get<std::string>()).filename().string();
    auto listed = files;  // as GenerationWriter::commit lists them: the PNGs, then the sidecar itself
    listed.push_back("generation.json");
    sidecar["files"] = listed;
  } catch (const JobCancelled&) {
    final_state = JobState::kCancelled;
  } catch (const Interrupted&) {  // SIGTERM / Ctrl-C while running: the server is going down
    final_state = JobState::kCancelled;
  } catch (const std::exception& e) {
    final_state = JobState::kFailed;
    error = e.what();
  }
  std::lock_guard<std::mutex> l(job.mu);
  job.state = final_state;
  job.error = error;
  job.finished = std::chrono::steady_clock::now();
  if (final_state == JobState::kDone) {
    job.pngs = std::move(pngs);
    job.files = std::move(files);
    job.sidecar = std::move(sidecar);
  }
  metrics_.job_finished(job_state_name(final_state));
}

std::vector<uint8_t> JobQueue::preview_png(const Job& job) {
  torch::Tensor x0;
  {
    std::lock_guard<std::mutex> l(job.mu);
    x0 = job.x0;
  }
  if (!x0.defined()) return {};
  torch::NoGradGuard no_grad;
  torch::Tensor images = x0;  // pixel-space models: x_0 is the picture in [-1, 1]
  if (auto* vae = gen_.vae()) {
    std::lock_guard<std::mutex> l(vae_mu_);
    const auto& w = (*vae)->post_quant_conv->weight;
    images = (*vae)->decode(x0.to(w.device(), w.scalar_type())).to(torch::kCPU, torch::kFloat32);
  }
  auto u8 = dit::quantize_images(images);  // [1, H, W, C]
  if (u8.size(3) == 1) u8 = u8.expand({-1, -1, -1, 3}).contiguous();
  return encode_png_memory(image_from_hwc_tensor(u8[0]));
}

}  // namespace moh::serve
