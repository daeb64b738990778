// Kaggle LOC_val_solution.csv and devkit ILSVRC2012_validation_ground_truth.txt layouts (vit/imagenet_layouts.h).
#include "vit/imagenet_layouts.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "common/error.h"
#include "common/datasets/imagenet.h"
#include "vit/image_inputs.h"

namespace moh::vit {
namespace fs = std::filesystem;
namespace {

#include "vit/imagenet_devkit_ids.inc"

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

// Image files directly inside root (not recursive: these layouts are flat), sorted by name.
std::vector<std::string> flat_images(const std::string& root) {
  std::error_code ec;
  MOH_CHECK(fs::is_directory(root, ec), "dataset folder '", root, "' does not exist or is not a folder");
  std::vector<std::string> out;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code ec2;
    if (it->is_regular_file(ec2) && has_image_extension(it->path().string())) out.push_back(it->path().string());
  }
  MOH_CHECK(!ec, "cannot list dataset folder '", root, "': ", ec.message());
  std::sort(out.begin(), out.end());
  MOH_CHECK(!out.empty(), "dataset folder '", root, "' holds no image files (expected ILSVRC2012_val_*.JPEG)");
  return out;
}

std::vector<std::string> parse_devkit_table() {
  std::vector<std::string> out;
  std::istringstream lines(kImageNetDevkitIdsTsv);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto tab = line.find('\t');
    MOH_CHECK(tab != std::string::npos && std::stoi(line.substr(0, tab)) == (int)out.size() + 1,
              "embedded devkit table: bad line '", line, "'");
    out.push_back(line.substr(tab + 1));
  }
  MOH_CHECK(out.size() == 1000, "embedded devkit table has ", out.size(), " classes, expected 1000");
  return out;
}

}  // namespace

const std::vector<std::string>& imagenet_devkit_wnids() {
  static const std::vector<std::string> table = parse_devkit_table();
  return table;
}

int devkit_id_to_class_index(int id) {
  MOH_CHECK(id >= 1 && id <= 1000, "ILSVRC2012_ID ", id, " is outside 1..1000");
  return resolve_imagenet_class(imagenet_devkit_wnids()[size_t(id - 1)]);
}

int64_t imagenet_val_number(const std::string& name) {
  const std::string stem = fs::path(name).stem().string();
  static const std::string prefix = "ILSVRC2012_val_";
  if (stem.size() != prefix.size() + 8 || stem.compare(0, prefix.size(), prefix) != 0) return -1;
  const std::string digits = stem.substr(prefix.size());
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) return -1;
  return std::stoll(digits);
}

std::string label_file_kind(const std::string& path) {
  std::ifstream in(path);
  MOH_CHECK(in.good(), "cannot open label file '", path, "'");
  std::string line;
  while (std::getline(in, line)) {
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    if (line.rfind("\xEF\xBB\xBF", 0) == 0) line = line.substr(3);  // a UTF-8 byte-order mark
    if (line.rfind("ImageId,PredictionString", 0) == 0) return "kaggle-csv";
    if (std::all_of(line.begin(), line.end(), [](char c) { return c >= '0' && c <= '9'; })) return "devkit";
    return "labels-file";
  }
  return "labels-file";
}

std::string find_imagenet_label_file(const std::string& root, const std::string& kind) {
  const std::string name = kind == "kaggle-csv" ? "LOC_val_solution.csv" : "ILSVRC2012_validation_ground_truth.txt";
  std::error_code ec;
  fs::path dir = fs::absolute(root, ec);
  for (int up = 0; up <= 4 && !dir.empty(); ++up, dir = dir.parent_path()) {
    for (const auto& cand : {dir / name, dir / "ILSVRC2012_devkit_t12" / "data" / name, dir / "data" / name})
      if (fs::is_regular_file(cand, ec)) return cand.string();
    if (dir == dir.parent_path()) break;
  }
  return "";
}

