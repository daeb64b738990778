// Image decoding (stb_image always; libjpeg-turbo + OpenCV when built with OpenCV) to RGB8, PNG encoding
// (stb_image_write), tensor conversions. Mirrors torchvision datasets.folder.pil_loader: PIL
// Image.open(f).convert('RGB') of Debian's python3-pil 9.4 (see image_io.h for the rules; tests/data/images/formats
// holds PIL's pixels for each format).
#include "common/image/image_io.h"

#include <cerrno>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "common/image/format_headers.h"
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
#include <jpeglib.h>
#include <jerror.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#endif

namespace moh {
namespace {


std::string limit_message(const std::string& label, int64_t w, int64_t h, int64_t limit) {
  return "image '" + label + "' is " + std::to_string(w) + "x" + std::to_string(h) + " = " + std::to_string(w * h) +
         " pixels, more than the limit of " + std::to_string(limit) +
         " (a possible decompression bomb; Pillow refuses it too); if you trust the file, raise the limit with "
         "--max-image-pixels N (API: max_image_pixels)";
}

void check_dimensions(int64_t w, int64_t h, const std::string& label, const ImageDecodeOptions& o) {
  MOH_CHECK(w > 0 && h > 0, "image '", label, "' has an empty size ", w, "x", h);
  if (w * h > o.max_pixels) throw Error(limit_message(label, w, h, o.max_pixels));
}

// The decompression-bomb check, from the header, before any decoder allocates the picture.
void check_header(const uint8_t* data, size_t size, const std::string& label, const ImageDecodeOptions& o) {
  MOH_CHECK(o.max_pixels > 0, "the image pixel limit must be positive (got ", o.max_pixels, ")");
  int64_t w = 0, h = 0;
  if (image_header_size(data, size, &w, &h)) check_dimensions(w, h, label, o);
}

std::string truncated_message(const std::string& label) {
  return "cannot decode image '" + label +
         "': the file is truncated (it ends before the picture is complete; Pillow refuses it too: \"image file is "
         "truncated\")";
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

// stb reads through these callbacks so that a decoder asking for bytes past the end is seen: stb itself pads a
// truncated stream with zeros and returns a picture (grey/black where the data is missing), Pillow refuses it.
struct StbReader {
  const uint8_t* data;
  size_t size, pos = 0;
  bool overrun = false;
  static int read(void* u, char* out, int n) {
    auto* r = static_cast<StbReader*>(u);
    const size_t k = std::min(static_cast<size_t>(n), r->size - r->pos);
    if (k == 0) r->overrun = true;
    std::memcpy(out, r->data + r->pos, k);
    r->pos += k;
    return static_cast<int>(k);
  }
  static void skip(void* u, int n) {
    auto* r = static_cast<StbReader*>(u);
    if (n < 0) {
      r->pos -= std::min(r->pos, static_cast<size_t>(-n));
      return;
    }
    if (static_cast<size_t>(n) > r->size - r->pos) r->overrun = true;
    r->pos = std::min(r->size, r->pos + static_cast<size_t>(n));
  }
  static int eof(void* u) {
    auto* r = static_cast<StbReader*>(u);
    return r->pos >= r->size;
  }
};


ImageU8 decode_stb(const uint8_t* data, size_t size, const std::string& label, const ImageDecodeOptions& o) {
  MOH_CHECK(size <= static_cast<size_t>(std::numeric_limits<int>::max()), "image '", label, "' is too large (",
            size, " bytes) for the stb decoder");
  std::vector<uint8_t> patched;
  patched = image_format::is_jpeg(data, size) ? image_format::jpeg_with_adobe_cmyk(data, size)
                                               : image_format::gif_without_transparency(data, size);
  if (!patched.empty()) {
    data = patched.data();
    size = patched.size();
  }
  const int len = static_cast<int>(size);
  int w = 0, h = 0, channels = 0;
  if (!stbi_info_from_memory(data, len, &w, &h, &channels)) {
    std::string why = stbi_failure_reason();
    int64_t ow = 0, oh = 0;
    if (image_format::tiff_size(data, size, &ow, &oh) || image_format::webp_size(data, size, &ow, &oh))
      why = "TIFF and WebP are read by the OpenCV backend only (builds with OpenCV: -DMOH_OPENCV=ON)";
    throw Error("cannot decode image '" + label + "': " + why +
                " (stb decodes JPEG (not 12-bit/arithmetic), PNG, BMP, GIF, TGA, PNM; is the file complete?)");
  }
  MOH_CHECK(!stbi_is_hdr_from_memory(data, len), "image '", label,
            "' is a Radiance HDR image; only 8/16-bit images are supported (convert it to PNG first)");
  check_dimensions(w, h, label, o);
  // Native channel count (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA); 16-bit samples arrive as their high byte, CMYK JPEGs
  // as RGB (stb's formula is Pillow's: see decode_libjpeg). The conversion to RGB is ours (image_from_interleaved)
  // so all sources follow PIL's convert('RGB'). 16-bit gray is the exception: PIL opens it as mode I (32-bit
  // integers) and convert('RGB') clips at 255 instead of taking the high byte.
  const bool gray16 = channels == 1 && stbi_is_16_bit_from_memory(data, len);
  StbReader reader{data, size};
  const stbi_io_callbacks io{&StbReader::read, &StbReader::skip, &StbReader::eof};
  void* px = gray16 ? static_cast<void*>(stbi_load_16_from_callbacks(&io, &reader, &w, &h, &channels, 0))
                    : static_cast<void*>(stbi_load_from_callbacks(&io, &reader, &w, &h, &channels, 0));
  // PNG: stb itself fails when a chunk it needs is cut (IDAT: "outofdata"), and it reads a few bytes past IEND's type,
  // which Pillow does not need either (it decodes a PNG whose last 2 bytes are missing); so only stb's verdict counts.
  const bool truncated = reader.overrun && !(size >= 4 && std::memcmp(data, "\x89PNG", 4) == 0);
  if (!px) {
    if (truncated) throw Error(truncated_message(label));
    throw Error("cannot decode image '" + label + "': " + stbi_failure_reason() + " (the file is corrupt or truncated)");
  }
  try {
    MOH_CHECK(!truncated, truncated_message(label));
    ImageU8 out;
    if (gray16) {
      std::vector<uint8_t> clipped(static_cast<size_t>(w) * h);
      const auto* s = static_cast<const uint16_t*>(px);
      for (size_t i = 0; i < clipped.size(); ++i) clipped[i] = static_cast<uint8_t>(std::min<int>(s[i], 255));
      out = image_from_interleaved(clipped.data(), w, h, 1);
    } else {
      out = image_from_interleaved(static_cast<const uint8_t*>(px), w, h, channels);
    }
    stbi_image_free(px);
    return out;
  } catch (...) {
    stbi_image_free(px);
    throw;
  }
}

#ifdef MOH_WITH_OPENCV
// libjpeg-turbo, driven as Pillow's JpegDecode.c drives it: default DCT (islow) and fancy upsampling, output RGB for
// colour, gray for gray, CMYK for CMYK/YCCK (libjpeg converts YCCK). Running out of data is what Pillow reports as
// "image file is truncated" (its source suspends; ours, jpeg_mem_src, emits JWRN_JPEG_EOF and pads), so that warning
// fails the decode; other warnings (corrupt data libjpeg recovers from) are ignored, as Pillow ignores them.
struct JpegErr {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  bool eof = false;
  char msg[JMSG_LENGTH_MAX] = {};
};

void jpeg_error_exit(j_common_ptr c) {
  auto* e = reinterpret_cast<JpegErr*>(c->err);
  c->err->format_message(c, e->msg);
  std::longjmp(e->jump, 1);
}

void jpeg_emit(j_common_ptr c, int level) {
  if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF) reinterpret_cast<JpegErr*>(c->err)->eof = true;
}

// No C++ object with a destructor lives in this frame (longjmp target); `pixels` is the caller's.
bool run_libjpeg(jpeg_decompress_struct* cinfo, JpegErr* err, const uint8_t* data, size_t size,
                 const std::string* label, const ImageDecodeOptions* o, std::vector<uint8_t>* pixels, int* comps,
                 std::string* limit_error) {
  if (setjmp(err->jump)) return false;
  jpeg_mem_src(cinfo, const_cast<unsigned char*>(data), static_cast<unsigned long>(size));
  jpeg_read_header(cinfo, TRUE);
  if (err->eof) return false;
  const int64_t w = cinfo->image_width, h = cinfo->image_height;
  if (w * h > o->max_pixels) {
    *limit_error = limit_message(*label, w, h, o->max_pixels);
    return false;
  }
  if (cinfo->num_components == 1)
    cinfo->out_color_space = JCS_GRAYSCALE;
  else if (cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK)
    cinfo->out_color_space = JCS_CMYK;
  else
    cinfo->out_color_space = JCS_RGB;
  jpeg_start_decompress(cinfo);
  *comps = cinfo->output_components;
  const size_t stride = static_cast<size_t>(cinfo->output_width) * cinfo->output_components;
  pixels->resize(stride * cinfo->output_height);
  while (cinfo->output_scanline < cinfo->output_height && !err->eof) {
    JSAMPROW row = pixels->data() + stride * cinfo->output_scanline;
    jpeg_read_scanlines(cinfo, &row, 1);
  }
  if (!err->eof) jpeg_finish_decompress(cinfo);  // reads up to EOI: a missing EOI is truncation for Pillow too
  return !err->eof;
}

ImageU8 decode_libjpeg(const uint8_t* data, size_t size, const std::string& label, const ImageDecodeOptions& o) {
  jpeg_decompress_struct cinfo;
  JpegErr err;
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = jpeg_error_exit;
  err.pub.emit_message = jpeg_emit;
  jpeg_create_decompress(&cinfo);
  std::vector<uint8_t> pixels;
  std::string limit_error;
  int comps = 0;
  const bool ok = run_libjpeg(&cinfo, &err, data, size, &label, &o, &pixels, &comps, &limit_error);
  const int w = static_cast<int>(cinfo.output_width), h = static_cast<int>(cinfo.output_height);
  jpeg_destroy_decompress(&cinfo);
  if (!limit_error.empty()) throw Error(limit_error);
  if (err.eof) throw Error(truncated_message(label));
  if (!ok) throw Error("cannot decode image '" + label + "': libjpeg: " + err.msg + " (the file is corrupt)");
  if (comps == 4) {
    // Pillow reads CMYK JPEGs as "CMYK;I" (Adobe polarity, always: JpegImagePlugin), i.e. c' = 255 - C for each
    // of C, M, Y, K as libjpeg delivers them, then Convert.c cmyk2rgb: R = CLIP8(nk - MULDIV255(c', nk)) with
    // nk = 255 - k' = K and MULDIV255(a, b) = ((a*b + 128) >> 8) + a*b + 128) >> 8 (a*b/255 rounded).
    ImageU8 out;
    out.width = w;
    out.height = h;
    out.rgb.resize(static_cast<size_t>(w) * h * 3);
    for (size_t i = 0, n = static_cast<size_t>(w) * h; i < n; ++i) {
      const uint8_t* s = pixels.data() + 4 * i;
      const int nk = s[3];
      for (int c = 0; c < 3; ++c) {
        const int t = (255 - s[c]) * nk + 128;
        const int v = nk - (((t >> 8) + t) >> 8);
        out.rgb[3 * i + c] = static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
      }
    }
    return out;
  }
  return image_from_interleaved(pixels.data(), w, h, comps);
}

ImageU8 decode_opencv(const uint8_t* data, size_t size, const std::string& label, const ImageDecodeOptions& o) {
  MOH_CHECK(size <= static_cast<size_t>(std::numeric_limits<int>::max()), "image '", label, "' is too large (",
            size, " bytes) for the OpenCV decoder");
  if (image_format::is_jpeg(data, size)) return decode_libjpeg(data, size, label, o);
  // What stb reads losslessly (PNG, BMP, GIF, TGA, PNM) goes to stb: it is exact where Pillow is (16-bit gray
  // clipping, GIF/PNG palettes), sees truncation, and keeps libpng's stderr warnings (e.g. ICC profiles) quiet.
  int w = 0, h = 0, channels = 0;
  if (stbi_info_from_memory(data, static_cast<int>(size), &w, &h, &channels)) return decode_stb(data, size, label, o);
  cv::Mat m;
  try {
    const cv::Mat buf(1, static_cast<int>(size), CV_8UC1, const_cast<uint8_t*>(data));
    // IMREAD_COLOR: 8-bit BGR (gray replicated, alpha stripped, 16-bit -> high byte); EXIF orientation is ignored
    // because PIL's loader (and so the official evaluation) does not apply it either.
    m = cv::imdecode(buf, cv::IMREAD_COLOR | cv::IMREAD_IGNORE_ORIENTATION);
  } catch (const cv::Exception& e) {
    throw Error("cannot decode image '" + label + "': OpenCV: " + e.err);
  }
  MOH_CHECK(!m.empty(), "cannot decode image '", label,
            "': OpenCV does not recognise the data (unknown format, corrupt or truncated file)");
  MOH_CHECK(m.type() == CV_8UC3, "cannot decode image '", label, "': OpenCV returned an unexpected pixel type");
  check_dimensions(m.cols, m.rows, label, o);
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

bool image_header_size(const uint8_t* data, size_t size, int64_t* width, int64_t* height) {
  if (data == nullptr || size == 0) return false;
  int w = 0, h = 0, channels = 0;
  if (size <= static_cast<size_t>(std::numeric_limits<int>::max()) &&
      stbi_info_from_memory(data, static_cast<int>(size), &w, &h, &channels)) {
    *width = w;
    *height = h;
    return true;
  }
  return image_format::tiff_size(data, size, width, height) || image_format::webp_size(data, size, width, height);
}

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
                                 const std::string& backend, const ImageDecodeOptions& options) {
  MOH_CHECK(data != nullptr && size > 0, "image '", label, "' is empty");
  if (backend != "stb" && backend != "opencv")
    throw Error("unknown image backend '" + backend + "' (use 'stb' or 'opencv')");
#ifndef MOH_WITH_OPENCV
  if (backend == "opencv")
    throw Unsupported("this build has no OpenCV image backend (rebuild with -DMOH_OPENCV=ON); use backend 'stb'");
#endif
  check_header(data, size, label, options);
#ifdef MOH_WITH_OPENCV
  if (backend == "opencv") return decode_opencv(data, size, label, options);
#endif
  return decode_stb(data, size, label, options);
}

ImageU8 decode_image_file_with(const std::string& path, const std::string& backend,
                               const ImageDecodeOptions& options) {
  const auto bytes = read_file(path);
  return decode_image_memory_with(bytes.data(), bytes.size(), path, backend, options);
}

ImageU8 decode_image_memory(const uint8_t* data, size_t size, const std::string& label,
                            const ImageDecodeOptions& options) {
  return decode_image_memory_with(data, size, label, image_backend(), options);
}

ImageU8 decode_image_file(const std::string& path, const ImageDecodeOptions& options) {
  const auto bytes = read_file(path);
  return decode_image_memory(bytes.data(), bytes.size(), path, options);
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
