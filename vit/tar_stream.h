// A small streaming reader for tar archives (POSIX ustar + pax extended headers + GNU long names), enough for
// WebDataset shards (webdataset/tariterators.py reads them with Python's tarfile): members are visited in file order
// by reading headers and seeking over the data, so a shard is never unpacked. Facts: POSIX.1-2001 pax / ustar
// header layout (name 100, mode 8, uid 8, gid 8, size 12, mtime 12, chksum 8, typeflag 1, linkname 100, magic 6,
// version 2, uname 32, gname 32, devmajor 8, devminor 8, prefix 155), GNU base-256 sizes and 'L' long names.
#pragma once
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace moh::vit {

struct TarMember {
  std::string name;          // full path inside the archive (pax 'path' / GNU long name / prefix + name)
  char type = '0';           // '0' regular file, '5' directory, ... (pax/GNU meta records are consumed, never seen)
  int64_t header_offset = 0; // byte offset of the member's own header in the archive
  int64_t data_offset = 0;   // byte offset of its data
  int64_t size = 0;          // data size the header declares
  int64_t available = 0;     // data bytes actually present (< size: the archive is truncated inside this member)
  bool truncated() const { return available < size; }
};

// Sequential reader over one archive. next() returns false at the end-of-archive blocks or at the end of the file;
// a member whose data runs past the end of the file is returned with truncated() (the next call returns false), and
// a file that ends inside a header ends the listing; truncation() then says where. Throws moh::Error naming the
// archive and the byte offset for a damaged header (bad checksum, not a tar file, a compressed archive).
class TarReader {
 public:
  explicit TarReader(const std::string& path);
  bool next(TarMember& m);
  // The current member's data (at most `max_bytes`; throws when the member is larger or truncated).
  std::string read_data(const TarMember& m, int64_t max_bytes);
  const std::string& path() const { return path_; }
  int64_t file_size() const { return file_size_; }
  // "" while the archive is whole; else where it was cut short (set once next() has met the cut).
  const std::string& truncation() const { return truncation_; }

 private:
  bool read_block(int64_t offset, char* block);  // false: fewer than 512 bytes left (1..511: sets truncation_)
  std::string path_, truncation_;
  std::ifstream in_;
  int64_t file_size_ = 0;
  int64_t pos_ = 0;  // offset of the next header
  bool done_ = false;
};

// `size` bytes at `offset` of `path` (a member's data, read when a sample is decoded). Throws moh::Error naming
// `label` when the file is shorter.
std::vector<uint8_t> read_file_range(const std::string& path, int64_t offset, int64_t size, const std::string& label);

}  // namespace moh::vit
