// Generation outputs (dit/generation_output.h): grid, file-name slugs, streamed .npz, the staged writer.
#include "dit/generation_output.h"

#include <unistd.h>
#include <zlib.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "common/io/atomic_file.h"
#include "common/error.h"
#include "common/image/image_io.h"

namespace moh::dit {
namespace fs = std::filesystem;

// ------------------------------------------------------------------------------------------------ grid, slug
torch::Tensor make_grid_u8(const torch::Tensor& images, int64_t nrow, int64_t padding) {
  MOH_CHECK(images.dim() == 4 && images.scalar_type() == torch::kUInt8, "make_grid expects uint8 [N, H, W, C]");
  MOH_CHECK(nrow >= 1, "--grid-nrow must be at least 1, got ", nrow);
  const int64_t n = images.size(0), H = images.size(1), W = images.size(2), C = images.size(3);
  const int64_t xmaps = std::min(nrow, n), ymaps = (n + xmaps - 1) / xmaps;
  auto grid = torch::zeros({ymaps * (H + padding) + padding, xmaps * (W + padding) + padding, C}, torch::kUInt8);
  for (int64_t k = 0; k < n; ++k) {
    const int64_t r = k / xmaps, c = k % xmaps;
    grid.slice(0, r * (H + padding) + padding, r * (H + padding) + padding + H)
        .slice(1, c * (W + padding) + padding, c * (W + padding) + padding + W)
        .copy_(images[k]);
  }
  return grid;
}

std::string slugify(const std::string& s) {
  std::string out;
  for (unsigned char ch : s) {
    if (std::isalnum(ch)) out += static_cast<char>(std::tolower(ch));
    else if (!out.empty() && out.back() != '_') out += '_';
  }
  while (!out.empty() && out.back() == '_') out.pop_back();
  return out.substr(0, 48);
}

// ------------------------------------------------------------------------------------------------ npz
// A stored (uncompressed) zip with one member `name`.npy, streamed: sizes are known up front, the CRC is patched
// into the local header at the end. ZIP64 records are written when the member reaches 4 GiB (50k 256^2 images
// are 9.8 GB).
struct NpzStream {
  std::FILE* f = nullptr;
  std::string path;
  std::string member;
  uint64_t data_size = 0, written = 0;
  uint32_t crc = 0;
  bool zip64 = false;
  size_t local_header_size = 0;

  static void put16(std::string& s, uint16_t v) { s += char(v & 0xff), s += char(v >> 8); }
  static void put32(std::string& s, uint32_t v) { for (int i = 0; i < 4; ++i) s += char((v >> (8 * i)) & 0xff); }
  static void put64(std::string& s, uint64_t v) { for (int i = 0; i < 8; ++i) s += char((v >> (8 * i)) & 0xff); }

  void raw(const void* p, size_t n) {
    MOH_CHECK(std::fwrite(p, 1, n, f) == n, "writing '", path, "' failed: ", std::strerror(errno), " (disk full?)");
  }

  void begin(const std::string& p, const std::string& name, const std::vector<int64_t>& shape, bool force_zip64) {
    path = p;
    member = name + ".npy";
    // .npy v1.0 header: magic, version, little-endian header length, dict padded with spaces to 64-byte alignment.
    std::string dict = "{'descr': '|u1', 'fortran_order': False, 'shape': (";
    uint64_t numel = 1;
    for (size_t i = 0; i < shape.size(); ++i) {
      dict += (i ? ", " : "") + std::to_string(shape[i]);
      numel *= static_cast<uint64_t>(shape[i]);
    }
    if (shape.size() == 1) dict += ",";  // Python's 1-tuple
    dict += "), }";
    const size_t pre = 10;
    size_t total = pre + dict.size() + 1;
    dict.append((64 - total % 64) % 64, ' ');
    dict += '\n';
    std::string npy_header = "\x93NUMPY";
    npy_header += char(1), npy_header += char(0);
    put16(npy_header, static_cast<uint16_t>(dict.size()));
    npy_header += dict;

    data_size = npy_header.size() + numel;
    zip64 = force_zip64 || data_size >= 0xFFFFFFFFull;
    f = std::fopen(path.c_str(), "wb");
    MOH_CHECK(f != nullptr, "cannot write '", path, "': ", std::strerror(errno));
    std::string lh;
    put32(lh, 0x04034b50);
    put16(lh, zip64 ? 45 : 20);  // version needed
    put16(lh, 0);                // flags
    put16(lh, 0);                // stored
    put16(lh, 0);                // time
    put16(lh, 0x21);             // date 1980-01-01
    put32(lh, 0);                // crc, patched in finish()
    put32(lh, zip64 ? 0xFFFFFFFFu : static_cast<uint32_t>(data_size));
    put32(lh, zip64 ? 0xFFFFFFFFu : static_cast<uint32_t>(data_size));
    put16(lh, static_cast<uint16_t>(member.size()));
    put16(lh, zip64 ? 20 : 0);
    lh += member;
    if (zip64) {
      put16(lh, 0x0001);
      put16(lh, 16);
      put64(lh, data_size);  // uncompressed
      put64(lh, data_size);  // compressed
    }
    local_header_size = lh.size();
    raw(lh.data(), lh.size());
    write(npy_header.data(), npy_header.size());
  }

