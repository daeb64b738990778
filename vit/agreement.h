// Scores class-conditional generations with a classifier: per requested class (read from moh-generate's file
// names), how often the classifier's top-1 is that class. No official counterpart (the paper reports FID).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "vit/classifier.h"

namespace moh::vit {

// The requested class of a picture written by moh-generate (file name NNNNNN_<class index>[_<name>].png), or -1
// when the name does not have that form.
int64_t requested_class_from_filename(const std::string& path);

// How often the classifier agrees with the class each generated picture was requested as: the check of a
// class-conditional generator by a classifier (the demo judges its DiT with its ViT this way).
struct AgreementRow {
  int64_t requested = 0;
  std::string name;
  int64_t images = 0, agreed = 0;
  int64_t most_predicted = -1;  // the class predicted most often for this requested class
  double rate() const { return images ? double(agreed) / double(images) : 0.0; }
};
struct Agreement {
  std::vector<AgreementRow> rows;  // by requested class, ascending
  int64_t images = 0, agreed = 0, unnamed = 0;  // unnamed: results whose file name carries no class
  double rate() const { return images ? double(agreed) / double(images) : 0.0; }
};

Agreement agreement_by_class(const std::vector<ClassifyResult>& results, const Classifier& clf);

}  // namespace moh::vit
