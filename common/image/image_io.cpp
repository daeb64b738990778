// Image decoding (stb_image always, OpenCV when built) to RGB8, PNG encoding (stb_image_write), tensor conversions.
// Mirrors torchvision datasets.folder.pil_loader: PIL Image.open(f).convert('RGB') (see image_io.h for the rules).
#include "common/image/image_io.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "common/io/atomic_file.h"
#include "common/error.h"

// The one translation unit holding the stb implementations (header-only libraries).
#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_STDIO  // we read files ourselves (clear errors, one code path for files and memory)
#define STBI_FAILURE_USERMSG
#include <stb_image.h>
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#include <stb_image_write.h>

#ifdef MOH_WITH_OPENCV
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#endif

namespace moh {
namespace {

// Pillow refuses images above 2 * Image.MAX_IMAGE_PIXELS (DecompressionBombError); so do we, before decoding.
constexpr int64_t kMaxPixels = 2LL * 89478485;

void check_dimensions(int64_t w, int64_t h, const std::string& label) {
  MOH_CHECK(w > 0 && h > 0, "image '", label, "' has an empty size ", w, "x", h);
  MOH_CHECK(w * h <= kMaxPixels, "image '", label, "' is ", w, "x", h, " = ", w * h, " pixels, more than the limit of ",
            kMaxPixels, " (Pillow's decompression-bomb limit); downscale it first");
}

std::vector<uint8_t> read_file(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  MOH_CHECK(fs::exists(st), "cannot open image file '", path, "': ", ec ? ec.message() : "no such file",
            " (check the path)");
  MOH_CHECK(fs::is_regular_file(st), "'", path, "' is not a regular file (a folder?); give the path of an image file");
  const uintmax_t n = fs::file_size(path, ec);
  MOH_CHECK(!ec, "cannot read image file '", path, "': ", ec.message());
  MOH_CHECK(n > 0, "image file '", path, "' is empty");
  std::vector<uint8_t> bytes(static_cast<size_t>(n));
  std::ifstream f(path, std::ios::binary);
  f.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(n));
  MOH_CHECK(f.gcount() == static_cast<std::streamsize>(n), "cannot read image file '", path, "': ",
            std::strerror(errno), " (is it readable?)");
  return bytes;
}

ImageU8 decode_stb(const uint8_t* data, size_t size, const std::string& label) {
  MOH_CHECK(size <= static_cast<size_t>(std::numeric_limits<int>::max()), "image '", label, "' is too large (",
            size, " bytes) for the stb decoder");
  const int len = static_cast<int>(size);
  int w = 0, h = 0, channels = 0;
  if (!stbi_info_from_memory(data, len, &w, &h, &channels))
    throw Error("cannot decode image '" + label + "': " + stbi_failure_reason() +
                " (stb decodes JPEG (not 12-bit/arithmetic), PNG, BMP, GIF, TGA, PNM; is the file complete?)");
  MOH_CHECK(!stbi_is_hdr_from_memory(data, len), "image '", label,
            "' is a Radiance HDR image; only 8/16-bit images are supported (convert it to PNG first)");
  check_dimensions(w, h, label);
  // Native channel count (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA); 16-bit samples arrive as their high byte, CMYK JPEGs
  // as RGB. The conversion to RGB is ours (image_from_interleaved) so all sources follow PIL's convert('RGB').
  stbi_uc* px = stbi_load_from_memory(data, len, &w, &h, &channels, 0);
  if (!px)
    throw Error("cannot decode image '" + label + "': " + stbi_failure_reason() + " (the file is corrupt or truncated)");
  try {
    ImageU8 out = image_from_interleaved(px, w, h, channels);
    stbi_image_free(px);
    return out;
  } catch (...) {
    stbi_image_free(px);
    throw;
  }
}

#ifdef MOH_WITH_OPENCV
ImageU8 decode_opencv(const uint8_t* data, size_t size, const std::string& label) {
  MOH_CHECK(size <= static_cast<size_t>(std::numeric_limits<int>::max()), "image '", label, "' is too large (",
            size, " bytes) for the OpenCV decoder");
  // Check the size from the header first when stb understands the format (cheap; refuses decompression bombs).
  int w = 0, h = 0, channels = 0;
  if (stbi_info_from_memory(data, static_cast<int>(size), &w, &h, &channels)) check_dimensions(w, h, label);
  cv::Mat m;
  try {
    const cv::Mat buf(1, static_cast<int>(size), CV_8UC1, const_cast<uint8_t*>(data));
    // IMREAD_COLOR: 8-bit BGR (gray replicated, alpha stripped, 16-bit -> high byte); EXIF orientation is ignored
    // because PIL's loader (and so the official evaluation) does not apply it either.
    m = cv::imdecode(buf, cv::IMREAD_COLOR | cv::IMREAD_IGNORE_ORIENTATION);
  } catch (const cv::Exception& e) {
    throw Error("cannot decode image '" + label + "': OpenCV: " + e.what());
  }
  MOH_CHECK(!m.empty(), "cannot decode image '", label,
            "': OpenCV does not recognise the data (unknown format, corrupt or truncated file)");
  MOH_CHECK(m.type() == CV_8UC3, "cannot decode image '", label, "': OpenCV returned an unexpected pixel type");
  check_dimensions(m.cols, m.rows, label);
  ImageU8 out;
  out.width = m.cols;
  out.height = m.rows;
  out.rgb.resize(static_cast<size_t>(out.width) * out.height * 3);
  for (int y = 0; y < m.rows; ++y) {
    const uint8_t* src = m.ptr<uint8_t>(y);
    uint8_t* dst = out.rgb.data() + static_cast<size_t>(y) * out.width * 3;
    for (int x = 0; x < m.cols; ++x) {  // BGR -> RGB
      dst[3 * x + 0] = src[3 * x + 2];
      dst[3 * x + 1] = src[3 * x + 1];
      dst[3 * x + 2] = src[3 * x + 0];
    }
  }
  return out;
}
#endif

}  // namespace