  void write(const void* p, size_t n) {
    const auto* b = static_cast<const Bytef*>(p);
    for (size_t off = 0; off < n;) {  // zlib's crc32 takes a 32-bit length
      const uInt chunk = static_cast<uInt>(std::min<size_t>(n - off, 1u << 30));
      crc = static_cast<uint32_t>(::crc32(crc, b + off, chunk));
      off += chunk;
    }
    raw(p, n);
    written += n;
  }

  void finish() {
    MOH_CHECK(written == data_size, "internal error: npz member '", member, "' got ", written, " bytes, expected ",
              data_size);
    const uint64_t cd_offset = local_header_size + data_size;
    std::string cd;
    put32(cd, 0x02014b50);
    put16(cd, 45);  // made by
    put16(cd, zip64 ? 45 : 20);
    put16(cd, 0);
    put16(cd, 0);
    put16(cd, 0);
    put16(cd, 0x21);
    put32(cd, crc);
    put32(cd, zip64 ? 0xFFFFFFFFu : static_cast<uint32_t>(data_size));
    put32(cd, zip64 ? 0xFFFFFFFFu : static_cast<uint32_t>(data_size));
    put16(cd, static_cast<uint16_t>(member.size()));
    put16(cd, zip64 ? 20 : 0);
    put16(cd, 0);  // comment
    put16(cd, 0);  // disk
    put16(cd, 0);  // internal attributes
    put32(cd, 0);  // external attributes
    put32(cd, 0);  // local header offset
    cd += member;
    if (zip64) {
      put16(cd, 0x0001);
      put16(cd, 16);
      put64(cd, data_size);
      put64(cd, data_size);
    }
    std::string end;
    const bool big_offset = zip64 || cd_offset >= 0xFFFFFFFFull;
    if (big_offset) {
      const uint64_t z64_offset = cd_offset + cd.size();
      put32(end, 0x06064b50);
      put64(end, 44);
      put16(end, 45);
      put16(end, 45);
      put32(end, 0);
      put32(end, 0);
      put64(end, 1);
      put64(end, 1);
      put64(end, cd.size());
      put64(end, cd_offset);
      put32(end, 0x07064b50);
      put32(end, 0);
      put64(end, z64_offset);
      put32(end, 1);
    }
    put32(end, 0x06054b50);
    put16(end, 0);
    put16(end, 0);
    put16(end, 1);
    put16(end, 1);
    put32(end, static_cast<uint32_t>(cd.size()));
    put32(end, big_offset ? 0xFFFFFFFFu : static_cast<uint32_t>(cd_offset));
    put16(end, 0);
    raw(cd.data(), cd.size());
    raw(end.data(), end.size());
    // Patch the CRC into the local header (offset 14).
    std::string c;
    put32(c, crc);
    MOH_CHECK(std::fseek(f, 14, SEEK_SET) == 0, "seeking in '", path, "' failed: ", std::strerror(errno));
    raw(c.data(), c.size());
    MOH_CHECK(std::fflush(f) == 0 && ::fsync(fileno(f)) == 0, "flushing '", path, "' failed: ", std::strerror(errno));
    std::fclose(f);
    f = nullptr;
  }

  ~NpzStream() {
    if (f) std::fclose(f);
  }
};

void write_npz_u8(const std::string& path, const std::string& name, const torch::Tensor& array, bool force_zip64) {
  MOH_CHECK(array.scalar_type() == torch::kUInt8, "write_npz_u8 expects a uint8 tensor");
  auto a = array.to(torch::kCPU).contiguous();
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    NpzStream npz;
    npz.begin(tmp, name, a.sizes().vec(), force_zip64);
    npz.write(a.data_ptr(), static_cast<size_t>(a.numel()));
    npz.finish();
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    throw Error("cannot move the finished file into place at '" + path + "': " + std::strerror(err));
  }
}

void write_npz_u8_streamed(const std::string& path, const std::string& name, const std::vector<int64_t>& shape,
                           const std::function<torch::Tensor(int64_t)>& item) {
  MOH_CHECK(!shape.empty(), "internal error: write_npz_u8_streamed needs a shape");
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  try {
    NpzStream npz;
    npz.begin(tmp, name, shape, false);
    int64_t per_item = 1;
    for (size_t d = 1; d < shape.size(); ++d) per_item *= shape[d];
    for (int64_t i = 0; i < shape[0]; ++i) {
      auto t = item(i).to(torch::kCPU).contiguous();
      MOH_CHECK(t.scalar_type() == torch::kUInt8 && t.numel() == per_item, "item ", i, " of '", path,
                "' has shape ", t.sizes(), ", expected ", per_item, " uint8 values");
      npz.write(t.data_ptr(), static_cast<size_t>(t.numel()));
    }
    npz.finish();
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    throw Error("cannot move the finished file into place at '" + path + "': " + std::strerror(err));
  }
  fsync_parent_dir(path);
}

