// Dynamic batching for POST /v1/classify: HTTP threads hand in preprocessed inputs and block; one worker thread
// (the classifier's work queue) collects what arrives within --batch-window-ms of the first waiting request, up
// to --max-batch inputs, runs ONE forward pass over them and answers every request from its rows.
#pragma once
#include <torch/torch.h>

#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "serve/metrics.h"
#include "vit/classifier.h"

namespace moh::serve {

class ClassifyBatcher {
 public:
  ClassifyBatcher(vit::Classifier& clf, int max_batch, int window_ms, Metrics& metrics);
  ~ClassifyBatcher();
  ClassifyBatcher(const ClassifyBatcher&) = delete;
  ClassifyBatcher& operator=(const ClassifyBatcher&) = delete;

  // inputs: Classifier::preprocess outputs [in_chans, S, S] -> top-k per input, highest first. Blocks until the
  // batch holding them has run; rethrows its failure. Throws moh::Error after stop().
  std::vector<std::vector<vit::ClassPrediction>> classify(std::vector<torch::Tensor> inputs, int k);
  void stop();  // answers waiting requests with an error and joins the worker

 private:
  struct Pending {
    std::vector<torch::Tensor> inputs;
    int k = 5;
    std::promise<std::vector<std::vector<vit::ClassPrediction>>> done;
  };
  void run();

  vit::Classifier& clf_;
  const size_t max_batch_;
  const std::chrono::milliseconds window_;
  Metrics& metrics_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Pending>> queue_;
  bool stopping_ = false;
  const int threads_;  // the CPU threads of the thread that made this (the app's --threads), for the worker
  std::thread worker_;
};

}  // namespace moh::serve
