/* Writes the small image fixtures of tests/test_image_io.cpp (committed; CI does not rebuild them).
 * Every pixel follows a formula that the test restates, so expected values never come from our own decoder.
 *   pattern(x, y, c) = (x * 37 + y * 11 + c * 80) & 255          lossless formats
 *   smooth(x, y, c)  = 40 + 4 * x + 3 * y + 30 * c                JPEG (smooth, so the lossy error stays small)
 * Build and run (Debian: libpng-dev libjpeg62-turbo-dev):
 *   cc -O2 -o /tmp/make_fixtures tests/data/images/make_fixtures.c -lpng -ljpeg && (cd tests/data/images && /tmp/make_fixtures)
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>  /* after stdio.h/stddef.h: it uses FILE and size_t */
#include <png.h>

enum { W = 23, H = 17 };

static int pattern(int x, int y, int c) { return (x * 37 + y * 11 + c * 80) & 255; }
static int smooth(int x, int y, int c) { return 40 + 4 * x + 3 * y + 30 * c; }

static void write_png(const char* path, int w, int h, int color_type, int depth, const unsigned char* rows,
                      size_t stride, const png_color* palette, int npal, const unsigned char* trns, int ntrns) {
  FILE* f = fopen(path, "wb");
  png_structp p = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png_create_info_struct(p);
  if (setjmp(png_jmpbuf(p))) abort();
  png_init_io(p, f);
  png_set_IHDR(p, info, w, h, depth, color_type, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (palette) png_set_PLTE(p, info, palette, npal);
  if (trns) png_set_tRNS(p, info, trns, ntrns, NULL);
  png_write_info(p, info);
  for (int y = 0; y < h; ++y) png_write_row(p, (png_const_bytep)(rows + y * stride));
  png_write_end(p, NULL);
  png_destroy_write_struct(&p, &info);
  fclose(f);
}

static void write_jpeg(const char* path, int w, int h, int comps, J_COLOR_SPACE cs, const unsigned char* px,
                       int progressive, const unsigned char* app1, unsigned app1_len) {
  struct jpeg_compress_struct c;
  struct jpeg_error_mgr err;
  FILE* f = fopen(path, "wb");
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  jpeg_stdio_dest(&c, f);
  c.image_width = w;
  c.image_height = h;
  c.input_components = comps;
  c.in_color_space = cs;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, 95, TRUE);
  if (progressive) jpeg_simple_progression(&c);
  jpeg_start_compress(&c, TRUE);
  if (app1) jpeg_write_marker(&c, JPEG_APP0 + 1, app1, app1_len);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = (JSAMPROW)(px + c.next_scanline * w * comps);
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  fclose(f);
}

static void put16(unsigned char* p, unsigned v) { p[0] = v >> 8; p[1] = v & 255; }  /* PNG is big-endian */

