// SHA-256 (FIPS 180-4), streaming, for recording where converted weights came from. No torch dependency.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace moh {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t n);
  std::string hex_digest();  // finishes the hash; lowercase hex, 64 characters

 private:
  void block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

// SHA-256 of a whole file, read in chunks (never mapped or held in memory). Throws moh::Error naming the file.
std::string sha256_file(const std::string& path);

}  // namespace moh
