// MappedFile: a whole file memory-mapped (private, copy-on-write), the one mmap owner behind the safetensors reader
// and the PyTorch checkpoint (zip) reader. No torch dependency (the libFuzzer harnesses link it).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace moh {

// A whole file mapped read-only into memory (copy-on-write: a write through a view stays private). Shared between
// an archive and every zero-copy tensor that points into it, so it stays mapped while any view lives.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // throws moh::Error naming the file
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Drops the resident pages of [offset, offset+n) from this process (they are re-read from the file when touched
  // again; private writes to them are lost). Lets a streaming reader keep its RSS flat.
  void drop_pages(uint64_t offset, uint64_t n) const;

 private:
  std::string path_;
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace moh
