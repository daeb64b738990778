// ReaL labels ("Are we done with ImageNet?", Beyer et al. 2020; github.com/google-research/reassessed-imagenet
// real.json): one list of standard class indices per ImageNet validation image in file order (entry k belongs to
// ILSVRC2012_val_<k + 1>); ReaL top-1 counts a prediction as correct when it is in the image's list, and leaves out
// images with an empty list. Mirrors timm/data/real_labels.py (RealLabelsImagenet), which matches images by name.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "vit/eval_dataset.h"

namespace moh::vit {

struct RealLabels {
  std::string path;
  std::vector<std::vector<int64_t>> labels;  // [50000] lists of class indices (0..999)
};

// Throws moh::Error naming the file (and the entry) when it is not a JSON list of lists of class indices 0..999.
RealLabels load_real_labels(const std::string& path);

// Throws moh::Error naming the first sample whose name is not ILSVRC2012_val_<8 digits> or whose number has no
// entry: ReaL labels are found by the validation image's number.
void check_real_labels(const EvalDataset& ds, const RealLabels& real);

struct RealAccuracy {
  int64_t images = 0;        // evaluated images with a non-empty ReaL list
  int64_t top1_correct = 0;  // of those, top-1 prediction in the list
  double top1() const { return images ? 100.0 * top1_correct / images : 0.0; }  // percent
};

// From the per-sample top-1 predictions (-1: unreadable, left out) of an evaluation of `ds`.
RealAccuracy real_accuracy(const EvalDataset& ds, const std::vector<int64_t>& predictions, const RealLabels& real);

}  // namespace moh::vit