void validate_image(const ImageU8& img, const std::string& what) {
  MOH_CHECK(img.width > 0 && img.height > 0, what, ": image is empty (", img.width, "x", img.height, ")");
  MOH_CHECK(img.rgb.size() == static_cast<size_t>(img.width) * img.height * 3, what, ": image buffer holds ",
            img.rgb.size(), " bytes, expected width*height*3 = ", static_cast<size_t>(img.width) * img.height * 3);
}

std::string image_backend() {
#ifdef MOH_WITH_OPENCV
  return "opencv";
#else
  return "stb";
#endif
}

std::vector<std::string> image_backends() {
#ifdef MOH_WITH_OPENCV
  return {"opencv", "stb"};
#else
  return {"stb"};
#endif
}

ImageU8 decode_image_memory_with(const uint8_t* data, size_t size, const std::string& label,
                                 const std::string& backend) {
  MOH_CHECK(data != nullptr && size > 0, "image '", label, "' is empty");
  if (backend == "stb") return decode_stb(data, size, label);
  if (backend == "opencv") {
#ifdef MOH_WITH_OPENCV
    return decode_opencv(data, size, label);
#else
    throw Unsupported("this build has no OpenCV image backend (rebuild with -DMOH_OPENCV=ON); use backend 'stb'");
#endif
  }
  throw Error("unknown image backend '" + backend + "' (use 'stb' or 'opencv')");
}

ImageU8 decode_image_file_with(const std::string& path, const std::string& backend) {
  const auto bytes = read_file(path);
  return decode_image_memory_with(bytes.data(), bytes.size(), path, backend);
}

ImageU8 decode_image_memory(const uint8_t* data, size_t size, const std::string& label) {
#ifdef MOH_WITH_OPENCV
  // JPEG goes to OpenCV: its libjpeg-turbo decodes like Pillow, stb's own IDCT is a level off here and there. What stb
  // reads losslessly (PNG, BMP, GIF, TGA, PNM) goes to stb: the same pixels, and libpng's stderr warnings (e.g. about
  // ICC profiles) stay quiet. Everything else (TIFF, WebP, ...) is left to OpenCV.
  const bool jpeg = size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF;
  int w = 0, h = 0, channels = 0;
  if (!jpeg && data != nullptr && size > 0 && size <= static_cast<size_t>(std::numeric_limits<int>::max()) &&
      stbi_info_from_memory(data, static_cast<int>(size), &w, &h, &channels))
    return decode_stb(data, size, label);
#endif
  return decode_image_memory_with(data, size, label, image_backend());
}

ImageU8 decode_image_file(const std::string& path) {
  const auto bytes = read_file(path);
  return decode_image_memory(bytes.data(), bytes.size(), path);
}

