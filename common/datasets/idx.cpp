// IDX reader and Fashion-MNIST loader (see idx.h).
#include "common/datasets/idx.h"

#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <limits>

#include "common/io/atomic_file.h"
#include "common/error.h"

namespace moh {
namespace {

constexpr uint8_t kTypeUByte = 0x08;

std::vector<uint8_t> read_maybe_gzip(const std::string& path) {
  MOH_CHECK(std::filesystem::is_regular_file(path), "IDX file '", path, "' does not exist or is not a file");
  gzFile f = gzopen(path.c_str(), "rb");  // reads gzip and plain files alike
  MOH_CHECK(f != nullptr, "cannot open IDX file '", path, "'");
  std::vector<uint8_t> out;
  std::vector<uint8_t> chunk(1 << 20);
  for (;;) {
    const int n = gzread(f, chunk.data(), static_cast<unsigned>(chunk.size()));
    if (n < 0) {
      int code = 0;
      const std::string msg = gzerror(f, &code);
      gzclose(f);
      throw Error("IDX file '" + path + "' is corrupt or truncated (zlib: " + msg + "); re-download it");
    }
    if (n == 0) break;
    out.insert(out.end(), chunk.begin(), chunk.begin() + n);
  }
  int code = 0;
  const std::string msg = gzerror(f, &code);
  gzclose(f);
  // A gzip stream cut short ends with Z_BUF_ERROR ("unexpected end of file") rather than a negative read.
  MOH_CHECK(code == Z_OK || code == Z_STREAM_END, "IDX file '", path, "' is corrupt or truncated (zlib: ", msg,
            "); re-download it");
  return out;
}

uint32_t be32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

}  // namespace

IdxArray parse_idx(const std::vector<uint8_t>& bytes, const std::string& source) {
  MOH_CHECK(bytes.size() >= 4, "IDX file '", source, "' is too short (", bytes.size(),
            " bytes) to hold the 4-byte magic; it is empty or truncated");
  MOH_CHECK(bytes[0] == 0 && bytes[1] == 0, "IDX file '", source,
            "' has a bad magic number (first two bytes must be 0): not an IDX file (or still compressed with "
            "something other than gzip)");
  MOH_CHECK(bytes[2] == kTypeUByte, "IDX file '", source, "' has data type code 0x", std::hex, int(bytes[2]),
            std::dec, "; only unsigned bytes (0x08, the MNIST/Fashion-MNIST type) are supported");
  const int ndim = bytes[3];
  MOH_CHECK(ndim >= 1, "IDX file '", source, "' declares 0 dimensions");
  const size_t header = 4 + 4 * size_t(ndim);
  MOH_CHECK(bytes.size() >= header, "IDX file '", source, "' is truncated inside its header (", ndim,
            " dimensions need ", header, " bytes, file has ", bytes.size(), ")");
  IdxArray a;
  uint64_t count = 1;
  for (int i = 0; i < ndim; ++i) {
    const uint32_t d = be32(bytes.data() + 4 + 4 * i);
    MOH_CHECK(d > 0 && d <= uint32_t(std::numeric_limits<int32_t>::max()), "IDX file '", source, "' dimension ", i,
              " has invalid size ", d);
    count *= d;
    MOH_CHECK(count <= (uint64_t(1) << 40), "IDX file '", source, "' declares an absurd element count");
    a.dims.push_back(int64_t(d));
  }
  const uint64_t have = bytes.size() - header;
  MOH_CHECK(have >= count, "IDX file '", source, "' is truncated: header declares ", count, " bytes of data, file has ",
            have, "; re-download it");
  MOH_CHECK(have == count, "IDX file '", source, "' has ", have - count,
            " unexpected trailing bytes after the declared data (wrong dimensions in the header?)");
  a.data.assign(bytes.begin() + header, bytes.end());
  return a;
}

IdxArray read_idx(const std::string& path) { return parse_idx(read_maybe_gzip(path), path); }

torch::Tensor idx_to_tensor(const IdxArray& a) {
  auto t = torch::empty(a.dims, torch::kUInt8);
  std::memcpy(t.data_ptr<uint8_t>(), a.data.data(), a.data.size());
  return t;
}

void write_idx(const std::string& path, const torch::Tensor& u8, bool gzip) {
  MOH_CHECK(u8.scalar_type() == torch::kUInt8, "write_idx: '", path, "' needs a uint8 tensor, got ", u8.scalar_type());
  MOH_CHECK(u8.dim() >= 1 && u8.dim() <= 255, "write_idx: '", path, "' needs 1..255 dimensions");
  auto t = u8.to(torch::kCPU).contiguous();
  std::vector<uint8_t> bytes = {0, 0, kTypeUByte, uint8_t(t.dim())};
  for (int64_t d : t.sizes())
    for (int sh = 24; sh >= 0; sh -= 8) bytes.push_back(uint8_t((uint64_t(d) >> sh) & 0xFF));
  bytes.insert(bytes.end(), t.data_ptr<uint8_t>(), t.data_ptr<uint8_t>() + t.numel());
  if (!gzip) {
    AtomicFile f(path);
    f.write(bytes.data(), bytes.size());
    f.commit();
    return;
  }
  // zlib's gzip framing via deflateInit2 (windowBits 15 + 16), into memory, then one atomic write.
  z_stream zs{};
  MOH_CHECK(deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK,
            "write_idx: zlib deflateInit2 failed");
  std::vector<uint8_t> out(deflateBound(&zs, uLong(bytes.size())) + 64);
  zs.next_in = bytes.data();
  zs.avail_in = uInt(bytes.size());
  zs.next_out = out.data();
  zs.avail_out = uInt(out.size());
  const int rc = deflate(&zs, Z_FINISH);
  const size_t n = zs.total_out;
  deflateEnd(&zs);
  MOH_CHECK(rc == Z_STREAM_END, "write_idx: zlib could not compress '", path, "'");
  AtomicFile f(path);
  f.write(out.data(), n);
  f.commit();
}

namespace {
std::string find_idx_file(const std::string& dir, const std::string& stem) {
  namespace fs = std::filesystem;
  for (const std::string& name : {stem + ".gz", stem}) {
    const fs::path p = fs::path(dir) / name;
    if (fs::is_regular_file(p)) return p.string();
  }
  throw Error("Fashion-MNIST file '" + stem + "[.gz]' not found in '" + dir +
              "'; give the folder holding the four *-ubyte.gz files (Debian: apt install "
              "dataset-fashion-mnist -> /usr/share/datasets/fashion-mnist)");
}
}  // namespace

FashionMnistSplit load_fashion_mnist(const std::string& dir, const std::string& split) {
  std::string kind;
  if (split == "train") kind = "train";
  else if (split == "test" || split == "t10k") kind = "t10k";
  else throw Error("unknown Fashion-MNIST split '" + split + "' (use train or test)");
  const std::string img_path = find_idx_file(dir, kind + "-images-idx3-ubyte");
  const std::string lbl_path = find_idx_file(dir, kind + "-labels-idx1-ubyte");
  const IdxArray img = read_idx(img_path), lbl = read_idx(lbl_path);
  MOH_CHECK(img.dims.size() == 3, "'", img_path, "' must hold images [N, H, W] (idx3), got ", img.dims.size(),
            " dimensions");
  MOH_CHECK(lbl.dims.size() == 1, "'", lbl_path, "' must hold labels [N] (idx1), got ", lbl.dims.size(),
            " dimensions");
  MOH_CHECK(img.dims[0] == lbl.dims[0], "'", img_path, "' holds ", img.dims[0], " images but '", lbl_path,
            "' holds ", lbl.dims[0], " labels");
  FashionMnistSplit s;
  s.images = idx_to_tensor(img);
  s.labels = idx_to_tensor(lbl).to(torch::kInt64);
  const int64_t max_label = s.labels.max().item<int64_t>();
  MOH_CHECK(max_label < int64_t(fashion_mnist_class_names().size()), "'", lbl_path, "' has label ", max_label,
            "; Fashion-MNIST labels are 0..9");
  return s;
}

const std::vector<std::string>& fashion_mnist_class_names() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                 "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

std::string default_fashion_mnist_dir() {
  const std::string d = "/usr/share/datasets/fashion-mnist";
  return std::filesystem::is_directory(d) ? d : "";
}

}  // namespace moh
