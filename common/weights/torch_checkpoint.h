// PyTorch checkpoint files written by torch.save (zip format, torch >= 1.6): the restricted unpickler
// (common/weights/torch_pickle.h) reads <prefix>/data.pkl, the weights dict is chosen (`ema`, else `model`, else
// `state_dict`, else the top-level dict; or an explicit key), `module.` / `_orig_mod.` prefixes are stripped, and
// tensors are views straight into the memory-mapped <prefix>/data/<key> storages (offset/size/stride already
// validated against each storage), so a 1 GB checkpoint costs no more than the tensors actually read.
// Facts: spec/torch-checkpoint.md. Errors are moh::Error naming the file and the problem.
#pragma once
#include <torch/torch.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/weights/torch_pickle.h"
#include "common/weights/zip_archive.h"

namespace moh {

class TorchCheckpoint {
 public:
  // `key` names the top-level entry holding the weights; empty = automatic (see above).
  explicit TorchCheckpoint(const std::string& path, const std::string& key = "");
  TorchCheckpoint(const TorchCheckpoint&) = delete;
  TorchCheckpoint& operator=(const TorchCheckpoint&) = delete;

  const std::string& path() const { return path_; }
  // The top-level entry the weights came from ("ema", "model", "state_dict", a --key value); empty when the
  // top-level object itself is the state dict.
  const std::string& key_used() const { return key_used_; }
  std::vector<std::string> top_level_keys() const;
  // Tensor names (prefixes stripped; nested dicts joined with '.') in the file's order.
  const std::vector<std::string>& names() const { return names_; }
  bool contains(const std::string& name) const { return by_name_.count(name) != 0; }
  torch::Dtype dtype(const std::string& name) const;
  std::vector<int64_t> shape(const std::string& name) const;
  // A CPU tensor viewing the mapped storage (zero-copy when the entry is stored and aligned; the mapping lives as
  // long as any view). Writes to it stay private to this process.
  torch::Tensor tensor(const std::string& name) const;
  // Releases the resident pages behind `name`'s storage (call after its bytes have been copied out).
  void drop_pages(const std::string& name) const;
  // The top-level `args` entry (argparse.Namespace of the training script) as JSON, or "" when absent.
  const std::string& args_json() const { return args_json_; }

 private:
  const pickle::TensorRef& ref(const std::string& name) const;
  std::shared_ptr<std::vector<uint8_t>> storage_copy(size_t storage) const;

  std::string path_;
  std::shared_ptr<MappedFile> map_;
  std::unique_ptr<ZipArchive> zip_;
  pickle::Pickle pickle_;
  std::vector<const ZipEntry*> storage_entries_;  // per pickle_.storages index
  std::string key_used_, args_json_;
  std::vector<std::string> names_;
  std::map<std::string, size_t> by_name_;  // -> pickle_.tensors index
  mutable std::mutex copies_mutex_;
  mutable std::map<size_t, std::shared_ptr<std::vector<uint8_t>>> copies_;  // inflated / realigned storages
};

}  // namespace moh
