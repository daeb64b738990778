// Content-detected weights files (see weights_file.h).
#include "common/weights/weights_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "common/error.h"
#include "common/weights/safetensors.h"
#include "common/weights/torch_checkpoint.h"

namespace moh {

WeightsFormat detect_weights_format(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  MOH_CHECK(f != nullptr, "cannot open weights file '", path, "': ", std::strerror(errno));
  uint8_t h[16] = {};
  const size_t n = std::fread(h, 1, sizeof h, f);
  std::fclose(f);
  if (n >= 4 && std::memcmp(h, "PK\x03\x04", 4) == 0) return WeightsFormat::TorchZip;
  if (n >= 9 && h[8] == '{') return WeightsFormat::Safetensors;  // 8-byte header length, then the JSON header
  // Legacy torch.save (before 1.6 or _use_new_zipfile_serialization=False): a pickle whose first object is the
  // magic number 0x1950a86a20f9469cfc6c (PROTO 2, LONG1 of 10 bytes).
  static const uint8_t legacy[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
  if (n >= sizeof legacy && std::memcmp(h, legacy, sizeof legacy) == 0)
    throw Error("weights file '" + path + "' is a legacy PyTorch checkpoint (written by torch < 1.6 or with "
                "_use_new_zipfile_serialization=False), which is not supported: re-save it once with torch >= 1.6, "
                "e.g. python3 -c \"import torch; torch.save(torch.load('" + path +
                "', map_location='cpu', weights_only=True), 'resaved.pth')\", then use resaved.pth (or "
                "moh-convert it to safetensors)");
  if (n >= 1 && h[0] == 0x80)
    throw Error("weights file '" + path + "' is a bare Python pickle, not a torch.save checkpoint or safetensors file; "
                "it cannot be read safely");
  throw Error("weights file '" + path + "' is neither safetensors nor a PyTorch checkpoint (zip) file" +
              (n < 9 ? std::string(" (it is only ") + std::to_string(n) + " bytes long)" : std::string("")));
}

WeightsFile::WeightsFile(const std::string& path, const std::string& key)
    : path_(path), format_(detect_weights_format(path)) {
  if (format_ == WeightsFormat::Safetensors) {
    MOH_CHECK(key.empty(), "'", path, "' is a safetensors file: a checkpoint key ('", key,
              "') applies only to PyTorch checkpoints");
    st_ = std::make_unique<SafetensorsFile>(path);
    names_ = st_->names();
  } else {
    pt_ = std::make_unique<TorchCheckpoint>(path, key);
    names_ = pt_->names();
  }
}

WeightsFile::~WeightsFile() = default;

bool WeightsFile::contains(const std::string& name) const { return st_ ? st_->contains(name) : pt_->contains(name); }

torch::Dtype WeightsFile::dtype(const std::string& name) const {
  return st_ ? to_torch_dtype(st_->entry(name).dtype) : pt_->dtype(name);
}

std::vector<int64_t> WeightsFile::shape(const std::string& name) const {
  return st_ ? st_->entry(name).shape : pt_->shape(name);
}

torch::Tensor WeightsFile::tensor(const std::string& name) const { return st_ ? st_->tensor(name) : pt_->tensor(name); }

void WeightsFile::release(const std::string& name) const {
  if (pt_) pt_->drop_pages(name);
}

const std::map<std::string, std::string>& WeightsFile::metadata() const {
  static const std::map<std::string, std::string> none;
  return st_ ? st_->metadata() : none;
}

std::string WeightsFile::meta(const std::string& key, const std::string& fallback) const {
  return st_ ? st_->meta(key, fallback) : fallback;
}

const std::string& WeightsFile::key_used() const {
  static const std::string none;
  return pt_ ? pt_->key_used() : none;
}

std::string WeightsFile::description() const {
  if (st_) return "'" + path_ + "'";
  return "'" + path_ + "' (PyTorch checkpoint, " +
         (pt_->key_used().empty() ? std::string("top-level dict") : "entry '" + pt_->key_used() + "'") + ")";
}

std::string WeightsFile::args_json() const { return pt_ ? pt_->args_json() : std::string(); }

void load_weights_into(torch::nn::Module& module, const WeightsFile& file, LoadOptions options) {
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& name : file.names()) {
    bool skip = false;
    for (const auto& p : options.ignore_prefixes) skip = skip || name.compare(0, p.size(), p) == 0;
    if (!skip) tensors[name] = file.tensor(name);
  }
  if (options.source == "checkpoint") options.source = file.description();
  load_state_dict(module, tensors, options);
  tensors.clear();
  for (const auto& name : file.names()) file.release(name);  // the module holds copies now: unmap the pages read
}

}  // namespace moh
