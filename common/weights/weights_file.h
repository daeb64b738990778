// The one way the models open a weights file: safetensors or a PyTorch checkpoint (torch.save zip: .pth, .pt,
// .bin, .ckpt), detected by content, not by extension. Legacy pre-1.6 torch files are refused with a message that
// says how to re-save them. Gives name -> tensor access and the safetensors metadata (empty for PyTorch files).
#pragma once
#include <torch/torch.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/io/json_file.h"
#include "common/weights/state_dict.h"

namespace moh {

class SafetensorsFile;
class TorchCheckpoint;

enum class WeightsFormat { Safetensors, TorchZip };

// Looks at the first bytes; throws moh::Error naming the file and what it looks like otherwise.
WeightsFormat detect_weights_format(const std::string& path);

class WeightsFile {
 public:
  // `key`: for PyTorch checkpoints, the top-level entry holding the weights (empty = ema, else model, else
  // state_dict, else the top-level dict). Must be empty for safetensors.
  explicit WeightsFile(const std::string& path, const std::string& key = "");
  ~WeightsFile();
  WeightsFile(const WeightsFile&) = delete;
  WeightsFile& operator=(const WeightsFile&) = delete;

  WeightsFormat format() const { return format_; }
  const std::string& path() const { return path_; }
  const std::vector<std::string>& names() const { return names_; }
  bool contains(const std::string& name) const;
  torch::Dtype dtype(const std::string& name) const;
  std::vector<int64_t> shape(const std::string& name) const;
  // A CPU tensor (safetensors: an owned copy; PyTorch: a view of the mapped file, kept alive by the tensor).
  torch::Tensor tensor(const std::string& name) const;
  // Hint that `name`'s bytes have been copied out: PyTorch files drop the pages behind it from memory.
  void release(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const;
  std::string meta(const std::string& key, const std::string& fallback = "") const;
  // PyTorch: the top-level entry the weights came from ("" = the top-level dict); safetensors: "".
  const std::string& key_used() const;
  // For messages: "'x.pth' (PyTorch checkpoint, entry 'ema')".
  std::string description() const;
  // PyTorch: the training script's `args` as JSON, or "".
  std::string args_json() const;

 private:
  std::string path_;
  WeightsFormat format_;
  std::unique_ptr<SafetensorsFile> st_;
  std::unique_ptr<TorchCheckpoint> pt_;
  std::vector<std::string> names_;
};

// Reads every tensor of the file (after the options' ignores) and loads it strictly (common/weights/state_dict.h).
void load_weights_into(torch::nn::Module& module, const WeightsFile& file, LoadOptions options = {});

}  // namespace moh
