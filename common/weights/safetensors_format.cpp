// Torch-free safetensors header parsing and validation (see safetensors_format.h; format: huggingface/safetensors).
#include "common/weights/safetensors_format.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <set>
#include <nlohmann/json.hpp>

#include "common/error.h"

namespace moh {
namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // same cap as the reference safetensors implementation
constexpr int kMaxJsonDepth = 16;

struct DTypeInfo {
  DType type;
  const char* name;
  size_t size;
};
constexpr DTypeInfo kDTypes[] = {
    {DType::F64, "F64", 8}, {DType::F32, "F32", 4}, {DType::F16, "F16", 2}, {DType::BF16, "BF16", 2},
    {DType::I64, "I64", 8}, {DType::I32, "I32", 4}, {DType::I16, "I16", 2}, {DType::I8, "I8", 1},
    {DType::U8, "U8", 1},   {DType::BOOL, "BOOL", 1},
};

// Rejects deeply nested JSON before handing it to the parser (bounded work, no deep recursion anywhere).
int json_depth(const char* s, size_t n) {
  int depth = 0, max_depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < n; ++i) {
    char c = s[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '{' || c == '[') max_depth = std::max(max_depth, ++depth);
    else if (c == '}' || c == ']') --depth;
  }
  return max_depth;
}

}  // namespace

const char* dtype_name(DType t) {
  for (const auto& d : kDTypes)
    if (d.type == t) return d.name;
  return "?";
}
size_t dtype_size(DType t) {
  for (const auto& d : kDTypes)
    if (d.type == t) return d.size;
  return 0;
}
bool dtype_from_name(const std::string& name, DType* out) {
  for (const auto& d : kDTypes)
    if (name == d.name) {
      *out = d.type;
      return true;
    }
  return false;
}

int64_t TensorEntry::numel() const {
  // Checked: parse_safetensors guarantees the product fits, but entries can also be built by hand.
  int64_t n = 1;
  for (auto s : shape) {
    MOH_CHECK(s >= 0, "tensor '", name, "': negative dimension ", s);
    if (s == 0) return 0;
  }
  for (auto s : shape) {
    MOH_CHECK(n <= std::numeric_limits<int64_t>::max() / s, "tensor '", name, "': element count overflows int64");
    n *= s;
  }
  return n;
}

