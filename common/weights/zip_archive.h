// Read-only zip archive reader over bytes in memory (normally a memory-mapped file), as torch.save writes them:
// central directory (zip64 where needed), stored entries handed out as zero-copy spans, deflated entries inflated
// with zlib. Every offset and size is bounds-checked before use; hostile input raises moh::Error naming the file.
// No torch dependency (the libFuzzer harness links it). Files are mapped with common/io/mapped_file.h.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/io/mapped_file.h"

namespace moh {

struct ZipEntry {
  std::string name;
  uint16_t method = 0;  // 0 stored, 8 deflated
  uint16_t flags = 0;
  uint32_t crc32 = 0;
  uint64_t compressed_size = 0;
  uint64_t size = 0;  // uncompressed
  uint64_t local_header_offset = 0;
  uint64_t data_offset = 0;  // from the local header: local_header_offset + 30 + name_len + extra_len
};

class ZipArchive {
 public:
  // Parses and validates the central directory and every local header. `label` names the source in errors.
  ZipArchive(const uint8_t* data, size_t size, std::string label);

  const std::vector<ZipEntry>& entries() const { return entries_; }
  const ZipEntry* find(const std::string& name) const;  // nullptr when absent
  const std::string& label() const { return label_; }

  // Stored entry: pointer to its bytes inside the archive image (entry.size bytes). Throws for compressed entries.
  const uint8_t* stored_data(const ZipEntry& e) const;
  // Any entry, copied out (inflated when deflated). Refuses entries whose size exceeds max_size, and deflated
  // entries whose ratio no deflate stream can reach (zip bombs); checks the CRC-32.
  std::vector<uint8_t> read(const ZipEntry& e, uint64_t max_size) const;

 private:
  [[noreturn]] void fail(const std::string& what) const;
  const uint8_t* data_;
  size_t size_;
  std::string label_;
  std::vector<ZipEntry> entries_;
  std::map<std::string, size_t> by_name_;
};

}  // namespace moh
