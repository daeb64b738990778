// ImageNet-style evaluation of a MoH-ViT classifier (mirrors MoH-ViT/main.py --eval -> engine.py `evaluate` with
// datasets.py's ImageFolder): dataset listing (ImageFolder `val/<class>/*.JPEG`, or a flat folder + label file),
// worker threads that decode + preprocess while the model runs (bounded queue), top-1/top-5, per-class accuracy,
// throughput, and a list of unreadable files (counted, not fatal).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "vit/classify.h"
#include "vit/config.h"

namespace moh::vit {

struct EvalSample {
  std::string path;
  int64_t label = -1;
};

struct EvalDataset {
  std::string root;
  std::string layout;   // "imagefolder", "labels-file" or "idx"
  std::string mapping;  // how names became class indices (e.g. "imagenet wnid", "sorted folder order")
  std::vector<EvalSample> samples;
  // layout "idx": the pictures themselves, [N, 28, 28] uint8 (sample i is images_u8[i]; its path names the file
  // and index). Undefined for folder datasets, whose samples are decoded from their paths.
  torch::Tensor images_u8;
};

// Maps a class folder name / label-file label to a model class index, or -1 when it does not know it:
// an integer in [0, num_classes); a config class name; for 1000-class models an ImageNet wnid/index/name.
using ClassResolver = std::function<int64_t(const std::string&)>;
ClassResolver class_resolver(const ViTConfig& cfg);

// ImageFolder layout: root/<class>/<images> (root/val/<class>/... when root/val exists). When every folder name
// resolves, that index is used; otherwise classes are numbered in sorted folder order, as torchvision does.
EvalDataset list_imagefolder(const std::string& root, const ClassResolver& resolve, int64_t num_classes);
// Flat folder + label file: one "relative/path label" per line (label: index, wnid or class name; '#' comments).
EvalDataset list_labeled_folder(const std::string& root, const std::string& labels_file, const ClassResolver& resolve);
// IDX files (MNIST / Fashion-MNIST layout: <split>-images-idx3-ubyte[.gz] + labels, split train or t10k/test),
// read whole into memory.
EvalDataset list_idx_dataset(const std::string& root, const std::string& split);
// True when `root` holds IDX image files (so list_eval_dataset reads it as an IDX dataset).
bool has_idx_files(const std::string& root);
// Dispatch: IDX files in root -> list_idx_dataset(split), labels_file given -> list_labeled_folder, else
// list_imagefolder.
EvalDataset list_eval_dataset(const std::string& root, const std::string& labels_file, const ViTConfig& cfg,
                              const std::string& split = "test");

// The class index an all-digit folder or label names, or -1 when it is not all digits. Throws moh::Error for a
// number too long to be a class index (rather than letting std::stoll overflow).
int64_t class_index_from_digits(const std::string& name);

// `limit` evenly spaced samples (all when limit <= 0 or >= size), so a quick run still covers every class.
EvalDataset subset_evenly(const EvalDataset& ds, int64_t limit);

struct EvalOptions {
  int batch_size = 64;
  int workers = 2;          // decode/preprocess threads (single-threaded each, beside the model's threads)
  int topk = 5;             // the "top-5" of the report (clipped to num_classes)
  bool progress = true;     // progress bar on stderr
  // Called after each batch with the images it consumed (decoded or not): multi-process progress.
  std::function<void(int64_t)> on_progress;
  // false: no error when not one image could be read (a shard of a multi-process run; checked after reducing).
  bool require_readable = true;
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
void write_per_class_csv(const std::string& path, const EvalResult& r, Classifier& clf);

}  // namespace moh::vit
