// Picture headers read without decoding, and the byte-level fixes for stb (see format_headers.h).
#include "common/image/format_headers.h"

#include <cstring>

namespace moh::image_format {
namespace {

uint32_t rd16(const uint8_t* p, bool le) { return le ? p[0] | p[1] << 8 : p[0] << 8 | p[1]; }
uint32_t rd32(const uint8_t* p, bool le) {
  return le ? uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24
            : uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

}  // namespace

bool is_jpeg(const uint8_t* d, size_t n) { return n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF; }

// TIFF: ImageWidth (256) / ImageLength (257) of the first IFD (classic TIFF; BigTIFF is left to the decoder).
bool tiff_size(const uint8_t* d, size_t n, int64_t* w, int64_t* h) {
  if (n < 8 || !((d[0] == 'I' && d[1] == 'I' && d[2] == 42 && d[3] == 0) || (d[0] == 'M' && d[1] == 'M' && d[2] == 0 && d[3] == 42)))
    return false;
  const bool le = d[0] == 'I';
  const size_t ifd = rd32(d + 4, le);
  if (ifd + 2 > n) return false;
  const size_t count = rd16(d + ifd, le);
  *w = *h = -1;
  for (size_t i = 0; i < count && ifd + 2 + 12 * (i + 1) <= n; ++i) {
    const uint8_t* e = d + ifd + 2 + 12 * i;
    const uint32_t tag = rd16(e, le), type = rd16(e + 2, le);
    if (tag != 256 && tag != 257) continue;
    const int64_t v = type == 3 ? rd16(e + 8, le) : type == 4 ? rd32(e + 8, le) : -1;
    (tag == 256 ? *w : *h) = v;
  }
  return *w >= 0 && *h >= 0;
}

// WebP: the canvas of VP8X, else the frame size of VP8 (lossy) or VP8L (lossless).
bool webp_size(const uint8_t* d, size_t n, int64_t* w, int64_t* h) {
  if (n < 30 || std::memcmp(d, "RIFF", 4) != 0 || std::memcmp(d + 8, "WEBP", 4) != 0) return false;
  const uint8_t* c = d + 12;  // first chunk: fourcc, size, payload at c + 8
  if (std::memcmp(c, "VP8X", 4) == 0) {
    *w = 1 + int64_t(c[12] | c[13] << 8 | c[14] << 16);
    *h = 1 + int64_t(c[15] | c[16] << 8 | c[17] << 16);
    return true;
  }
  if (std::memcmp(c, "VP8 ", 4) == 0) {  // frame tag (3 bytes), start code 9d 01 2a, 14-bit sizes
    if (c[11] != 0x9d || c[12] != 0x01 || c[13] != 0x2a) return false;
    *w = rd16(c + 14, true) & 0x3fff;
    *h = rd16(c + 16, true) & 0x3fff;
    return true;
  }
  if (std::memcmp(c, "VP8L", 4) == 0) {  // signature 0x2f, then 14 bits width-1, 14 bits height-1
    if (c[8] != 0x2f) return false;
    const uint32_t b = rd32(c + 9, true);
    *w = 1 + int64_t(b & 0x3fff);
    *h = 1 + int64_t((b >> 14) & 0x3fff);
    return true;
  }
  return false;
}

// A 4-component JPEG without an Adobe APP14 marker is CMYK for libjpeg (and so for Pillow); stb would take it for
// YCbCr + a fourth channel. An inserted APP14 segment (transform 0 = CMYK) makes stb read it as libjpeg does.
std::vector<uint8_t> jpeg_with_adobe_cmyk(const uint8_t* d, size_t n) {
  size_t p = 2;
  bool adobe = false;
  int comps = 0;
  while (p + 4 <= n && d[p] == 0xFF) {
    const uint8_t m = d[p + 1];
    const size_t len = rd16(d + p + 2, false);
    if (m == 0xEE && len >= 12 && p + 9 <= n && std::memcmp(d + p + 4, "Adobe", 5) == 0) adobe = true;
    if ((m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) && p + 10 <= n) {
      comps = d[p + 9];
      break;
    }
    if (m == 0xDA || m == 0xD9) break;
    p += 2 + len;
  }
  if (adobe || comps != 4) return {};
  static const uint8_t app14[16] = {0xFF, 0xEE, 0, 14, 'A', 'd', 'o', 'b', 'e', 0, 100, 0, 0, 0, 0, 0};
  std::vector<uint8_t> out(d, d + 2);
  out.insert(out.end(), app14, app14 + 16);
  out.insert(out.end(), d + 2, d + n);
  return out;
}

// GIF: PIL's convert('RGB') of the first frame (mode P) shows a transparent pixel in its palette colour; stb leaves it
// unwritten (black). Clearing the transparency flag of the first frame's Graphic Control Extension makes stb write
// the palette colour too. Returns {} when there is nothing to change.
std::vector<uint8_t> gif_without_transparency(const uint8_t* d, size_t n) {
  if (n < 13 || std::memcmp(d, "GIF8", 4) != 0) return {};
  size_t p = 13 + ((d[10] & 0x80) ? 3u * (2u << (d[10] & 7)) : 0u);  // header + screen descriptor + global palette
  std::vector<uint8_t> out;
  while (p + 2 < n && d[p] == 0x21) {  // extensions up to the first image descriptor (0x2C)
    if (d[p + 1] == 0xF9 && p + 3 < n && d[p + 2] == 4 && (d[p + 3] & 1)) {
      if (out.empty()) out.assign(d, d + n);
      out[p + 3] &= 0xFE;
    }
    p += 2;
    while (p < n && d[p] != 0) p += 1 + d[p];  // data sub-blocks
    ++p;
  }
  return out;
}

}  // namespace moh::image_format