int main(void) {
  static unsigned char rgb[H][W * 3], rgba[H][W * 4], gray[H][W], ga[H][W * 2], idx[H][W];
  static unsigned char rgb16[H][W * 6], gray16[H][W * 2];
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      for (int c = 0; c < 3; ++c) {
        rgb[y][x * 3 + c] = pattern(x, y, c);
        rgba[y][x * 4 + c] = pattern(x, y, c);
        /* 16-bit: high byte = pattern, low byte varies so that a decoder must drop (not round) it */
        put16(&rgb16[y][x * 6 + c * 2], pattern(x, y, c) * 256 + ((x + c) % 2 ? 255 : 1));
      }
      rgba[y][x * 4 + 3] = (x * 11) & 255;  /* alpha ramp: must be dropped, not composited */
      gray[y][x] = pattern(x, y, 0);
      ga[y][x * 2] = pattern(x, y, 0);
      ga[y][x * 2 + 1] = (y * 15) & 255;
      put16(&gray16[y][x * 2], pattern(x, y, 0) * 256 + (x % 2 ? 200 : 3));
      idx[y][x] = (x + y) % 4;
    }
  write_png("rgb8.png", W, H, PNG_COLOR_TYPE_RGB, 8, &rgb[0][0], W * 3, NULL, 0, NULL, 0);
  write_png("rgba8.png", W, H, PNG_COLOR_TYPE_RGBA, 8, &rgba[0][0], W * 4, NULL, 0, NULL, 0);
  write_png("gray8.png", W, H, PNG_COLOR_TYPE_GRAY, 8, &gray[0][0], W, NULL, 0, NULL, 0);
  write_png("gray_alpha8.png", W, H, PNG_COLOR_TYPE_GRAY_ALPHA, 8, &ga[0][0], W * 2, NULL, 0, NULL, 0);
  write_png("rgb16.png", W, H, PNG_COLOR_TYPE_RGB, 16, &rgb16[0][0], W * 6, NULL, 0, NULL, 0);
  write_png("gray16.png", W, H, PNG_COLOR_TYPE_GRAY, 16, &gray16[0][0], W * 2, NULL, 0, NULL, 0);
  /* palette (x + y) % 4 -> these colours; entry 1 is fully transparent (PIL's convert('RGB') keeps its colour) */
  const png_color pal[4] = {{255, 0, 0}, {0, 200, 0}, {10, 20, 250}, {77, 88, 99}};
  const unsigned char trns[2] = {255, 0};
  write_png("palette_trns.png", W, H, PNG_COLOR_TYPE_PALETTE, 8, &idx[0][0], W, pal, 4, trns, 2);

  /* BMP, 24-bit bottom-up BGR rows padded to 4 bytes */
  {
    const int stride = (W * 3 + 3) & ~3;
    const unsigned size = 54 + stride * H;
    unsigned char hdr[54] = {'B', 'M'};
    memcpy(hdr + 2, &size, 4);
    hdr[10] = 54;
    hdr[14] = 40;
    int w = W, h = H;
    memcpy(hdr + 18, &w, 4);
    memcpy(hdr + 22, &h, 4);
    hdr[26] = 1;
    hdr[28] = 24;
    FILE* f = fopen("rgb24.bmp", "wb");
    fwrite(hdr, 1, 54, f);
    for (int y = H - 1; y >= 0; --y) {
      unsigned char row[(W * 3 + 3) & ~3] = {0};
      for (int x = 0; x < W; ++x)
        for (int c = 0; c < 3; ++c) row[x * 3 + c] = rgb[y][x * 3 + (2 - c)];
      fwrite(row, 1, stride, f);
    }
    fclose(f);
  }

  /* JPEGs: smooth RGB (baseline and progressive), smooth gray, CMYK (Adobe, inverted like Photoshop writes it) */
  {
    static unsigned char s3[H][W * 3], s1[H][W];
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x) {
        for (int c = 0; c < 3; ++c) s3[y][x * 3 + c] = smooth(x, y, c);
        s1[y][x] = smooth(x, y, 0);
      }
    write_jpeg("rgb.jpg", W, H, 3, JCS_RGB, &s3[0][0], 0, NULL, 0);
    write_jpeg("rgb_progressive.jpg", W, H, 3, JCS_RGB, &s3[0][0], 1, NULL, 0);
    write_jpeg("gray.jpg", W, H, 1, JCS_GRAYSCALE, &s1[0][0], 0, NULL, 0);
    /* EXIF orientation 6 ("rotate 90"): PIL's loader ignores it, so must we (the image stays 23x17) */
    static const unsigned char exif[] = {'E', 'x', 'i', 'f', 0, 0, 'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0,
                                         0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0};
    write_jpeg("exif_rotate90.jpg", W, H, 3, JCS_RGB, &s3[0][0], 0, exif, sizeof exif);
    /* CMYK 32x16: left 16 columns red, right 16 blue. Adobe CMYK is stored inverted (255 = no ink):
       red = C 0, M 255, Y 255, K 0 -> stored 255, 0, 0, 255; blue = C 255, M 255, Y 0, K 0 -> 0, 0, 255, 255. */
    static unsigned char cmyk[16][32 * 4];
    for (int y = 0; y < 16; ++y)
      for (int x = 0; x < 32; ++x) {
        const unsigned char red[4] = {255, 0, 0, 255}, blue[4] = {0, 0, 255, 255};
        memcpy(&cmyk[y][x * 4], x < 16 ? red : blue, 4);
      }
    write_jpeg("cmyk.jpg", 32, 16, 4, JCS_CMYK, &cmyk[0][0], 0, NULL, 0);
  }
  return 0;
}
