// moh::vit::Evaluator, the public API for ImageNet-style evaluation of a MoH-ViT classifier (mirrors
// MoH-ViT/main.py --eval -> engine.py `evaluate`): worker threads that decode + preprocess while the model runs
// (bounded queue), top-1/top-5, per-class accuracy, per-image predictions, throughput, and a list of unreadable
// files (counted, not fatal); progress through a callback. Datasets come from vit/eval_dataset.h.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "common/dist/distributed.h"
#include "common/routes/stats.h"
#include "vit/classifier.h"
#include "vit/config.h"
#include "vit/eval_dataset.h"

namespace moh::vit {

struct EvalOptions {
  int batch_size = 64;
  int workers = 2;          // decode/preprocess threads (single-threaded each, beside the model's threads)
  int topk = 5;             // the "top-5" of the report (clipped to num_classes)
  bool progress = true;     // progress bar on stderr
  // Called after each batch with the images it consumed (decoded or not): multi-process progress.
  std::function<void(int64_t)> on_progress;
  // false: no error when not one image could be read (a shard of a multi-process run; checked after reducing).
  bool require_readable = true;
  // moh-eval --routes-stats: when set, every batch's gates are added here under the images' labels (a shard of a
  // multi-process run adds its own images; RouteClassStats::all_reduce sums them).
  RouteClassStats* routes = nullptr;
  // Pictures above this many pixels (from the header) are refused and counted as unreadable (Pillow's limit).
  int64_t max_image_pixels = kDefaultMaxImagePixels;
};

struct ClassStats {
  int64_t images = 0, top1 = 0, topk = 0;
};

struct EvalFailure {
  std::string path, error;
};

struct EvalResult {
  int64_t images = 0;  // images evaluated (decoded)
  int64_t failed = 0;  // images that could not be read/decoded (not counted in the accuracies)
  int64_t top1_correct = 0, topk_correct = 0;
  int topk = 5;
  std::vector<ClassStats> per_class;     // num_classes entries
  std::vector<int64_t> predictions;      // top-1 class per dataset sample, -1 for failed ones
  std::vector<EvalFailure> failures;     // sorted by path
  double seconds = 0;                    // wall time of the whole run
  double model_seconds = 0;              // time spent in the model (incl. host<->device copies)

  double top1() const { return images ? 100.0 * top1_correct / images : 0.0; }  // percent
  double topk_accuracy() const { return images ? 100.0 * topk_correct / images : 0.0; }
  double images_per_second() const { return seconds > 0 ? images / seconds : 0.0; }
};

// Throws moh::Error when the dataset is not empty and no image at all could be read (a wrong folder, a wrong
// format): accuracies of nothing would be meaningless. Some unreadable images are counted in `failed`.
EvalResult evaluate(Classifier& clf, const EvalDataset& ds, const EvalOptions& o);

// Per-class CSV (classes with at least one image): index, id, name, images, top-1/top-k correct and accuracy (%).
void write_per_class_csv(const std::string& path, const EvalResult& r, const Classifier& clf);
// Per-image CSV in dataset order: path, label, predicted top-1 (-1 and the error for unreadable images).
void write_predictions_csv(const std::string& path, const EvalDataset& ds, const EvalResult& r,
                           const Classifier& clf);

// The evaluation job as one object: a classifier, options and (optionally) a process group; run() evaluates a
// dataset on one process, or this rank's shard of it followed by the reduction (vit/evaluate_dist.h).
class Evaluator {
 public:
  Evaluator(Classifier& classifier, EvalOptions options, dist::Group* group = nullptr)
      : clf_(classifier), o_(std::move(options)), group_(group) {}
  EvalResult run(const EvalDataset& ds);
  const EvalOptions& options() const { return o_; }
  Classifier& classifier() { return clf_; }

 private:
  Classifier& clf_;
  EvalOptions o_;
  dist::Group* group_;
};

}  // namespace moh::vit
