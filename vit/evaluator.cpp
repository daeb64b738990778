// ImageNet-style evaluation (MoH-ViT/engine.py `evaluate` + datasets.py ImageFolder, timm `accuracy`): decode and
// preprocess in worker threads feeding a bounded queue while the calling thread runs the model.
#include "vit/evaluator.h"


#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <exception>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "common/io/atomic_file.h"
#include "common/io/csv.h"
#include "common/error.h"
#include "common/datasets/imagenet.h"
#include "common/dist/distributed.h"
#include "vit/evaluate_dist.h"
#include "vit/tar_stream.h"
#include "common/runtime/progress.h"
#include "common/runtime/threads.h"

namespace moh::vit {
namespace fs = std::filesystem;


// ---------------------------------------------------------------------------------------------- evaluation
namespace {

// One preprocessed batch: the decoded samples' inputs and dataset indices, plus the ones that failed.
struct Batch {
  torch::Tensor input;  // [b, 3, S, S] float32 (pinned when the model runs on CUDA); undefined when b == 0
  std::vector<int64_t> samples;
  std::vector<EvalFailure> failures;
  std::vector<int64_t> failed_samples;
  std::exception_ptr error;  // an unexpected worker failure, re-thrown on the calling thread
};

// Bounded multi-producer single-consumer queue: workers block while `capacity` batches wait for the model.
class BatchQueue {
 public:
  explicit BatchQueue(size_t capacity) : capacity_(capacity) {}
  void push(Batch b) {
    std::unique_lock<std::mutex> lk(m_);
    not_full_.wait(lk, [&] { return q_.size() < capacity_ || closed_; });
    q_.push_back(std::move(b));
    not_empty_.notify_one();
  }
  Batch pop() {
    std::unique_lock<std::mutex> lk(m_);
    not_empty_.wait(lk, [&] { return !q_.empty(); });
    Batch b = std::move(q_.front());
    q_.pop_front();
    not_full_.notify_one();
    return b;
  }
  void close() {  // lets blocked producers finish when the consumer stops early
    std::lock_guard<std::mutex> lk(m_);
    closed_ = true;
    not_full_.notify_all();
  }

 private:
  size_t capacity_;
  bool closed_ = false;
  std::deque<Batch> q_;
  std::mutex m_;
  std::condition_variable not_full_, not_empty_;
};

}  // namespace

EvalResult evaluate(Classifier& clf, const EvalDataset& ds, const EvalOptions& o) {
  MOH_CHECK(o.batch_size >= 1, "batch size must be >= 1 (got ", o.batch_size, ")");
  MOH_CHECK(o.workers >= 1, "workers must be >= 1 (got ", o.workers, ")");
  MOH_CHECK(o.topk >= 1, "top-k must be >= 1 (got ", o.topk, ")");
  const auto& cfg = clf.config();
  MOH_CHECK(cfg.num_classes > 0, "model '", cfg.name, "' has no classification head (num_classes 0)");
  for (const auto& s : ds.samples)
    MOH_CHECK(!s.error.empty() || (s.label >= 0 && s.label < cfg.num_classes), "sample '", s.path, "' has label ",
              s.label, " outside the model's ", cfg.num_classes, " classes");

  const auto n = (int64_t)ds.samples.size();
  const int64_t num_batches = (n + o.batch_size - 1) / o.batch_size;
  const bool pin = clf.device().is_cuda();
  EvalResult r;
  r.topk = (int)std::min<int64_t>(o.topk, cfg.num_classes);
  r.per_class.assign(cfg.num_classes, {});
  r.predictions.assign(n, -1);
  const auto t0 = std::chrono::steady_clock::now();

  BatchQueue queue(2 * (size_t)o.workers);
  std::atomic<int64_t> next{0};
  MOH_CHECK(o.max_image_pixels > 0, "the image pixel limit must be positive (got ", o.max_image_pixels, ")");
  ImageDecodeOptions decode;
  decode.max_pixels = o.max_image_pixels;
  auto worker = [&]() {
    use_one_cpu_thread_here();  // decoding must not take cores from the model's thread team
    for (int64_t b; (b = next.fetch_add(1)) < num_batches;) {
      Batch batch;
      try {
        std::vector<torch::Tensor> inputs;
        const int64_t first = b * o.batch_size, last = std::min(n, (b + 1) * o.batch_size);
        if (ds.images_u8.defined()) {  // in-memory 28x28 pictures: one tensor op per batch
          batch.input = clf.preprocess_gray28(ds.images_u8.narrow(0, first, last - first));
          for (int64_t i = first; i < last; ++i) batch.samples.push_back(i);
          queue.push(std::move(batch));
          continue;
        }
        for (int64_t i = first; i < last; ++i) {
          try {
            const auto& s = ds.samples[i];
            MOH_CHECK(s.error.empty(), s.error);  // known unreadable at listing (a truncated tar member)
            if (s.archive.empty()) {
              inputs.push_back(clf.preprocess(decode_image_file(s.path, decode)));
            } else {  // a WebDataset member: its bytes straight from the shard
              const auto bytes = read_file_range(s.archive, s.offset, s.size, "tar member '" + s.path + "'");
              inputs.push_back(clf.preprocess(decode_image_memory(bytes.data(), bytes.size(), s.path, decode)));
            }
            batch.samples.push_back(i);
          } catch (const std::exception& e) {
            batch.failures.push_back({ds.samples[i].path, e.what()});
            batch.failed_samples.push_back(i);
          }
        }
        if (!inputs.empty()) {
          batch.input = torch::stack(inputs);  // [b, 3, S, S]
          if (pin) batch.input = batch.input.pin_memory();
        }
      } catch (...) {
        batch.error = std::current_exception();
      }
      queue.push(std::move(batch));
    }
  };
  std::vector<std::thread> threads;
  for (int w = 0; w < std::min<int64_t>(o.workers, std::max<int64_t>(num_batches, 1)); ++w) threads.emplace_back(worker);
  auto join_all = [&]() {
    queue.close();
    next.store(num_batches);
    for (auto& t : threads)
      if (t.joinable()) t.join();
  };

  Progress progress("eval", n, "img", o.progress);
  try {
    for (int64_t done = 0; done < num_batches; ++done) {
      Batch batch = queue.pop();
      if (batch.error) std::rethrow_exception(batch.error);
      for (size_t j = 0; j < batch.failures.size(); ++j) r.failures.push_back(batch.failures[j]);
      r.failed += (int64_t)batch.failures.size();
      if (batch.input.defined()) {
        const auto m0 = std::chrono::steady_clock::now();
        std::optional<ScopedGateRecorder<TransNeXt>> routes;  // --routes-stats: gates under this batch's labels
        if (o.routes) {
          std::vector<int64_t> labels;
          for (auto i : batch.samples) labels.push_back(ds.samples[i].label);
          routes.emplace(clf.model(), o.routes->recorder(std::move(labels)));
        }
        auto logits = clf.logits(batch.input);  // [b, classes] float32 CPU
        routes.reset();
        r.model_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - m0).count();
        auto top = std::get<1>(torch::topk(logits, r.topk, -1));  // [b, k]
        auto acc = top.accessor<int64_t, 2>();
        for (size_t j = 0; j < batch.samples.size(); ++j) {
          const auto i = batch.samples[j];
          const auto label = ds.samples[i].label;
          bool in_topk = false;
          for (int kk = 0; kk < r.topk; ++kk) in_topk = in_topk || acc[j][kk] == label;
          const bool top1 = acc[j][0] == label;
          r.predictions[i] = acc[j][0];
          auto& cs = r.per_class[label];
          cs.images++;
          cs.top1 += top1;
          cs.topk += in_topk;
          r.top1_correct += top1;
          r.topk_correct += in_topk;
          r.images++;
        }
      }
      progress.advance((int64_t)(batch.samples.size() + batch.failures.size()));
      if (o.on_progress) o.on_progress((int64_t)(batch.samples.size() + batch.failures.size()));
      char suffix[64];
      std::snprintf(suffix, sizeof suffix, "top1 %.2f%%", r.top1());
      progress.set_suffix(suffix);
    }
  } catch (...) {
    join_all();
    throw;
  }
  join_all();
  progress.finish();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::sort(r.failures.begin(), r.failures.end(), [](auto& a, auto& b) { return a.path < b.path; });
  MOH_CHECK(!o.require_readable || n == 0 || r.images > 0, "none of the ", n, " images of '", ds.root,
            "' could be read (first error: ",
            r.failures.empty() ? std::string("?") : r.failures.front().path + ": " + r.failures.front().error,
            "); check the dataset folder and its format");
  return r;
}

