// Memory-mapped safetensors reader and atomic writer (LibTorch side of common/weights/safetensors_format.h).
#pragma once
#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/io/mapped_file.h"
#include "common/weights/safetensors_format.h"

namespace moh {

torch::Dtype to_torch_dtype(DType t);
DType from_torch_dtype(torch::Dtype t);

class SafetensorsFile {
 public:
  // Maps and validates the file; throws moh::Error naming the file and the problem.
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  std::vector<std::string> names() const;  // in data order
  bool contains(const std::string& name) const { return index_.by_name.count(name) != 0; }
  const TensorEntry& entry(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return index_.metadata; }
  // The metadata value or `fallback` when absent.
  std::string meta(const std::string& key, const std::string& fallback = "") const;

  // An owned CPU tensor copied out of the mapping (safe to keep after the file closes).
  torch::Tensor tensor(const std::string& name) const;
  // All tensors whose names start with `prefix`, with the prefix removed.
  std::map<std::string, torch::Tensor> tensors_with_prefix(const std::string& prefix) const;

 private:
  std::string path_;
  std::unique_ptr<MappedFile> map_;
  SafetensorsIndex index_;
};

// Writes tensors (any device; copied to CPU, made contiguous) to `path` atomically: a temporary file in the same
// folder is written, flushed and renamed over the target, so a failure never leaves a half-written file.
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace moh
