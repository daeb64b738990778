// Evaluation datasets for MoH-ViT: ImageFolder `val/<class>/*.JPEG` (MoH-ViT/datasets.py, torchvision
// ImageFolder's class numbering), a flat folder + label file ("filename label", Kaggle's LOC_val_solution.csv or the
// devkit's ground truth: vit/imagenet_layouts.h), WebDataset tar shards (vit/webdataset.h) or IDX files (MNIST /
// Fashion-MNIST), with class names resolved to model class indices; layout detection; evenly spaced subsets.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

#include "vit/config.h"

namespace moh::vit {

struct EvalSample {
  EvalSample() = default;
  EvalSample(std::string image_path, int64_t class_index) : path(std::move(image_path)), label(class_index) {}
  std::string path;    // the image file; for a WebDataset sample "<shard.tar>/<member name>"
  int64_t label = -1;  // model class index (-1 only for a sample with `error`)
  // WebDataset: the image is `size` bytes at `offset` of the shard file `archive` (empty for plain files).
  std::string archive;
  int64_t offset = 0, size = 0;
  int32_t shard = -1;  // position of its shard in EvalDataset's shard list (-1: not from a shard)
  std::string error;   // set when listing already knows the sample is unreadable (a truncated tar member)
};

struct EvalDataset {
  std::string root;
  std::string layout;   // "imagefolder", "labels-file", "kaggle-csv", "devkit", "webdataset" or "idx"
  std::string mapping;  // how names became class indices (e.g. "imagenet wnid", "sorted folder order")
  std::vector<EvalSample> samples;
  // layout "idx": the pictures themselves, [N, 28, 28] uint8 (sample i is images_u8[i]; its path names the file
  // and index). Undefined for folder datasets, whose samples are decoded from their paths.
  torch::Tensor images_u8;
  int64_t num_shards = 0;  // layout "webdataset": shards listed (several processes split the work by shard)
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
// The layouts list_eval_dataset knows ("auto" detects one).
const std::vector<std::string>& eval_layouts();
// Dispatch on `layout`; "auto" detects: IDX files in root -> idx(split); a label file given -> by its content
// (kaggle-csv, devkit or labels-file); .tar shards -> webdataset; class sub-folders -> imagefolder; a flat folder of
// images with exactly one of LOC_val_solution.csv / ILSVRC2012_validation_ground_truth.txt in or above it ->
// kaggle-csv / devkit. A forced layout that needs a label file finds it there when none is given. Throws
// moh::Error saying what was found and which --labels / --layout to give when it is ambiguous or unknown.
EvalDataset list_eval_dataset(const std::string& root, const std::string& labels_file, const ViTConfig& cfg,
                              const std::string& split = "test", const std::string& layout = "auto");

// The class index an all-digit folder or label names, or -1 when it is not all digits. Throws moh::Error for a
// number too long to be a class index (rather than letting std::stoll overflow).
int64_t class_index_from_digits(const std::string& name);

// `limit` evenly spaced samples (all when limit <= 0 or >= size), so a quick run still covers every class.
EvalDataset subset_evenly(const EvalDataset& ds, int64_t limit);

}  // namespace moh::vit
