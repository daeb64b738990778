// ReaL accuracy (vit/real_labels.h), as timm/data/real_labels.py computes its top-1.
#include "vit/real_labels.h"

#include "common/error.h"
#include "common/io/json_file.h"
#include "vit/imagenet_layouts.h"

namespace moh::vit {

RealLabels load_real_labels(const std::string& path) {
  const auto j = read_json_file(path, "ReaL labels file");
  MOH_CHECK(j.is_array() && !j.empty(), "ReaL labels file '", path,
            "' is not a JSON list with one list of labels per validation image");
  RealLabels r;
  r.path = path;
  r.labels.reserve(j.size());
  for (size_t k = 0; k < j.size(); ++k) {
    MOH_CHECK(j[k].is_array(), "ReaL labels file '", path, "' entry ", k, " (ILSVRC2012_val_", k + 1,
              ") is not a list");
    std::vector<int64_t> labels;
    for (const auto& v : j[k]) {
      MOH_CHECK(v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() < 1000, "ReaL labels file '",
                path, "' entry ", k, " (ILSVRC2012_val_", k + 1, "): '", v.dump(), "' is not a class index 0..999");
      labels.push_back(v.get<int64_t>());
    }
    r.labels.push_back(std::move(labels));
  }
  return r;
}

void check_real_labels(const EvalDataset& ds, const RealLabels& real) {
  for (const auto& s : ds.samples) {
    if (!s.error.empty()) continue;
    const int64_t k = imagenet_val_number(s.path);
    MOH_CHECK(k >= 1, "ReaL labels find images by their validation number, but '", s.path,
              "' is not named ILSVRC2012_val_<8 digits>");
    MOH_CHECK(k <= (int64_t)real.labels.size(), "'", s.path, "' is validation image ", k, " but ReaL labels file '",
              real.path, "' has only ", real.labels.size(), " entries");
  }
}

RealAccuracy real_accuracy(const EvalDataset& ds, const std::vector<int64_t>& predictions, const RealLabels& real) {
  MOH_CHECK(predictions.size() == ds.samples.size(), "ReaL accuracy: ", predictions.size(), " predictions for ",
            ds.samples.size(), " images");
  check_real_labels(ds, real);
  RealAccuracy a;
  for (size_t i = 0; i < ds.samples.size(); ++i) {
    if (predictions[i] < 0) continue;  // unreadable
    const auto& labels = real.labels[size_t(imagenet_val_number(ds.samples[i].path) - 1)];
    if (labels.empty()) continue;  // no ReaL label: left out, as in the paper
    a.images++;
    for (auto l : labels) {
      if (l == predictions[i]) {
        a.top1_correct++;
        break;
      }
    }
  }
  return a;
}

}  // namespace moh::vit
