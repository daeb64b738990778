// Memory-mapped safetensors reader and atomic writer over LibTorch tensors (see safetensors.h; format:
// huggingface/safetensors).
#include "common/weights/safetensors.h"


#include <cerrno>
#include <cstdio>
#include <cstring>

#include "common/io/atomic_file.h"
#include "common/error.h"

namespace moh {

torch::Dtype to_torch_dtype(DType t) {
  switch (t) {
    case DType::F64: return torch::kFloat64;
    case DType::F32: return torch::kFloat32;
    case DType::F16: return torch::kFloat16;
    case DType::BF16: return torch::kBFloat16;
    case DType::I64: return torch::kInt64;
    case DType::I32: return torch::kInt32;
    case DType::I16: return torch::kInt16;
    case DType::I8: return torch::kInt8;
    case DType::U8: return torch::kUInt8;
    case DType::BOOL: return torch::kBool;
  }
  throw Error("unknown dtype");
}

DType from_torch_dtype(torch::Dtype t) {
  switch (t) {
    case torch::kFloat64: return DType::F64;
    case torch::kFloat32: return DType::F32;
    case torch::kFloat16: return DType::F16;
    case torch::kBFloat16: return DType::BF16;
    case torch::kInt64: return DType::I64;
    case torch::kInt32: return DType::I32;
    case torch::kInt16: return DType::I16;
    case torch::kInt8: return DType::I8;
    case torch::kUInt8: return DType::U8;
    case torch::kBool: return DType::BOOL;
    default: throw Error(std::string("cannot store torch dtype ") + c10::toString(t) + " in safetensors");
  }
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  try {
    map_ = std::make_unique<MappedFile>(path);
  } catch (const Error& e) {
    throw Error(std::string("safetensors file: ") + e.what());
  }
  index_ = parse_safetensors(map_->data(), map_->size(), path);
}

SafetensorsFile::~SafetensorsFile() = default;

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(index_.tensors.size());
  for (const auto& e : index_.tensors) out.push_back(e.name);
  return out;
}

const TensorEntry& SafetensorsFile::entry(const std::string& name) const {
  auto it = index_.by_name.find(name);
  MOH_CHECK(it != index_.by_name.end(), "safetensors file '", path_, "' has no tensor named '", name, "'");
  return index_.tensors[it->second];
}

std::string SafetensorsFile::meta(const std::string& key, const std::string& fallback) const {
  auto it = index_.metadata.find(key);
  return it == index_.metadata.end() ? fallback : it->second;
}

torch::Tensor SafetensorsFile::tensor(const std::string& name) const {
  const TensorEntry& e = entry(name);
  auto out = torch::empty(e.shape, torch::TensorOptions().dtype(to_torch_dtype(e.dtype)));
  if (e.end > e.begin) std::memcpy(out.data_ptr(), map_->data() + index_.data_offset + e.begin, e.end - e.begin);
  return out;
}

std::map<std::string, torch::Tensor> SafetensorsFile::tensors_with_prefix(const std::string& prefix) const {
  std::map<std::string, torch::Tensor> out;
  for (const auto& e : index_.tensors)
    if (e.name.compare(0, prefix.size(), prefix) == 0) out[e.name.substr(prefix.size())] = tensor(e.name);
  return out;
}

void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<TensorEntry> entries;
  std::vector<torch::Tensor> cpu;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    MOH_CHECK(name != "__metadata__", "tensor name '__metadata__' is reserved");
    auto c = t.detach().to(torch::kCPU).contiguous();
    TensorEntry e;
    e.name = name;
    e.dtype = from_torch_dtype(c.scalar_type());
    e.shape = c.sizes().vec();
    e.begin = offset;
    e.end = offset + static_cast<uint64_t>(c.numel()) * dtype_size(e.dtype);
    offset = e.end;
    entries.push_back(e);
    cpu.push_back(c);
  }
  const std::string header = build_safetensors_header(entries, metadata);
  AtomicFile out(path);
  uint8_t len[8];
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(n >> (8 * i));
  out.write(len, 8);
  out.write(header.data(), header.size());
  for (const auto& c : cpu) out.write(c.data_ptr(), c.numel() * c.element_size());
  out.commit();
}

}  // namespace moh
