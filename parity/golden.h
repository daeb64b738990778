// Reference ("golden") files written by the official Python code (format: shared/golden/README.md, moh-golden-v1):
// safetensors with weights under official names, in.* inputs, out.* outputs, mid.* intermediates, buf.* buffers,
// and JSON-encoded metadata (family, config, recommended_tolerance).
#pragma once
#include <torch/torch.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/weights/safetensors.h"

namespace moh {

struct Tolerance {
  double atol = 1e-5;
  double rtol = 1e-4;
};

class GoldenFile {
 public:
  explicit GoldenFile(const std::string& path);
  const std::string& path() const { return file_->path(); }
  const SafetensorsFile& file() const { return *file_; }
  std::string family() const;
  const nlohmann::json& config() const { return config_; }
  // Tolerance recommended by the file (atol, rtol), for one output name when given per output.
  Tolerance tolerance(const std::string& output = "") const;
  // atol/rtol from another JSON metadata entry (e.g. "pipeline_tolerance"); `fallback` where it is absent.
  Tolerance tolerance_from(const std::string& meta_key, const Tolerance& fallback) const;
  // A number stored in recommended_tolerance under `key` (e.g. "atol_rel_to_max"), or `fallback`.
  double tolerance_number(const std::string& key, double fallback) const;
  bool has(const std::string& name) const { return file_->contains(name); }
  torch::Tensor get(const std::string& name) const { return file_->tensor(name); }
  // Weights only (tensors without an in./out./mid./buf. prefix), under their official names.
  std::map<std::string, torch::Tensor> weights() const;
  // Weights under `prefix` (prefix removed), e.g. "block1.0.attn." for a module inside a bigger model.
  std::map<std::string, torch::Tensor> weights(const std::string& prefix) const;
  std::vector<std::string> names_with_prefix(const std::string& prefix) const;

 private:
  std::shared_ptr<SafetensorsFile> file_;
  nlohmann::json config_;
  nlohmann::json tolerance_;
};

// max |a-b|, max |a-b| / (|b| + tiny), and whether |a-b| <= atol + rtol*|b| everywhere.
struct Comparison {
  double max_abs = 0, max_rel = 0, max_ref = 0;
  bool pass = false;
  bool shape_ok = true;
  std::string note;
};
Comparison compare_tensors(const torch::Tensor& ours, const torch::Tensor& ref, const Tolerance& tol);

}  // namespace moh
