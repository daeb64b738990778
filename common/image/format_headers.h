// What a picture file's header says, read without decoding: its size (so that a decompression bomb is refused
// before any decoder allocates it; stb knows the common formats, TIFF and WebP are read here), and the two byte-level
// fixes that make stb read a file as Pillow does (a CMYK JPEG without an Adobe marker; GIF transparency). Facts from
// the TIFF 6.0, WebP container and JPEG/GIF specifications and Pillow's JpegImagePlugin / GifImagePlugin.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace moh::image_format {

bool is_jpeg(const uint8_t* data, size_t size);
// Width and height of a classic TIFF's first IFD / a WebP's canvas (VP8X) or frame (VP8, VP8L); false otherwise.
bool tiff_size(const uint8_t* data, size_t size, int64_t* width, int64_t* height);
bool webp_size(const uint8_t* data, size_t size, int64_t* width, int64_t* height);
// A copy of a 4-component JPEG without an Adobe APP14 marker with one inserted (transform 0 = CMYK), so that stb
// reads it as CMYK as libjpeg does; {} when the file needs no change.
std::vector<uint8_t> jpeg_with_adobe_cmyk(const uint8_t* data, size_t size);
// A copy of a GIF whose first frame's transparency flag is cleared (Pillow's convert('RGB') shows transparent pixels
// in their palette colour, stb leaves them black); {} when there is nothing to change.
std::vector<uint8_t> gif_without_transparency(const uint8_t* data, size_t size);

}  // namespace moh::image_format