// ---------------------------------------------------------------------------------------------- reporting

void write_per_class_csv(const std::string& path, const EvalResult& r, const Classifier& clf) {
  std::ostringstream os;
  os << "class_index,class_id,class_name,images,top1_correct,top" << r.topk << "_correct,top1_acc,top" << r.topk
     << "_acc\n";
  const bool imagenet = clf.config().num_classes == 1000 && clf.config().class_names.empty();
  for (size_t c = 0; c < r.per_class.size(); ++c) {
    const auto& s = r.per_class[c];
    if (s.images == 0) continue;
    char acc[64];
    std::snprintf(acc, sizeof acc, "%.4f,%.4f", 100.0 * s.top1 / s.images, 100.0 * s.topk / s.images);
    os << c << "," << (imagenet ? imagenet_classes()[c].wnid : std::to_string(c)) << ","
       << csv_field(clf.label((int64_t)c)) << "," << s.images << "," << s.top1 << "," << s.topk << "," << acc << "\n";
  }
  write_file_atomic(path, os.str());
}

void write_predictions_csv(const std::string& path, const EvalDataset& ds, const EvalResult& r,
                           const Classifier& clf) {
  MOH_CHECK(r.predictions.size() == ds.samples.size(), "predictions for ", r.predictions.size(),
            " images, but the dataset has ", ds.samples.size(), " (pass the dataset that was evaluated)");
  std::map<std::string, std::string> errors;
  for (const auto& f : r.failures) errors[f.path] = f.error;
  std::ostringstream os;
  os << "path,label,label_name,predicted,predicted_name,correct,error\n";
  for (size_t i = 0; i < ds.samples.size(); ++i) {
    const auto& s = ds.samples[i];
    const int64_t p = r.predictions[i];
    const auto err = errors.find(s.path);
    os << csv_field(s.path) << "," << s.label << "," << csv_field(s.label >= 0 ? clf.label(s.label) : "") << ","
       << p << ","
       << csv_field(p >= 0 ? clf.label(p) : std::string()) << "," << (p >= 0 ? (p == s.label ? "1" : "0") : "")
       << "," << csv_field(err == errors.end() ? std::string() : err->second) << "\n";
  }
  write_file_atomic(path, os.str());
}

EvalResult Evaluator::run(const EvalDataset& ds) {
  if (group_ && group_->multi()) return evaluate_sharded(clf_, ds, o_, *group_);
  return evaluate(clf_, ds, o_);
}

}  // namespace moh::vit
