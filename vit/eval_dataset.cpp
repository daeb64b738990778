// Evaluation dataset listing (vit/eval_dataset.h): MoH-ViT/datasets.py ImageFolder layout, label files, IDX, and
// the layout detection over these and vit/imagenet_layouts.h, vit/webdataset.h.
#include "vit/eval_dataset.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "common/error.h"
#include "common/datasets/idx.h"
#include "common/datasets/imagenet.h"
#include "vit/image_inputs.h"
#include "vit/imagenet_layouts.h"
#include "vit/webdataset.h"

namespace moh::vit {
namespace fs = std::filesystem;

// ------------------------------------------------------------------------------------------------- listing
int64_t class_index_from_digits(const std::string& name) {
  if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; })) return -1;
  const auto first = name.find_first_not_of('0');
  const size_t significant = first == std::string::npos ? 0 : name.size() - first;
  MOH_CHECK(significant <= 12, "class '", name, "' is a number with ", significant,
            " digits, too large to be a class index; name class folders by index, class name or wnid");
  return first == std::string::npos ? 0 : std::stoll(name.substr(first));
}

ClassResolver class_resolver(const ViTConfig& cfg) {
  return [cfg](const std::string& name) -> int64_t {
    for (size_t i = 0; i < cfg.class_names.size(); ++i)
      if (cfg.class_names[i] == name) return (int64_t)i;
    const int64_t v = class_index_from_digits(name);
    if (v >= 0) return v < cfg.num_classes ? v : -1;
    if (cfg.num_classes == 1000 && cfg.class_names.empty()) {
      try {
        return resolve_imagenet_class(name);
      } catch (const Error&) {
        return -1;
      }
    }
    return -1;
  };
}

EvalDataset list_imagefolder(const std::string& root_in, const ClassResolver& resolve, int64_t num_classes) {
  std::error_code ec;
  MOH_CHECK(fs::is_directory(root_in, ec), "dataset folder '", root_in, "' does not exist or is not a folder");
  EvalDataset ds;
  ds.root = fs::is_directory(fs::path(root_in) / "val", ec) ? (fs::path(root_in) / "val").string() : root_in;
  ds.layout = "imagefolder";
  std::vector<std::string> classes;
  fs::directory_iterator it(ds.root, fs::directory_options::follow_directory_symlink, ec), end;
  MOH_CHECK(!ec, "cannot list dataset folder '", ds.root, "': ", ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) break;
    std::error_code ec2;
    if (it->is_directory(ec2)) classes.push_back(it->path().filename().string());
  }
  std::sort(classes.begin(), classes.end());
  MOH_CHECK(!classes.empty(), "dataset folder '", ds.root, "' has no class sub-folders (expected <class>/<image> ",
            "files, ImageNet style val/<wnid>/*.JPEG); for a flat folder give a label file");
  std::vector<int64_t> index(classes.size());
  bool all_known = true;
  std::set<int64_t> used;
  for (size_t i = 0; i < classes.size(); ++i) {
    index[i] = resolve(classes[i]);
    all_known = all_known && index[i] >= 0 && used.insert(index[i]).second;
  }
  if (all_known) {
    ds.mapping = "folder names";
  } else {
    // torchvision ImageFolder: classes numbered in sorted folder order.
    MOH_CHECK((int64_t)classes.size() <= num_classes, "dataset folder '", ds.root, "' has ", classes.size(),
              " class folders but the model has ", num_classes, " classes, and the folder names are not class ",
              "names/ids of the model; rename the folders (e.g. ImageNet wnids) or give a label file");
    for (size_t i = 0; i < classes.size(); ++i) index[i] = (int64_t)i;
    ds.mapping = "sorted folder order";
  }
  for (size_t i = 0; i < classes.size(); ++i) {
    for (auto& f : list_image_files((fs::path(ds.root) / classes[i]).string())) ds.samples.push_back({f, index[i]});
  }
  MOH_CHECK(!ds.samples.empty(), "dataset folder '", ds.root, "' has class folders but no image files");
  return ds;
}

EvalDataset list_labeled_folder(const std::string& root, const std::string& labels_file,
                                const ClassResolver& resolve) {
  std::error_code ec;
  MOH_CHECK(fs::is_directory(root, ec), "dataset folder '", root, "' does not exist or is not a folder");
  std::ifstream in(labels_file);
  MOH_CHECK(in.good(), "cannot open label file '", labels_file, "'");
  EvalDataset ds;
  ds.root = root;
  ds.layout = "labels-file";
  ds.mapping = "label file";
  std::string line;
  for (int lineno = 1; std::getline(in, line); ++lineno) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
    const auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    // The label is the last field, so file names may contain spaces.
    const auto split = line.find_last_of(" \t");
    MOH_CHECK(split != std::string::npos && split > first, "label file '", labels_file, "' line ", lineno,
              ": expected 'filename label', got '", line, "'");
    std::string file = line.substr(first, split - first);
    while (!file.empty() && (file.back() == ' ' || file.back() == '\t')) file.pop_back();
    const std::string label = line.substr(split + 1);
    const auto idx = resolve(label);
    MOH_CHECK(idx >= 0, "label file '", labels_file, "' line ", lineno, ": label '", label,
              "' is not a class of this model (use a class index, an ImageNet wnid or a class name)");
    const fs::path p(file);
    ds.samples.push_back({p.is_absolute() ? file : (fs::path(root) / p).string(), idx});
  }
  MOH_CHECK(!ds.samples.empty(), "label file '", labels_file, "' lists no images");
  return ds;
}

