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

// fsyncs the folder holding `path`, so that a rename into it survives a crash or power loss (POSIX: the rename
// is durable only once the directory entry is synced). Errors are ignored: some file systems cannot sync folders.
void fsync_parent_dir(const std::string& path);

// Writes a whole string atomically.
void write_file_atomic(const std::string& path, const std::string& contents);

}  // namespace moh