EvalDataset list_kaggle_csv(const std::string& root, const std::string& csv_file, const ClassResolver& resolve) {
  std::ifstream in(csv_file);
  MOH_CHECK(in.good(), "cannot open label file '", csv_file, "'");
  std::map<std::string, std::pair<int64_t, int>> label_of;  // ImageId -> (class index, line)
  std::string line;
  bool header = false;
  for (int lineno = 1; std::getline(in, line); ++lineno) {
    line = trim(line);
    if (lineno == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line = line.substr(3);
    if (line.empty()) continue;
    if (!header) {
      MOH_CHECK(line.rfind("ImageId,PredictionString", 0) == 0, "label file '", csv_file, "' line ", lineno,
                ": expected the header 'ImageId,PredictionString' (Kaggle LOC_val_solution.csv), got '", line, "'");
      header = true;
      continue;
    }
    const auto comma = line.find(',');
    MOH_CHECK(comma != std::string::npos && comma > 0, "label file '", csv_file, "' line ", lineno,
              ": expected 'ImageId,PredictionString', got '", line, "'");
    const std::string id = trim(line.substr(0, comma));
    std::istringstream pred(line.substr(comma + 1));
    std::string wnid;
    pred >> wnid;  // PredictionString = "wnid x0 y0 x1 y1 [wnid x0 y0 x1 y1 ...]": every box names the image's class
    MOH_CHECK(!wnid.empty(), "label file '", csv_file, "' line ", lineno, ": image '", id, "' has no label");
    const int64_t idx = resolve(wnid);
    MOH_CHECK(idx >= 0, "label file '", csv_file, "' line ", lineno, ": '", wnid,
              "' is not a class of this model (unknown wnid)");
    const auto [it, fresh] = label_of.emplace(id, std::make_pair(idx, lineno));
    MOH_CHECK(fresh, "label file '", csv_file, "' line ", lineno, ": image '", id, "' was already labelled on line ",
              it->second.second);
  }
  MOH_CHECK(header, "label file '", csv_file, "' is empty");
  EvalDataset ds;
  ds.root = root;
  ds.layout = "kaggle-csv";
  for (const auto& f : flat_images(root)) {
    const auto it = label_of.find(fs::path(f).stem().string());
    MOH_CHECK(it != label_of.end(), "image '", f, "' has no row in label file '", csv_file, "' (",
              label_of.size(), " rows); is it the LOC_val_solution.csv of these images?");
    ds.samples.push_back({f, it->second.first});
  }
  ds.mapping = "wnids of " + csv_file + " (" + std::to_string(label_of.size()) + " rows, " +
               std::to_string(label_of.size() - ds.samples.size()) + " without an image here)";
  return ds;
}

EvalDataset list_devkit_ground_truth(const std::string& root, const std::string& gt_file,
                                     const ClassResolver& resolve) {
  std::ifstream in(gt_file);
  MOH_CHECK(in.good(), "cannot open label file '", gt_file, "'");
  std::vector<int64_t> label_of_line;  // line k (1-based) -> class index; lines are images 1, 2, ... in file order
  std::string line;
  const auto& wnids = imagenet_devkit_wnids();
  for (int lineno = 1; std::getline(in, line); ++lineno) {
    line = trim(line);
    MOH_CHECK(!line.empty() && line.size() <= 4 &&
                  std::all_of(line.begin(), line.end(), [](char c) { return c >= '0' && c <= '9'; }),
              "label file '", gt_file, "' line ", lineno, ": expected one ILSVRC2012_ID (1..1000) per line, got '",
              line, "'");
    const int id = std::stoi(line);
    MOH_CHECK(id >= 1 && id <= 1000, "label file '", gt_file, "' line ", lineno, ": ILSVRC2012_ID ", id,
              " is outside 1..1000");
    const int64_t idx = resolve(wnids[size_t(id - 1)]);
    MOH_CHECK(idx >= 0, "label file '", gt_file, "' line ", lineno, ": ILSVRC2012_ID ", id, " (",
              wnids[size_t(id - 1)], ") is not a class of this model");
    label_of_line.push_back(idx);
  }
  MOH_CHECK(!label_of_line.empty(), "label file '", gt_file, "' is empty");
  EvalDataset ds;
  ds.root = root;
  ds.layout = "devkit";
  std::set<int64_t> seen;
  for (const auto& f : flat_images(root)) {
    const int64_t k = imagenet_val_number(f);
    MOH_CHECK(k >= 1, "image '", f, "' is not named ILSVRC2012_val_<8 digits>: the devkit's ground truth labels ",
              "images by their number");
    MOH_CHECK(seen.insert(k).second, "two images are validation image ", k, " (another extension of '", f, "')");
    MOH_CHECK(k <= (int64_t)label_of_line.size(), "image '", f, "' has no line in label file '", gt_file,
              "' (it has ", label_of_line.size(), " lines); is it the ground truth of these images?");
    ds.samples.push_back({f, label_of_line[size_t(k - 1)]});
  }
  ds.mapping = "devkit ILSVRC2012_IDs of " + gt_file + " via common/datasets/data/imagenet_devkit_ids.tsv (" +
               std::to_string(label_of_line.size()) + " lines, " +
               std::to_string(label_of_line.size() - ds.samples.size()) + " without an image here)";
  return ds;
}

}  // namespace moh::vit
