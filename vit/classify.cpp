// MoH-ViT classification pipeline (mirrors the inference half of MoH-ViT/engine.py `evaluate`: eval transform,
// model forward, softmax/top-k), plus input expansion for the CLI.
#include "vit/classify.h"

#include <glob.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include "common/error.h"
#include "common/imagenet.h"
#include "common/preprocess.h"

namespace moh::vit {
namespace fs = std::filesystem;

bool has_image_extension(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  for (auto& ch : ext) ch = (char)std::tolower((unsigned char)ch);
  static const char* kExt[] = {".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"};
  return std::any_of(std::begin(kExt), std::end(kExt), [&](const char* e) { return ext == e; });
}

namespace {

// A recursive walk that survives what real folders hold: symlink loops (each real folder is entered once),
// sub-folders it may not read (skipped with a warning instead of aborting the listing), dangling links.
template <typename Fn>
void walk_files(const fs::path& root, const Fn& on_file) {
  std::set<std::pair<dev_t, ino_t>> visited;
  std::vector<fs::path> stack{root};
  while (!stack.empty()) {
    const fs::path dir = stack.back();
    stack.pop_back();
    struct stat st{};
    if (::stat(dir.c_str(), &st) != 0 || !visited.insert({st.st_dev, st.st_ino}).second) continue;  // loop / gone
    std::error_code ec;
    fs::directory_iterator it(dir, fs::directory_options::follow_directory_symlink, ec), end;
    if (ec) {
      std::fprintf(stderr, "warning: skipping folder '%s': %s\n", dir.c_str(), ec.message().c_str());
      continue;
    }
    std::vector<fs::path> subdirs;
    for (; it != end; it.increment(ec)) {
      if (ec) break;
      std::error_code ec2;
      if (it->is_directory(ec2)) subdirs.push_back(it->path());
      else if (it->is_regular_file(ec2)) on_file(it->path());
    }
    if (ec) std::fprintf(stderr, "warning: stopped listing folder '%s': %s\n", dir.c_str(), ec.message().c_str());
    std::sort(subdirs.rbegin(), subdirs.rend());  // popped in sorted order
    for (auto& d : subdirs) stack.push_back(d);
  }
}

}  // namespace

std::vector<std::string> list_image_files(const std::string& dir) {
  std::vector<std::string> files;
  walk_files(dir, [&](const fs::path& p) {
    if (has_image_extension(p.string())) files.push_back(p.string());
  });
  std::sort(files.begin(), files.end());
  return files;
}

namespace {

std::vector<std::string> glob_paths(const std::string& pattern) {
  std::vector<std::string> out;
  glob_t g{};
  if (::glob(pattern.c_str(), 0, nullptr, &g) == 0)
    for (size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
  ::globfree(&g);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::vector<std::string> expand_image_inputs(const std::vector<std::string>& inputs) {
  std::vector<std::string> out;
  for (const auto& in : inputs) {
    std::error_code ec;
    if (fs::is_directory(in, ec)) {
      auto files = list_image_files(in);
      MOH_CHECK(!files.empty(), "folder '", in, "' holds no image files (.jpg .jpeg .png .bmp .ppm .pgm .tif .webp)");
      out.insert(out.end(), files.begin(), files.end());
    } else if (in.find_first_of("*?[") != std::string::npos && !fs::exists(in, ec)) {
      auto files = glob_paths(in);
      MOH_CHECK(!files.empty(), "pattern '", in, "' matches no files");
      for (auto& f : files)
        if (fs::is_directory(f, ec)) {
          auto sub = list_image_files(f);
          out.insert(out.end(), sub.begin(), sub.end());
        } else {
          out.push_back(f);
        }
    } else {
      out.push_back(in);  // a missing file is reported when it is decoded, next to the others
    }
  }
  return out;
}

Classifier::Classifier(const ViTConfig& cfg, const std::string& weights, const torch::Device& device,
                       torch::Dtype dtype)
    : model_(build_vit(cfg, weights, device, dtype)), device_(device), dtype_(dtype) {}

Classifier::Classifier(const ViTModelSource& source, const torch::Device& device, torch::Dtype dtype)
    : model_(build_vit(source.config, source.weights, device, dtype)),
      device_(device),
      dtype_(dtype),
      fmnist_(source.fmnist) {}

Classifier::Classifier(TransNeXt model, const torch::Device& device, torch::Dtype dtype)
    : model_(std::move(model)), device_(device), dtype_(dtype) {
  model_->to(device_, dtype_);
  model_->eval();
}

torch::Tensor Classifier::preprocess(const ImageU8& img) const {
  if (fmnist_) return preprocess_gray28(to_fmnist_gray28(img).unsqueeze(0))[0];  // [28, 28] -> [1, 28, 28]
  MOH_CHECK(config().in_chans == 3, "model '", config().name, "' takes ", config().in_chans,
            "-channel inputs but records no input transform for pictures (its weights have no 'preprocess' metadata)");
  return vit_eval_transform(img, static_cast<int>(config().img_size));
}

torch::Tensor Classifier::preprocess_gray28(const torch::Tensor& images_u8) const {
  MOH_CHECK(fmnist_.has_value(), "model '", config().name, "' is not a 28x28 gray-picture model (no 'preprocess' ",
            "metadata in its weights); it takes RGB pictures");
  return fmnist_to_input(images_u8, *fmnist_, config().in_chans);
}

torch::Tensor Classifier::logits(const torch::Tensor& batch) {
  torch::NoGradGuard no_grad;
  auto x = batch.to(device_, dtype_, /*non_blocking=*/true);
  return model_->forward(x).to(torch::kCPU, torch::kFloat32);
}

std::string Classifier::label(int64_t index) const {
  const auto& cfg = config();
  if (!cfg.class_names.empty()) return cfg.class_name(index);
  if (cfg.num_classes == 1000 && index >= 0 && index < 1000) return imagenet_classes()[index].name;
  return "";
}

std::vector<std::vector<ClassPrediction>> Classifier::top_k(const torch::Tensor& logits, int k) const {
  MOH_CHECK(k >= 1, "top-k needs k >= 1 (got ", k, ")");
  auto probs = logits.to(torch::kCPU, torch::kFloat32).softmax(-1);  // [B, classes]
  const int64_t kk = std::min<int64_t>(k, probs.size(1));
  auto top = torch::topk(probs, kk, -1);
  auto values = std::get<0>(top), indices = std::get<1>(top);  // [B, kk] each, highest first
  std::vector<std::vector<ClassPrediction>> out(probs.size(0));
  for (int64_t b = 0; b < probs.size(0); ++b)
    for (int64_t i = 0; i < kk; ++i) {
      const auto idx = indices[b][i].item<int64_t>();
      out[b].push_back({idx, label(idx), values[b][i].item<float>()});
    }
  return out;
}

std::vector<ClassifyResult> Classifier::classify_files(const std::vector<std::string>& paths, int batch_size, int k,
                                                       const std::function<void(const ClassifyResult&)>& on_result) {
  MOH_CHECK(batch_size >= 1, "batch size must be >= 1 (got ", batch_size, ")");
  std::vector<ClassifyResult> results(paths.size());
  for (size_t start = 0; start < paths.size(); start += batch_size) {
    const size_t end = std::min(paths.size(), start + batch_size);
    std::vector<torch::Tensor> inputs;
    std::vector<size_t> which;
    for (size_t i = start; i < end; ++i) {
      results[i].path = paths[i];
      try {
        inputs.push_back(preprocess(decode_image_file(paths[i])));
        which.push_back(i);
      } catch (const std::exception& e) {
        results[i].error = e.what();
      }
    }
    if (!inputs.empty()) {
      auto top = top_k(logits(torch::stack(inputs)), k);  // [b, 3, S, S] -> top-k per image
      for (size_t j = 0; j < which.size(); ++j) {
        results[which[j]].ok = true;
        results[which[j]].top = std::move(top[j]);
      }
    }
    if (on_result)
      for (size_t i = start; i < end; ++i) on_result(results[i]);
  }
  return results;
}

int64_t requested_class_from_filename(const std::string& path) {
  const std::string name = fs::path(path).filename().string();
  // NNNNNN_<digits>[_...].png
  const auto u1 = name.find('_');
  if (u1 == std::string::npos || u1 == 0) return -1;
  for (size_t i = 0; i < u1; ++i)
    if (!std::isdigit((unsigned char)name[i])) return -1;
  size_t j = u1 + 1;
  while (j < name.size() && std::isdigit((unsigned char)name[j])) ++j;
  if (j == u1 + 1 || j - u1 - 1 > 12 || j >= name.size() || (name[j] != '_' && name[j] != '.')) return -1;
  return std::stoll(name.substr(u1 + 1, j - u1 - 1));
}

Agreement agreement_by_class(const std::vector<ClassifyResult>& results, const Classifier& clf) {
  std::map<int64_t, AgreementRow> rows;
  std::map<int64_t, std::map<int64_t, int64_t>> predicted;  // requested -> predicted -> count
  Agreement a;
  for (const auto& r : results) {
    if (!r.ok || r.top.empty()) continue;
    const int64_t req = requested_class_from_filename(r.path);
    if (req < 0) {
      ++a.unnamed;
      continue;
    }
    auto& row = rows[req];
    row.requested = req;
    row.name = clf.label(req);
    row.images++;
    const bool ok = r.top.front().index == req;
    row.agreed += ok;
    predicted[req][r.top.front().index]++;
    a.images++;
    a.agreed += ok;
  }
  for (auto& [req, row] : rows) {
    int64_t best = -1, best_n = -1;
    for (const auto& [cls, n] : predicted[req])
      if (n > best_n) best = cls, best_n = n;
    row.most_predicted = best;
    a.rows.push_back(row);
  }
  return a;
}

}  // namespace moh::vit
