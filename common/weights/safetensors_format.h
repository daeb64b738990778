// Torch-free safetensors header parsing and validation (format: 8-byte LE header length, JSON header, raw data).
// Everything is validated before any byte of tensor data is trusted; hostile input raises moh::Error.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace moh {

enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };

const char* dtype_name(DType t);
size_t dtype_size(DType t);
bool dtype_from_name(const std::string& name, DType* out);

struct TensorEntry {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offset relative to the data section
  uint64_t end = 0;
  int64_t numel() const;
};

struct SafetensorsIndex {
  std::vector<TensorEntry> tensors;  // sorted by data offset
  std::map<std::string, size_t> by_name;
  std::map<std::string, std::string> metadata;
  uint64_t data_offset = 0;  // where the data section starts in the file
};

// Parses and validates a complete safetensors image of `size` bytes. `label` (usually the path) names the
// source in error messages.
SafetensorsIndex parse_safetensors(const uint8_t* data, size_t size, const std::string& label);

// Serialises header JSON for the given entries (offsets must already be set) padded to a multiple of 8.
std::string build_safetensors_header(const std::vector<TensorEntry>& entries,
                                     const std::map<std::string, std::string>& metadata);

}  // namespace moh