SafetensorsIndex parse_safetensors(const uint8_t* data, size_t size, const std::string& label) {
  const std::string where = "safetensors file '" + label + "': ";
  MOH_CHECK(size >= 8, where, "too short (", size, " bytes) to hold the 8-byte header length; the file is truncated or not safetensors");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | data[i];
  MOH_CHECK(header_len >= 2 && header_len <= kMaxHeaderBytes, where, "header length ", header_len,
            " is out of range (2 .. ", kMaxHeaderBytes, " bytes); the file is corrupt or not safetensors");
  MOH_CHECK(header_len <= size - 8, where, "header length ", header_len, " runs past the end of the file (",
            size, " bytes); the file is truncated");
  const char* header = reinterpret_cast<const char*>(data + 8);
  MOH_CHECK(header[0] == '{', where, "header does not start with '{'; not a safetensors file");
  MOH_CHECK(json_depth(header, header_len) <= kMaxJsonDepth, where, "header JSON is nested too deeply");

  // The parser keeps the last of repeated keys silently; the callback sees every top-level key first.
  nlohmann::json j;
  std::set<std::string> seen_keys;
  std::string duplicate;
  auto on_event = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    if (depth == 1 && event == nlohmann::json::parse_event_t::key && parsed.is_string()) {
      const auto& key = parsed.get_ref<const std::string&>();
      if (!seen_keys.insert(key).second && duplicate.empty()) duplicate = key;
    }
    return true;
  };
  try {
    j = nlohmann::json::parse(header, header + header_len, on_event);
  } catch (const std::exception& e) {
    throw Error(where + "header is not valid JSON (" + e.what() + ")");
  }
  MOH_CHECK(duplicate.empty(), where, "the header names tensor '", duplicate,
            "' more than once (each name must be unique); the file is corrupt");
  MOH_CHECK(j.is_object(), where, "header JSON is not an object");

  SafetensorsIndex index;
  index.data_offset = 8 + header_len;
  const uint64_t data_size = size - index.data_offset;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const auto& v = it.value();
    if (name == "__metadata__") {
      MOH_CHECK(v.is_object(), where, "__metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        MOH_CHECK(m.value().is_string(), where, "__metadata__ value for '", m.key(), "' is not a string");
        index.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string tw = where + "tensor '" + name + "': ";
    MOH_CHECK(v.is_object(), tw, "entry is not an object");
    MOH_CHECK(v.contains("dtype") && v["dtype"].is_string(), tw, "missing string field 'dtype'");
    MOH_CHECK(v.contains("shape") && v["shape"].is_array(), tw, "missing array field 'shape'");
    MOH_CHECK(v.contains("data_offsets") && v["data_offsets"].is_array() && v["data_offsets"].size() == 2, tw,
              "missing field 'data_offsets' [begin, end]");
    TensorEntry e;
    e.name = name;
    const std::string dt = v["dtype"].get<std::string>();
    MOH_CHECK(dtype_from_name(dt, &e.dtype), tw, "unsupported dtype '", dt,
              "' (supported: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL)");
    MOH_CHECK(v["shape"].size() <= 8, tw, "has ", v["shape"].size(), " dimensions (at most 8 supported)");
    // Every dimension, the element count and the byte size must fit in int64 (what LibTorch indexes with).
    constexpr uint64_t kMaxI64 = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    uint64_t numel = 1;
    for (const auto& s : v["shape"]) {
      MOH_CHECK(s.is_number_unsigned() || (s.is_number_integer() && s.get<int64_t>() >= 0), tw,
                "shape entries must be non-negative integers");
      const uint64_t d = s.get<uint64_t>();
      MOH_CHECK(d <= kMaxI64, tw, "dimension ", d, " is 2^63 or more; the shape overflows");
      e.shape.push_back(static_cast<int64_t>(d));
    }
    // Checked product, also when a zero dimension makes the element count 0 (each dimension alone already fits).
    bool has_zero = false;
    for (auto d : e.shape) has_zero = has_zero || d == 0;
    if (has_zero) numel = 0;
    else
      for (auto d : e.shape) {
        MOH_CHECK(numel <= kMaxI64 / static_cast<uint64_t>(d), tw, "shape ", v["shape"].dump(),
                  " has more than 2^63 elements; the shape overflows");
        numel *= static_cast<uint64_t>(d);
      }
    for (const auto& o : v["data_offsets"])
      MOH_CHECK(o.is_number_unsigned() || (o.is_number_integer() && o.get<int64_t>() >= 0), tw,
                "data_offsets must be non-negative integers");
    e.begin = v["data_offsets"][0].get<uint64_t>();
    e.end = v["data_offsets"][1].get<uint64_t>();
    MOH_CHECK(e.begin <= e.end, tw, "data_offsets begin ", e.begin, " > end ", e.end);
    MOH_CHECK(e.end <= data_size, tw, "data span [", e.begin, ", ", e.end, ") lies outside the data section (",
              data_size, " bytes); the file is truncated");
    const uint64_t es = dtype_size(e.dtype);
    MOH_CHECK(numel <= kMaxI64 / es, tw, "shape ", v["shape"].dump(), " x ", dt,
              " needs more than 2^63 bytes; the shape overflows");
    MOH_CHECK(numel * es == e.end - e.begin, tw, "shape ", v["shape"].dump(), " x ", dt, " needs ", numel * es,
              " bytes but the span holds ", e.end - e.begin);
    index.tensors.push_back(std::move(e));
  }
  std::sort(index.tensors.begin(), index.tensors.end(),
            [](const TensorEntry& a, const TensorEntry& b) { return a.begin < b.begin || (a.begin == b.begin && a.end < b.end); });
  // The safetensors rule: the tensors, sorted by offset, cover the data section from 0 to its end exactly —
  // no byte is shared (overlap) and none is left unindexed (hole). Empty tensors take no bytes and cannot hide
  // an overlap between their neighbours, because each span must start where the previous non-empty one ended.
  uint64_t covered = 0;  // end of the bytes covered so far
  std::string last_name;
  for (size_t i = 0; i < index.tensors.size(); ++i) {
    const auto& e = index.tensors[i];
    MOH_CHECK(e.begin >= covered, where, "tensors '", last_name, "' and '", e.name,
              "' overlap in the data section (bytes [", e.begin, ", ", covered, "))");
    MOH_CHECK(e.begin == covered, where, "the data section has a hole: bytes [", covered, ", ", e.begin,
              ") belong to no tensor (before '", e.name, "'); the file is corrupt");
    if (e.end > e.begin) {
      covered = e.end;
      last_name = e.name;
    }
    index.by_name[e.name] = i;
  }
  MOH_CHECK(covered == data_size, where, "the data section has a hole: its last ", data_size - covered,
            " bytes (from offset ", covered, ") belong to no tensor; the file is corrupt or has trailing data");
  return index;
}

std::string build_safetensors_header(const std::vector<TensorEntry>& entries,
                                     const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    j["__metadata__"] = m;
  }
  for (const auto& e : entries) {
    j[e.name] = {{"dtype", dtype_name(e.dtype)}, {"shape", e.shape}, {"data_offsets", {e.begin, e.end}}};
  }
  std::string s = j.dump();
  while (s.size() % 8 != 0) s.push_back(' ');
  return s;
}

}  // namespace moh
