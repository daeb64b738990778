// moh-serve's HTTP layer on cpp-httplib: options, routes (classify, generate + jobs, models, health, metrics, the
// page), bearer-token auth, body limits, JSON errors and orderly shutdown. The models are loaded by the caller
// (apps/moh-serve.cpp) and only borrowed here; batching lives in classify_batcher.h, jobs in job_queue.h,
// counters in metrics.h and the page in index_html.h.
#pragma once
#include <memory>
#include <string>

#include "dit/generator.h"
#include "vit/classifier.h"

namespace moh::serve {

struct ServeOptions {
  std::string host = "127.0.0.1";  // loopback unless asked otherwise
  int port = 8080;                 // 0: pick a free port (printed)
  std::string token;               // non-empty: "Authorization: Bearer <token>" on everything but /healthz
  double max_upload_mb = 16;       // larger bodies get 413
  int max_batch = 16;              // classify inputs per forward pass
  int batch_window_ms = 5;         // how long the first waiting classify request waits for company
  int max_queue = 8;               // generation jobs queued or running; more get 429
  int max_images_per_job = 16;     // "n" (times the classes asked) of one generate request
  int max_topk = 100;              // ?topk= upper bound (also clipped to the class count)
  int http_threads = 32;           // connections served at once (batching needs concurrent requests)
  std::string vit_weights, dit_weights;  // for /v1/models and the classify JSON "weights" field (file names only)
};

class Server {
 public:
  // clf / gen may be null (that half of the API answers 404 with a JSON error); they must outlive the server.
  Server(ServeOptions o, vit::Classifier* clf, dit::Generator* gen);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  int bind();   // binds host:port (port 0 = any free one); returns the port; throws moh::Error when it cannot
  void run();   // serves until shutdown(); returns afterwards
  // Stops accepting and cancels queued and running jobs (from any thread; repeatable). Before run() has started
  // listening it cannot stop it yet: call it again until run() returns.
  void shutdown();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace moh::serve
