// libFuzzer harness for the torch-free safetensors header parser (common/weights/safetensors_format.h).
// Contract under test: any byte string either parses into a self-consistent index or raises moh::Error; nothing else
// (no crash, no other exception, no out-of-bounds read under ASan/UBSan). Accepted files must also survive a
// write/re-parse round trip through build_safetensors_header. Run via scripts/fuzz-safetensors.sh.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/weights/safetensors_format.h"

namespace {

void require(bool ok) {
  if (!ok) __builtin_trap();  // an invariant violation is a finding: make libFuzzer save the input
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  moh::SafetensorsIndex idx;
  try {
    idx = moh::parse_safetensors(data, size, "fuzz-input");
  } catch (const moh::Error&) {
    return 0;  // rejected cleanly
  }
  // Accepted: every span lies inside the data section, matches its shape x dtype, and the spans tile the data section
  // without overlap or hole.
  require(idx.data_offset <= size);
  const uint64_t data_size = size - idx.data_offset;
  uint64_t prev_end = 0;
  for (size_t i = 0; i < idx.tensors.size(); ++i) {
    const auto& e = idx.tensors[i];
    require(e.begin <= e.end && e.end <= data_size);
    require(static_cast<uint64_t>(e.numel()) * moh::dtype_size(e.dtype) == e.end - e.begin);
    require(e.begin == prev_end);  // contiguous: no overlap, no hole
    prev_end = e.end;
    require(idx.by_name.at(e.name) == i);
  }
  require(prev_end == data_size);  // the whole data section is indexed
  // Round trip: the header we would write for this index parses back to the same entries and metadata.
  const std::string header = moh::build_safetensors_header(idx.tensors, idx.metadata);
  std::vector<uint8_t> again(8 + header.size() + data_size);
  for (int i = 0; i < 8; ++i) again[i] = static_cast<uint8_t>(static_cast<uint64_t>(header.size()) >> (8 * i));
  std::copy(header.begin(), header.end(), again.begin() + 8);
  std::copy(data + idx.data_offset, data + size, again.begin() + 8 + header.size());
  moh::SafetensorsIndex back;
  try {
    back = moh::parse_safetensors(again.data(), again.size(), "fuzz-roundtrip");
  } catch (const moh::Error&) {
    require(false);
  }
  require(back.metadata == idx.metadata && back.tensors.size() == idx.tensors.size());
  for (size_t i = 0; i < idx.tensors.size(); ++i) {
    const auto &a = idx.tensors[i], &b = back.tensors[back.by_name.at(a.name)];
    require(a.dtype == b.dtype && a.shape == b.shape && a.begin == b.begin && a.end == b.end);
  }
  return 0;
}
