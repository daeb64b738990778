// Image decoding/encoding to packed 8-bit RGB, the form every model input starts from.
// Mirrors what torchvision's default_loader does for the official MoH-ViT evaluation (datasets.ImageFolder ->
// PIL Image.open(f).convert('RGB'), Debian python3-pil 9.4): gray is replicated, alpha is dropped WITHOUT compositing,
// palette images are expanded, 16-bit RGB/gray+alpha keep their high byte but 16-bit gray is clipped to 255 (PIL
// opens it as mode I), CMYK JPEGs use PIL's Adobe-inverted CMYK -> RGB formula, EXIF orientation is NOT applied, a
// file that ends before its picture is complete is refused ("truncated"), and a picture above max_pixels is refused
// from its header before decoding (PIL's DecompressionBombError limit).
// Backends: stb_image (always built) and "opencv" (built with MOH_WITH_OPENCV): JPEG through libjpeg-turbo directly
// (the library and settings Pillow uses: exact pixels), PNG/BMP/GIF/... through stb (lossless: exact), TIFF/WebP and
// what else only OpenCV reads through OpenCV (libtiff/libwebp, as Pillow). stb's own JPEG IDCT/upsampling is a level
// or two off libjpeg-turbo here and there (tests/test_image_io.cpp measures the bound).
#pragma once
#include <torch/torch.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace moh {

// Packed RGB, row-major, 3 channels: pixel (x, y) channel c lives at rgb[(y * width + x) * 3 + c].
struct ImageU8 {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;
};

// Pillow's limit: Image.open raises DecompressionBombError above 2 * Image.MAX_IMAGE_PIXELS = 178,956,970 pixels.
constexpr int64_t kDefaultMaxImagePixels = 2LL * 89478485;

struct ImageDecodeOptions {
  // Pictures with more pixels than this (width * height, read from the header) are refused before decoding; the
  // apps raise it with --max-image-pixels. <= 0 is refused.
  int64_t max_pixels = kDefaultMaxImagePixels;
};

// Throws moh::Error ("<what>: ...") unless img is non-empty with rgb.size() == width * height * 3.
void validate_image(const ImageU8& img, const std::string& what);

// Decodes JPEG/PNG/BMP/GIF (first frame)/TGA/PNM (+ with OpenCV: TIFF, WebP, ...) into RGB8 with the build's primary
// backend: with OpenCV, JPEG goes to libjpeg-turbo, what stb reads to stb, the rest to OpenCV (see above).
// Throws moh::Error naming the file and the problem (missing, unreadable, corrupt, truncated, unsupported, too large).
ImageU8 decode_image_file(const std::string& path, const ImageDecodeOptions& options = {});
// Same from memory; `label` names the source in error messages.
ImageU8 decode_image_memory(const uint8_t* data, size_t size, const std::string& label,
                            const ImageDecodeOptions& options = {});

// Explicit backend ("stb" or "opencv"); "opencv" throws moh::Unsupported when this build has no OpenCV.
ImageU8 decode_image_file_with(const std::string& path, const std::string& backend,
                               const ImageDecodeOptions& options = {});
ImageU8 decode_image_memory_with(const uint8_t* data, size_t size, const std::string& label,
                                 const std::string& backend, const ImageDecodeOptions& options = {});

// Width and height from the header alone (JPEG, PNG, BMP, GIF, PNM, TGA, PSD, TIFF, WebP); false when unknown.
bool image_header_size(const uint8_t* data, size_t size, int64_t* width, int64_t* height);

// The primary backend of this build (the one that decodes JPEG): "opencv" when built with OpenCV, else "stb".
std::string image_backend();
// Every backend this build can decode with (default first).
std::vector<std::string> image_backends();

// Writes an 8-bit RGB PNG atomically (temp file + rename); throws moh::Error on failure.
void encode_png(const std::string& path, const ImageU8& img);
// The PNG bytes of `img` (same encoder as encode_png).
std::vector<uint8_t> encode_png_memory(const ImageU8& img);

// Interleaved 8-bit pixels with 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA) channels -> RGB, as PIL's
// convert('RGB') does: gray replicated, alpha dropped (not composited). Throws moh::Error for other counts.
ImageU8 image_from_interleaved(const uint8_t* pixels, int width, int height, int channels);
// [3,H,W] or [1,H,W] uint8 tensor (any device/strides) -> ImageU8 (1 channel is replicated).
ImageU8 image_from_tensor(const torch::Tensor& chw_u8);
// [H,W,C] uint8 tensor with C in {1,2,3,4} (the layout of golden `in.image_u8`) -> RGB ImageU8.
ImageU8 image_from_hwc_tensor(const torch::Tensor& hwc_u8);
// ImageU8 -> [3,H,W] uint8 CPU tensor (owns its memory).
torch::Tensor image_to_tensor(const ImageU8& img);
// ImageU8 -> [H,W,3] uint8 CPU tensor (owns its memory), the layout of golden `mid.*_u8` tensors.
torch::Tensor image_to_hwc_tensor(const ImageU8& img);

}  // namespace moh