bool has_idx_files(const std::string& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return false;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec))
    if (it->path().filename().string().find("-images-idx3-ubyte") != std::string::npos) return true;
  return false;
}

EvalDataset list_idx_dataset(const std::string& root, const std::string& split) {
  const auto data = load_fashion_mnist(root, split);
  EvalDataset ds;
  ds.root = root;
  ds.layout = "idx";
  ds.mapping = "IDX labels";
  ds.images_u8 = data.images;
  const std::string file = (split == "train" ? "train" : "t10k") + std::string("-images-idx3-ubyte#");
  auto labels = data.labels.accessor<int64_t, 1>();
  ds.samples.reserve(size_t(labels.size(0)));
  for (int64_t i = 0; i < labels.size(0); ++i) ds.samples.push_back({file + std::to_string(i), labels[i]});
  return ds;
}

const std::vector<std::string>& eval_layouts() {
  static const std::vector<std::string> all = {"auto", "imagefolder", "labels-file", "kaggle-csv",
                                               "devkit",  "webdataset",  "idx"};
  return all;
}

namespace {

bool has_class_subfolders(const std::string& root) {
  std::error_code ec;
  if (fs::is_directory(fs::path(root) / "val", ec)) return true;
  for (fs::directory_iterator it(root, fs::directory_options::follow_directory_symlink, ec), end; !ec && it != end;
       it.increment(ec)) {
    std::error_code ec2;
    if (it->is_directory(ec2)) return true;
  }
  return false;
}

// The label file a kaggle-csv / devkit layout reads: the one given, else the one found near root.
std::string label_file_for(const std::string& root, const std::string& given, const std::string& layout) {
  if (!given.empty()) return given;
  const auto found = find_imagenet_label_file(root, layout);
  MOH_CHECK(!found.empty(), "layout ", layout, ": no ",
            layout == "kaggle-csv" ? "LOC_val_solution.csv" : "ILSVRC2012_validation_ground_truth.txt", " in '",
            root, "' or the folders above it; give the label file");
  return found;
}

}  // namespace

EvalDataset list_eval_dataset(const std::string& root, const std::string& labels_file, const ViTConfig& cfg,
                              const std::string& split, const std::string& layout_in) {
  const auto& known = eval_layouts();
  MOH_CHECK(std::find(known.begin(), known.end(), layout_in) != known.end(), "unknown layout '", layout_in,
            "' (auto, imagefolder, labels-file, kaggle-csv, devkit, webdataset, idx)");
  std::string layout = layout_in;
  if (layout == "auto") {
    if (labels_file.empty() && has_idx_files(root)) {
      layout = "idx";
    } else if (!labels_file.empty()) {
      layout = label_file_kind(labels_file);
    } else if (looks_like_webdataset(root)) {
      layout = "webdataset";
    } else {
      std::error_code ec;
      MOH_CHECK(fs::is_directory(root, ec), "dataset folder '", root, "' does not exist or is not a folder");
      if (has_class_subfolders(root)) {
        layout = "imagefolder";
      } else {
        const auto csv = find_imagenet_label_file(root, "kaggle-csv");
        const auto gt = find_imagenet_label_file(root, "devkit");
        MOH_CHECK(csv.empty() || gt.empty(), "dataset folder '", root, "' is flat and both '", csv, "' and '", gt,
                  "' could label it; choose one with --labels");
        MOH_CHECK(!csv.empty() || !gt.empty(), "dataset folder '", root, "' has no class sub-folders and no label ",
                  "file was found near it (LOC_val_solution.csv, ILSVRC2012_validation_ground_truth.txt); give ",
                  "--labels FILE, or use an ImageFolder (<class>/<image>) or WebDataset .tar shards");
        layout = csv.empty() ? "devkit" : "kaggle-csv";
      }
    }
  }
  const auto resolve = class_resolver(cfg);
  if (layout == "idx") return list_idx_dataset(root, split);
  if (layout == "webdataset") return list_webdataset(root, resolve);
  if (layout == "imagefolder") return list_imagefolder(root, resolve, cfg.num_classes);
  if (layout == "kaggle-csv") return list_kaggle_csv(root, label_file_for(root, labels_file, layout), resolve);
  if (layout == "devkit") return list_devkit_ground_truth(root, label_file_for(root, labels_file, layout), resolve);
  MOH_CHECK(!labels_file.empty(), "layout labels-file needs a label file ('filename label' lines)");
  return list_labeled_folder(root, labels_file, resolve);
}

EvalDataset subset_evenly(const EvalDataset& ds, int64_t limit) {
  const auto n = (int64_t)ds.samples.size();
  if (limit <= 0 || limit >= n) return ds;
  EvalDataset out = ds;
  out.samples.clear();
  std::vector<int64_t> picked;
  for (int64_t i = 0; i < limit; ++i) {
    picked.push_back(i * n / limit);
    out.samples.push_back(ds.samples[picked.back()]);
  }
  if (ds.images_u8.defined()) out.images_u8 = ds.images_u8.index_select(0, torch::tensor(picked));
  return out;
}

}  // namespace moh::vit
