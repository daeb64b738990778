// Image decoding/encoding to packed 8-bit RGB, the form every model input starts from.
// Mirrors what torchvision's default_loader does for the official MoH-ViT evaluation (datasets.ImageFolder ->
// PIL Image.open(f).convert('RGB')): gray is replicated, alpha is dropped WITHOUT compositing, palette images are
// expanded, 16-bit samples keep their high byte, CMYK JPEGs become RGB, EXIF orientation is NOT applied.
// Backends: stb_image (always built) and OpenCV (when built with MOH_WITH_OPENCV; preferred because it decodes
// JPEG with libjpeg-turbo like Pillow does). Both give identical PNG/BMP pixels; JPEG differs by IDCT rounding.
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

// Throws moh::Error ("<what>: ...") unless img is non-empty with rgb.size() == width * height * 3.
void validate_image(const ImageU8& img, const std::string& what);

// Decodes JPEG/PNG/BMP/GIF/TGA/PNM (+ what OpenCV adds: TIFF, WebP, ...) into RGB8. With OpenCV built, JPEG and the
// formats stb does not know go to OpenCV, the rest to stb (identical pixels; see image_io.cpp).
// Throws moh::Error naming the file and the problem (missing, unreadable, corrupt, unsupported, too large).
ImageU8 decode_image_file(const std::string& path);
// Same from memory; `label` names the source in error messages.
ImageU8 decode_image_memory(const uint8_t* data, size_t size, const std::string& label);

// Explicit backend ("stb" or "opencv"); "opencv" throws moh::Unsupported when this build has no OpenCV.
ImageU8 decode_image_file_with(const std::string& path, const std::string& backend);
ImageU8 decode_image_memory_with(const uint8_t* data, size_t size, const std::string& label,
                                 const std::string& backend);

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
