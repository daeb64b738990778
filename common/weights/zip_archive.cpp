// Zip reader (format: PKWARE APPNOTE 6.3: end of central directory, zip64 locator/record, central and local
// headers). Written for what torch.save emits, strict about everything else.
#include "common/weights/zip_archive.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "common/error.h"

namespace moh {

// ---------------------------------------------------------------------------------------------- ZipArchive
namespace {

constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEndSig = 0x06054b50;
constexpr uint32_t kZip64EndSig = 0x06064b50, kZip64LocatorSig = 0x07064b50;
constexpr size_t kEndSize = 22, kCentralSize = 46, kLocalSize = 30, kZip64EndSize = 56, kZip64LocatorSize = 20;
constexpr uint64_t kMaxEntries = 1u << 22;  // far above any checkpoint (one entry per storage)

uint16_t rd16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t rd32(const uint8_t* p) { return static_cast<uint32_t>(rd16(p)) | (static_cast<uint32_t>(rd16(p + 2)) << 16); }
uint64_t rd64(const uint8_t* p) { return static_cast<uint64_t>(rd32(p)) | (static_cast<uint64_t>(rd32(p + 4)) << 32); }

}  // namespace

void ZipArchive::fail(const std::string& what) const {
  throw Error("zip archive '" + label_ + "': " + what + " (the file is truncated, corrupt or not a zip archive)");
}

ZipArchive::ZipArchive(const uint8_t* data, size_t size, std::string label)
    : data_(data), size_(size), label_(std::move(label)) {
  if (size_ < kEndSize) fail("too short (" + std::to_string(size_) + " bytes) to hold an end-of-central-directory record");
  // The end record sits in the last 22 + 65535 (comment) bytes; scan backwards for its signature.
  size_t end_pos = std::numeric_limits<size_t>::max();
  const size_t lowest = size_ > kEndSize + 0xffff ? size_ - kEndSize - 0xffff : 0;
  for (size_t p = size_ - kEndSize + 1; p-- > lowest;) {
    if (rd32(data_ + p) == kEndSig && p + kEndSize + rd16(data_ + p + 20) <= size_) {
      end_pos = p;
      break;
    }
  }
  if (end_pos == std::numeric_limits<size_t>::max()) fail("no end-of-central-directory record found");
  const uint8_t* e = data_ + end_pos;
  if (rd16(e + 4) != 0 || (rd16(e + 6) != 0 && rd16(e + 6) != 0xffff)) fail("multi-disk archives are not supported");
  uint64_t count = rd16(e + 10), cd_size = rd32(e + 12), cd_offset = rd32(e + 16);
  uint64_t cd_limit = end_pos;  // the central directory must end before this
  if (count == 0xffff || cd_size == 0xffffffffu || cd_offset == 0xffffffffu) {
    if (end_pos < kZip64LocatorSize || rd32(data_ + end_pos - kZip64LocatorSize) != kZip64LocatorSig)
      fail("the end record asks for zip64 but there is no zip64 locator");
    const uint64_t rec = rd64(data_ + end_pos - kZip64LocatorSize + 8);
    if (rec > end_pos - kZip64LocatorSize || end_pos - kZip64LocatorSize - rec < kZip64EndSize ||
        rd32(data_ + rec) != kZip64EndSig)
      fail("the zip64 end-of-central-directory record is missing or out of bounds");
    count = rd64(data_ + rec + 32);
    cd_size = rd64(data_ + rec + 40);
    cd_offset = rd64(data_ + rec + 48);
    cd_limit = rec;
  }
  if (cd_offset > cd_limit || cd_size > cd_limit - cd_offset)
    fail("the central directory (offset " + std::to_string(cd_offset) + ", " + std::to_string(cd_size) +
         " bytes) lies outside the file");
  if (count > kMaxEntries || count > cd_size / kCentralSize)
    fail("the central directory claims " + std::to_string(count) + " entries in " + std::to_string(cd_size) + " bytes");

  entries_.reserve(static_cast<size_t>(count));
  uint64_t pos = cd_offset;
  const uint64_t cd_end = cd_offset + cd_size;
  for (uint64_t i = 0; i < count; ++i) {
    const std::string which = "central directory entry " + std::to_string(i);
    if (cd_end - pos < kCentralSize || rd32(data_ + pos) != kCentralSig) fail(which + " is missing or has a bad signature");
    const uint8_t* c = data_ + pos;
    ZipEntry z;
    z.flags = rd16(c + 8);
    z.method = rd16(c + 10);
    z.crc32 = rd32(c + 16);
    z.compressed_size = rd32(c + 20);
    z.size = rd32(c + 24);
    const uint16_t name_len = rd16(c + 28), extra_len = rd16(c + 30), comment_len = rd16(c + 32);
    z.local_header_offset = rd32(c + 42);
    const uint64_t var_len = uint64_t(name_len) + extra_len + comment_len;
    if (cd_end - pos - kCentralSize < var_len) fail(which + " runs past the central directory");
    z.name.assign(reinterpret_cast<const char*>(c + kCentralSize), name_len);
    // zip64 extended information (tag 1): 8-byte fields present only for the values saturated above, in this order.
    const uint8_t* x = c + kCentralSize + name_len;
    for (size_t k = 0; k + 4 <= extra_len;) {
      const uint16_t tag = rd16(x + k), len = rd16(x + k + 2);
      if (k + 4 + len > extra_len) fail(which + " ('" + z.name + "') has a malformed extra field");
      if (tag == 1) {
        const uint8_t* f = x + k + 4;
        size_t used = 0;
        auto take = [&](uint64_t* v) {
          if (*v != 0xffffffffu) return;
          if (used + 8 > len) fail(which + " ('" + z.name + "') has a truncated zip64 extra field");
          *v = rd64(f + used);
          used += 8;
        };
        take(&z.size);
        take(&z.compressed_size);
        take(&z.local_header_offset);
      }
      k += 4 + len;
    }
    pos += kCentralSize + var_len;

    const std::string ew = "entry '" + z.name + "'";
    if (z.flags & 1) fail(ew + " is encrypted");
    if (z.method != 0 && z.method != 8)
      fail(ew + " uses compression method " + std::to_string(z.method) + " (only stored and deflate are supported)");
    if (z.method == 0 && z.compressed_size != z.size)
      fail(ew + " is stored but its compressed size " + std::to_string(z.compressed_size) + " differs from its size " +
           std::to_string(z.size));
    // Local header: its own name/extra lengths decide where the data starts (torch pads the extra field to align).
    const uint64_t lh = z.local_header_offset;
    if (lh > cd_offset || cd_offset - lh < kLocalSize || rd32(data_ + lh) != kLocalSig)
      fail(ew + ": local header at offset " + std::to_string(lh) + " is missing or out of bounds");
    const uint64_t data_off = lh + kLocalSize + rd16(data_ + lh + 26) + uint64_t(rd16(data_ + lh + 28));
    if (data_off > cd_offset || z.compressed_size > cd_offset - data_off)
      fail(ew + ": its data (offset " + std::to_string(data_off) + ", " + std::to_string(z.compressed_size) +
           " bytes) runs past the start of the central directory");
    if (rd16(data_ + lh + 26) != name_len || std::memcmp(data_ + lh + kLocalSize, z.name.data(), name_len) != 0)
      fail(ew + ": local header names a different file");
    z.data_offset = data_off;
    if (!by_name_.emplace(z.name, entries_.size()).second) fail("entry name '" + z.name + "' appears twice");
    entries_.push_back(std::move(z));
  }
}

const ZipEntry* ZipArchive::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &entries_[it->second];
}