std::vector<uint8_t> encode_png_memory(const ImageU8& img) {
  validate_image(img, "encode_png");
  std::vector<uint8_t> out;
  auto sink = [](void* ctx, void* data, int n) {
    auto* v = static_cast<std::vector<uint8_t>*>(ctx);
    v->insert(v->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + n);
  };
  const int ok = stbi_write_png_to_func(sink, &out, img.width, img.height, 3, img.rgb.data(), img.width * 3);
  MOH_CHECK(ok && !out.empty(), "encode_png: PNG encoding of a ", img.width, "x", img.height, " image failed");
  return out;
}

void encode_png(const std::string& path, const ImageU8& img) {
  const auto bytes = encode_png_memory(img);
  AtomicFile f(path);
  f.write(bytes.data(), bytes.size());
  f.commit();
}

ImageU8 image_from_interleaved(const uint8_t* pixels, int width, int height, int channels) {
  MOH_CHECK(width > 0 && height > 0, "image has an empty size ", width, "x", height);
  MOH_CHECK(channels >= 1 && channels <= 4, "image has ", channels,
            " channels; expected 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA)");
  ImageU8 out;
  out.width = width;
  out.height = height;
  const size_t n = static_cast<size_t>(width) * height;
  out.rgb.resize(n * 3);
  uint8_t* dst = out.rgb.data();
  for (size_t i = 0; i < n; ++i, dst += 3) {
    const uint8_t* s = pixels + i * channels;
    if (channels <= 2) {  // L / LA: replicate gray, drop alpha
      dst[0] = dst[1] = dst[2] = s[0];
    } else {  // RGB / RGBA: keep RGB, drop alpha (PIL's convert('RGB') does not composite)
      dst[0] = s[0];
      dst[1] = s[1];
      dst[2] = s[2];
    }
  }
  return out;
}

ImageU8 image_from_tensor(const torch::Tensor& chw_u8) {
  MOH_CHECK(chw_u8.defined() && chw_u8.dim() == 3 && (chw_u8.size(0) == 3 || chw_u8.size(0) == 1),
            "image_from_tensor: expected a [3,H,W] or [1,H,W] tensor, got ",
            chw_u8.defined() ? chw_u8.sizes() : c10::IntArrayRef{});
  MOH_CHECK(chw_u8.scalar_type() == torch::kUInt8, "image_from_tensor: expected uint8, got ",
            c10::toString(chw_u8.scalar_type()), " (convert with (x.clamp(0, 1) * 255).round().to(torch::kUInt8))");
  // [C,H,W] -> [H,W,C] so pixels are interleaved like every decoder's output.
  auto hwc = chw_u8.detach().to(torch::kCPU).permute({1, 2, 0}).contiguous();
  return image_from_interleaved(hwc.data_ptr<uint8_t>(), static_cast<int>(hwc.size(1)), static_cast<int>(hwc.size(0)),
                                static_cast<int>(hwc.size(2)));
}

ImageU8 image_from_hwc_tensor(const torch::Tensor& hwc_u8) {
  MOH_CHECK(hwc_u8.defined() && hwc_u8.dim() == 3 && hwc_u8.size(2) >= 1 && hwc_u8.size(2) <= 4,
            "image_from_hwc_tensor: expected a [H,W,C] tensor with C in 1..4, got ",
            hwc_u8.defined() ? hwc_u8.sizes() : c10::IntArrayRef{});
  MOH_CHECK(hwc_u8.scalar_type() == torch::kUInt8, "image_from_hwc_tensor: expected uint8, got ",
            c10::toString(hwc_u8.scalar_type()));
  auto c = hwc_u8.detach().to(torch::kCPU).contiguous();
  return image_from_interleaved(c.data_ptr<uint8_t>(), static_cast<int>(c.size(1)), static_cast<int>(c.size(0)),
                                static_cast<int>(c.size(2)));
}

torch::Tensor image_to_hwc_tensor(const ImageU8& img) {
  validate_image(img, "image_to_tensor");
  auto t = torch::empty({img.height, img.width, 3}, torch::kUInt8);  // [H,W,3]
  std::memcpy(t.data_ptr<uint8_t>(), img.rgb.data(), img.rgb.size());
  return t;
}

torch::Tensor image_to_tensor(const ImageU8& img) {
  return image_to_hwc_tensor(img).permute({2, 0, 1}).contiguous();  // [H,W,3] -> [3,H,W]
}

}  // namespace moh
