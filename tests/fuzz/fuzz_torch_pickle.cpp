// libFuzzer harness for the restricted unpickler (common/weights/torch_pickle.h) and the zip reader (common/weights/zip_archive.h),
// both torch-free. Contract under test: any byte string is either accepted as self-consistent data or refused with
// moh::Error; never a crash, hang, leak, other exception, or out-of-bounds access under ASan/UBSan. Accepted
// pickles must hold only tensors that lie inside their storages. Run via scripts/fuzz-torch-pickle.sh.
#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/weights/torch_pickle.h"
#include "common/weights/zip_archive.h"

namespace {

void require(bool ok) {
  if (!ok) __builtin_trap();  // an invariant violation is a finding: make libFuzzer save the input
}

void check_pickle(const uint8_t* data, size_t size) {
  moh::pickle::Pickle pk;
  try {
    pk = moh::pickle::unpickle(data, size, "fuzz-input");
  } catch (const moh::Error&) {
    return;
  }
  require(pk.root != nullptr);
  for (const auto& t : pk.tensors) {
    require(t.storage < pk.storages.size());
    require(t.sizes.size() == t.strides.size() && t.offset >= 0);
    const auto& s = pk.storages[t.storage];
    // Recompute the furthest element in 128-bit arithmetic: it must lie inside the storage.
    unsigned __int128 numel = 1, last = static_cast<uint64_t>(t.offset);
    for (size_t d = 0; d < t.sizes.size(); ++d) {
      require(t.sizes[d] >= 0 && t.strides[d] >= 0);
      numel *= static_cast<uint64_t>(t.sizes[d]);
      if (t.sizes[d] > 0) last += static_cast<unsigned __int128>(t.sizes[d] - 1) * static_cast<uint64_t>(t.strides[d]);
    }
    require(numel == 0 ? static_cast<uint64_t>(t.offset) <= s.numel : last < s.numel);
  }
  const std::string json = moh::pickle::to_json(*pk.root);  // must never throw: strings are validated UTF-8
  require(!json.empty());
  for (const auto& k : moh::pickle::dict_keys(*pk.root)) require(moh::pickle::dict_get(*pk.root, k) != nullptr);
}

void check_zip(const uint8_t* data, size_t size) {
  try {
    moh::ZipArchive z(data, size, "fuzz-input");
    for (const auto& e : z.entries()) {
      require(e.data_offset <= size && e.compressed_size <= size - e.data_offset);
      require(z.find(e.name) == &e);
      try {
        const auto bytes = z.read(e, 1u << 20);
        require(bytes.size() == e.size);
      } catch (const moh::Error&) {
      }
    }
  } catch (const moh::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  check_pickle(data, size);
  check_zip(data, size);
  return 0;
}
