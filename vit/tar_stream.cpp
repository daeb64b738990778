// Streaming tar reader (vit/tar_stream.h): ustar headers, pax 'x' records (path, size), GNU 'L' long names.
#include "vit/tar_stream.h"

#include <algorithm>
#include <cstring>

#include "common/error.h"

namespace moh::vit {
namespace {

constexpr int64_t kBlock = 512;

int64_t padded(int64_t size) { return (size + kBlock - 1) / kBlock * kBlock; }

// A numeric header field: octal digits (leading spaces/NULs allowed, ended by a space or NUL), or GNU base-256 when
// the first byte has its high bit set.
int64_t parse_number(const char* field, int len, const std::string& what) {
  const auto* u = reinterpret_cast<const unsigned char*>(field);
  if (u[0] & 0x80) {
    MOH_CHECK(!(u[0] & 0x40), what, " is negative");
    int64_t v = u[0] & 0x3f;
    for (int i = 1; i < len; ++i) {
      MOH_CHECK(v < (int64_t(1) << 55), what, " is too large");
      v = (v << 8) | u[i];
    }
    return v;
  }
  int i = 0;
  while (i < len && (field[i] == ' ' || field[i] == '\0')) ++i;
  int64_t v = 0;
  for (; i < len && field[i] >= '0' && field[i] <= '7'; ++i) {
    MOH_CHECK(v < (int64_t(1) << 60), what, " is too large");
    v = v * 8 + (field[i] - '0');
  }
  MOH_CHECK(i == len || field[i] == ' ' || field[i] == '\0', what, " is not an octal number");
  return v;
}

std::string field_string(const char* field, size_t len) { return std::string(field, strnlen(field, len)); }

}  // namespace

TarReader::TarReader(const std::string& path) : path_(path), in_(path, std::ios::binary) {
  MOH_CHECK(in_.good(), "cannot open tar shard '", path, "'");
  in_.seekg(0, std::ios::end);
  file_size_ = static_cast<int64_t>(in_.tellg());
  unsigned char magic[2] = {0, 0};
  in_.seekg(0);
  in_.read(reinterpret_cast<char*>(magic), 2);
  in_.clear();
  MOH_CHECK(!(file_size_ >= 2 && magic[0] == 0x1f && magic[1] == 0x8b), "tar shard '", path,
            "' is gzip-compressed; give uncompressed .tar shards (gunzip them first)");
}

bool TarReader::read_block(int64_t offset, char* block) {
  if (offset >= file_size_) return false;
  if (file_size_ - offset < kBlock) {
    truncation_ = "the archive ends inside a header at byte " + std::to_string(offset) + " (file size " +
                  std::to_string(file_size_) + ")";
    return false;
  }
  in_.seekg(offset);
  in_.read(block, kBlock);
  MOH_CHECK(in_.gcount() == kBlock, "cannot read tar shard '", path_, "' at byte ", offset);
  return true;
}

bool TarReader::next(TarMember& m) {
  std::string long_name, pax_path;
  int64_t pax_size = -1;
  char h[kBlock];
  while (!done_) {
    const int64_t at = pos_;
    if (!read_block(at, h) || std::all_of(h, h + kBlock, [](char c) { return c == 0; })) {  // end, or end-of-archive
      done_ = true;
      return false;
    }
    const std::string where = "tar shard '" + path_ + "' header at byte " + std::to_string(at);
    // Checksum: the header's bytes with the checksum field read as spaces (unsigned sum; old writers used signed).
    int64_t usum = 0, ssum = 0;
    for (int i = 0; i < kBlock; ++i) {
      const char c = (i >= 148 && i < 156) ? ' ' : h[i];
      usum += static_cast<unsigned char>(c);
      ssum += static_cast<signed char>(c);
    }
    const int64_t chk = parse_number(h + 148, 8, where + ": checksum");
    MOH_CHECK(chk == usum || chk == ssum, where, ": bad checksum (not a tar file, or damaged)");
    const int64_t size = parse_number(h + 124, 12, where + ": size");
    const char type = h[156];
    const int64_t data = at + kBlock;
    const int64_t available = std::max<int64_t>(0, std::min(size, file_size_ - data));
    pos_ = data + padded(size);
    if (type == 'x' || type == 'g' || type == 'L' || type == 'K') {  // meta records for the next member
      MOH_CHECK(available == size, where, ": the archive ends inside a pax/GNU record");
      MOH_CHECK(size <= (int64_t(1) << 20), where, ": pax/GNU record of ", size, " bytes is too large");
      std::string text(static_cast<size_t>(size), '\0');
      in_.seekg(data);
      in_.read(text.data(), size);
      if (type == 'L') long_name = field_string(text.data(), text.size());
      if (type == 'x') {
        // Records "<len> <key>=<value>\n"; <len> counts the whole record.
        for (size_t p = 0; p < text.size();) {
          const auto sp = text.find(' ', p);
          MOH_CHECK(sp != std::string::npos, where, ": bad pax record");
          const size_t len = std::stoul(text.substr(p, sp - p));
          MOH_CHECK(len > sp - p && p + len <= text.size(), where, ": bad pax record length");
          const std::string rec = text.substr(sp + 1, p + len - sp - 2);  // without the trailing '\n'
          const auto eq = rec.find('=');
          if (eq != std::string::npos) {
            const std::string key = rec.substr(0, eq), value = rec.substr(eq + 1);
            if (key == "path") pax_path = value;
            if (key == "size") pax_size = std::stoll(value);
          }
          p += len;
        }
      }
      continue;
    }
    m = TarMember{};
    m.type = type == '\0' ? '0' : type;
    m.header_offset = at;
    m.data_offset = data;
    m.size = pax_size >= 0 ? pax_size : size;
    if (pax_size >= 0) {
      pos_ = data + padded(m.size);
    }
    m.available = std::max<int64_t>(0, std::min(m.size, file_size_ - data));
    if (!pax_path.empty()) {
      m.name = pax_path;
    } else if (!long_name.empty()) {
      m.name = long_name;
    } else {
      m.name = field_string(h, 100);
      const std::string prefix = std::memcmp(h + 257, "ustar", 5) == 0 ? field_string(h + 345, 155) : "";
      if (!prefix.empty()) m.name = prefix + "/" + m.name;
    }
    if (m.truncated()) {
      truncation_ = "member '" + m.name + "' (header at byte " + std::to_string(at) + ") declares " +
                    std::to_string(m.size) + " bytes but only " + std::to_string(m.available) + " are present";
      done_ = true;
    }
    return true;
  }
  return false;
}

std::string TarReader::read_data(const TarMember& m, int64_t max_bytes) {
  MOH_CHECK(!m.truncated(), "tar shard '", path_, "': ", truncation_);
  MOH_CHECK(m.size <= max_bytes, "tar shard '", path_, "': member '", m.name, "' has ", m.size,
            " bytes, more than the ", max_bytes, " expected");
  std::string out(static_cast<size_t>(m.size), '\0');
  in_.seekg(m.data_offset);
  in_.read(out.data(), m.size);
  MOH_CHECK(in_.gcount() == m.size, "cannot read member '", m.name, "' of tar shard '", path_, "'");
  return out;
}

std::vector<uint8_t> read_file_range(const std::string& path, int64_t offset, int64_t size, const std::string& label) {
  std::ifstream in(path, std::ios::binary);
  MOH_CHECK(in.good(), "cannot open '", path, "' to read ", label);
  std::vector<uint8_t> out(static_cast<size_t>(size));
  in.seekg(offset);
  in.read(reinterpret_cast<char*>(out.data()), size);
  MOH_CHECK(in.gcount() == size, label, ": only ", std::max<std::streamsize>(in.gcount(), 0), " of ", size,
            " bytes present (truncated tar member)");
  return out;
}

}  // namespace moh::vit