const uint8_t* ZipArchive::stored_data(const ZipEntry& e) const {
  MOH_CHECK(e.method == 0, "zip archive '", label_, "': entry '", e.name, "' is compressed, not stored");
  return data_ + e.data_offset;
}

std::vector<uint8_t> ZipArchive::read(const ZipEntry& e, uint64_t max_size) const {
  const std::string ew = "zip archive '" + label_ + "': entry '" + e.name + "'";
  MOH_CHECK(e.size <= max_size, ew, " is ", e.size, " bytes, more than the ", max_size, " allowed for it");
  std::vector<uint8_t> out;
  if (e.method == 0) {
    out.assign(data_ + e.data_offset, data_ + e.data_offset + e.size);
  } else {
    // Deflate cannot expand by more than ~1032:1; a larger claim is a bomb or a lie.
    MOH_CHECK(e.size / 1032 <= e.compressed_size + 1, ew, " claims ", e.size, " bytes from ", e.compressed_size,
              " compressed bytes, which deflate cannot produce");
    out.resize(static_cast<size_t>(e.size));
    z_stream zs{};
    MOH_CHECK(inflateInit2(&zs, -MAX_WBITS) == Z_OK, ew, ": zlib inflateInit failed");
    uint64_t in_left = e.compressed_size, out_done = 0;
    const uint8_t* in = data_ + e.data_offset;
    int rc = Z_OK;
    while (rc == Z_OK) {
      const uInt in_chunk = static_cast<uInt>(std::min<uint64_t>(in_left, 1u << 30));
      const uInt out_chunk = static_cast<uInt>(std::min<uint64_t>(e.size - out_done, 1u << 30));
      zs.next_in = const_cast<Bytef*>(in);
      zs.avail_in = in_chunk;
      zs.next_out = out.data() + out_done;
      zs.avail_out = out_chunk;
      rc = inflate(&zs, Z_NO_FLUSH);
      const uint64_t used = in_chunk - zs.avail_in, made = out_chunk - zs.avail_out;
      in += used;
      in_left -= used;
      out_done += made;
      if (rc == Z_OK && used == 0 && made == 0) rc = Z_BUF_ERROR;  // no progress: input or output exhausted
    }
    inflateEnd(&zs);
    MOH_CHECK(rc == Z_STREAM_END && out_done == e.size, ew, " does not inflate to its declared ", e.size,
              " bytes (corrupt deflate data)");
  }
  uLong crc = crc32(0L, Z_NULL, 0);
  for (uint64_t done = 0; done < out.size();) {
    const uInt n = static_cast<uInt>(std::min<uint64_t>(out.size() - done, 1u << 30));
    crc = crc32(crc, out.data() + done, n);
    done += n;
  }
  MOH_CHECK(static_cast<uint32_t>(crc) == e.crc32, ew, " fails its CRC-32 check (corrupt data)");
  return out;
}

}  // namespace moh
