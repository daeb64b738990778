// ImageNet-1k validation as people store it, besides ImageFolder (vit/eval_dataset.h): the flat folder of
// ILSVRC2012_val_*.JPEG with Kaggle's LOC_val_solution.csv (the ImageNet Object Localization Challenge's
// "ImageId,PredictionString" file) or with the official devkit's ILSVRC2012_validation_ground_truth.txt (one
// ILSVRC2012_ID per line, in file order, numbered as the devkit's data/meta.mat: NOT the standard class index; the
// ID -> wnid table is common/datasets/data/imagenet_devkit_ids.tsv, embedded). The devkit reading mirrors torchvision's
// datasets/imagenet.py (parse_devkit_archive / parse_val_archive); the CSV is read as Kaggle documents it.
#pragma once
#include <string>
#include <vector>

#include "vit/eval_dataset.h"

namespace moh::vit {

// The devkit's classes: entry i is the wnid of ILSVRC2012_ID i + 1 (1000 entries).
const std::vector<std::string>& imagenet_devkit_wnids();
// The standard (sorted-wnid) class index of a devkit ILSVRC2012_ID (1..1000); throws moh::Error outside.
int devkit_id_to_class_index(int ilsvrc2012_id);

// What a label file holds, from its first non-comment line: "kaggle-csv" ("ImageId,PredictionString" header),
// "devkit" (a lone integer), else "labels-file" ("filename label" lines).
std::string label_file_kind(const std::string& path);

// The label file of `kind` ("kaggle-csv": LOC_val_solution.csv; "devkit": ILSVRC2012_validation_ground_truth.txt) in
// `root` or up to four folders above it (Kaggle's ILSVRC/Data/CLS-LOC/val sits four below the CSV), also under
// ILSVRC2012_devkit_t12/data and data/ there; "" when there is none.
std::string find_imagenet_label_file(const std::string& root, const std::string& kind);

// Flat folder + LOC_val_solution.csv: each image (direct children of root, sorted by name) is labelled by the CSV row
// whose ImageId is its file name without extension (the first wnid of PredictionString). Throws moh::Error naming the
// file and line for a malformed row, an unknown wnid or a repeated ImageId, and naming the image for an image the
// CSV has no row for. Rows without an image are allowed (a subset of the folder); ds.mapping counts them.
EvalDataset list_kaggle_csv(const std::string& root, const std::string& csv_file, const ClassResolver& resolve);

// Flat folder + ILSVRC2012_validation_ground_truth.txt: line k labels ILSVRC2012_val_<k, 8 digits>.* through the
// devkit table. Throws moh::Error naming the file and line for a bad ID, and naming the image for an image whose
// number has no line or whose name is not ILSVRC2012_val_<8 digits>.
EvalDataset list_devkit_ground_truth(const std::string& root, const std::string& gt_file, const ClassResolver& resolve);

// The validation image number of a file or tar-member name "…/ILSVRC2012_val_00000042.JPEG" (42), or -1.
int64_t imagenet_val_number(const std::string& name);

}  // namespace moh::vit
