// Atomic file writes: temp file beside the target, fsync, rename (see atomic_file.h). No official counterpart.
#include "common/io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>

#include <cerrno>
#include <cstring>

#include "common/error.h"

namespace moh {

AtomicFile::AtomicFile(const std::string& path) : path_(path) {
  tmp_ = path + ".tmp." + std::to_string(::getpid());
  f_ = std::fopen(tmp_.c_str(), "wb");
  MOH_CHECK(f_ != nullptr, "cannot write '", path, "': ", std::strerror(errno),
            " (check that the folder exists and is writable)");
}

AtomicFile::~AtomicFile() {
  if (f_) {
    std::fclose(f_);
    std::remove(tmp_.c_str());
  }
}

void AtomicFile::write(const void* data, size_t n) {
  if (n == 0) return;
  MOH_CHECK(std::fwrite(data, 1, n, f_) == n, "writing '", path_, "' failed: ", std::strerror(errno),
            " (disk full?)");
}

void AtomicFile::commit() {
  MOH_CHECK(std::fflush(f_) == 0 && ::fsync(fileno(f_)) == 0, "flushing '", path_, "' failed: ", std::strerror(errno));
  std::fclose(f_);
  f_ = nullptr;
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp_.c_str());
    throw Error("cannot move the finished file into place at '" + path_ + "': " + std::strerror(err));
  }
  fsync_parent_dir(path_);
}

void fsync_parent_dir(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

void write_file_atomic(const std::string& path, const std::string& contents) {
  AtomicFile f(path);
  f.write(contents.data(), contents.size());
  f.commit();
}

}  // namespace moh
