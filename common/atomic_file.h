// A file that appears under its final name only when complete: written to a temp file beside the target,
// flushed, then renamed. Destroyed without commit() -> the temp file is removed and the target is untouched.
#pragma once
#include <cstddef>
#include <cstdio>
#include <string>

namespace moh {

class AtomicFile {
 public:
  explicit AtomicFile(const std::string& path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  void write(const void* data, size_t n);
  void commit();

 private:
  std::string path_, tmp_;
  std::FILE* f_ = nullptr;
};

// Writes a whole string atomically.
void write_file_atomic(const std::string& path, const std::string& contents);

}  // namespace moh