// ------------------------------------------------------------------------------------------------ writer
GenerationWriter::GenerationWriter(OutputOptions options, int64_t total_images)
    : o_(std::move(options)), total_(total_images) {
  MOH_CHECK(!o_.out_dir.empty(), "--out is required (the folder to write images into)");
  std::error_code ec;
  fs::path out = fs::absolute(o_.out_dir, ec).lexically_normal();
  if (!out.has_filename()) out = out.parent_path();  // "dir/" -> "dir"
  out_path_ = out.string();
  if (fs::exists(out, ec)) {
    MOH_CHECK(fs::is_directory(out, ec), "--out '", o_.out_dir, "' exists and is not a folder; choose a folder path");
    MOH_CHECK(o_.overwrite || fs::is_empty(out, ec), "--out '", o_.out_dir, "' already holds files; choose a new "
              "folder or pass --overwrite to replace same-named files in it");
  }
  const fs::path parent = out.parent_path();
  fs::create_directories(parent, ec);
  MOH_CHECK(!ec && fs::is_directory(parent), "cannot create the folder '", parent.string(), "' for --out '",
            o_.out_dir, "': ", ec ? ec.message() : "not a folder", "; choose a writable --out");
  // Staging folder beside the target (same file system, so the final moves are renames).
  const fs::path staging = parent / ("." + out.filename().string() + ".partial-" + std::to_string(::getpid()));
  fs::remove_all(staging, ec);
  fs::create_directory(staging, ec);
  MOH_CHECK(!ec, "cannot write into '", parent.string(), "' for --out '", o_.out_dir, "': ", ec.message(),
            "; choose a writable --out");
  staging_ = staging.string();
  // Probe actual writability now (permissions, read-only mounts) rather than after sampling.
  write_file_atomic(staging_ + "/.probe", "ok");
  fs::remove(staging_ + "/.probe", ec);
}

GenerationWriter::~GenerationWriter() {
  npz_.reset();
  if (!committed_ && !staging_.empty()) {
    std::error_code ec;
    fs::remove_all(staging_, ec);
  }
}

void GenerationWriter::add(const GeneratedBatch& batch, const std::function<std::string(int64_t)>& name_of) {
  const auto& u8 = batch.images_u8;  // [b, H, W, 3]
  if (o_.npz) {
    if (!npz_) {
      npz_ = std::make_unique<NpzStream>();
      npz_->begin(staging_ + "/samples.npz", "arr_0", {total_, u8.size(1), u8.size(2), u8.size(3)}, false);
    }
    npz_->write(u8.data_ptr(), static_cast<size_t>(u8.numel()));
  }
  for (int64_t i = 0; i < u8.size(0); ++i) {
    const int64_t index = batch.first_index + i;
    const int64_t label = batch.labels.at(i);
    if (o_.pngs) {
      char prefix[32];
      std::snprintf(prefix, sizeof prefix, "%06lld_", static_cast<long long>(index));
      const std::string file = prefix + name_of(label) + ".png";
      encode_png(staging_ + "/" + file, image_from_hwc_tensor(u8[i]));
      files_.push_back(file);
    }
    if (o_.grid) grid_images_.push_back(u8[i].clone());
    per_class_count_[label]++;
  }
}

void GenerationWriter::commit(nlohmann::json sidecar) {
  MOH_CHECK(!committed_, "internal error: GenerationWriter::commit called twice");
  if (npz_) {
    npz_->finish();
    npz_.reset();
    files_.push_back("samples.npz");
  }
  if (o_.grid && !grid_images_.empty()) {
    auto grid = make_grid_u8(torch::stack(grid_images_), o_.grid_nrow);
    encode_png(staging_ + "/grid.png", image_from_hwc_tensor(grid));
    files_.push_back("grid.png");
  }
  files_.push_back("generation.json");
  sidecar["files"] = files_;
  write_file_atomic(staging_ + "/generation.json", sidecar.dump(2) + "\n");

  std::error_code ec;
  const fs::path out = out_path_;
  if (!fs::exists(out, ec)) {
    fs::rename(staging_, out, ec);  // the whole folder appears at once
    MOH_CHECK(!ec, "cannot move the finished outputs into '", o_.out_dir, "': ", ec.message());
    fsync_parent_dir(out.string());
  } else {
    for (const auto& f : files_) {
      fs::rename(fs::path(staging_) / f, out / f, ec);
      MOH_CHECK(!ec, "cannot move '", f, "' into '", o_.out_dir, "': ", ec.message());
    }
    fsync_parent_dir((out / "generation.json").string());
    fs::remove_all(staging_, ec);
  }
  committed_ = true;
}

}  // namespace moh::dit
