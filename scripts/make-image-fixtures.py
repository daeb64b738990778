#!/usr/bin/python3
# Makes tests/data/images/formats/: one small picture file per real-world format case (16x12 pixels, a few hundred
# bytes each) and, beside each, <file>.rgb = the pixels torchvision's default_loader gives for it, i.e. PIL
# Image.open(f).convert('RGB') as raw 8-bit RGB, row-major (height*width*3 bytes), plus manifest.json (sizes, the
# Pillow/numpy versions, and whether Pillow refuses the first half of each file, or the file without its last 2
# bytes: the truncation cases).
# Reference: Debian 12's python3-pil (9.4.0; libjpeg-turbo 2.1.5, libtiff 4.5, libwebp 1.2.4) and numpy only:
#   apt-get install -y python3-pil python3-numpy && /usr/bin/python3 scripts/make-image-fixtures.py
# The C++ test (tests/test_image_io.cpp, "[image]") decodes every file and compares with the .rgb.
import io
import json
import os
import struct
import sys
import zlib

import numpy as np
import PIL
from PIL import Image, features

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "images", "formats")
W, H = 16, 12

yy, xx = np.mgrid[0:H, 0:W]
# Smooth ramps plus a sharp edge and a bright square: JPEG has real work (edges, chroma) at a tiny size.
RGB = np.stack([(xx * 15 + yy * 3) % 256, (yy * 20 + 30) % 256, np.where(xx < 8, 220, 40) - yy * 3], -1)
RGB[3:7, 9:13] = [250, 250, 10]
RGB = RGB.clip(0, 255).astype(np.uint8)


def png_bytes(width, height, bit_depth, color_type, raw_rows):
    """A minimal PNG writer (PIL cannot write 16-bit RGB)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    data = b"".join(b"\x00" + row for row in raw_rows)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(data, 9)) + chunk(b"IEND", b"")


def save(im, fmt, **kw):
    bio = io.BytesIO()
    im.save(bio, fmt, **kw)
    return bio.getvalue()


def strip_adobe(jpeg):
    """Drops the APP14 'Adobe' segment (libjpeg then reads 4 components as plain CMYK)."""
    out, p = jpeg[:2], 2
    while jpeg[p] == 0xFF and jpeg[p + 1] != 0xDA:
        n = 2 + struct.unpack(">H", jpeg[p + 2:p + 4])[0]
        if not (jpeg[p + 1] == 0xEE and jpeg[p + 4:p + 9] == b"Adobe"):
            out += jpeg[p:p + n]
        p += n
    assert len(out) < len(jpeg), "no Adobe segment found"
    return out + jpeg[p:]


def cases():
    rgb = Image.fromarray(RGB)
    gray = rgb.convert("L")
    c = {}
    c["jpeg_baseline_420.jpg"] = save(rgb, "JPEG", quality=90)  # 4:2:0, Pillow's default
    c["jpeg_444.jpg"] = save(rgb, "JPEG", quality=90, subsampling=0)
    c["jpeg_progressive.jpg"] = save(rgb, "JPEG", quality=90, progressive=True)
    c["jpeg_gray.jpg"] = save(gray, "JPEG", quality=90)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation "rotate 90 CW": PIL's loader ignores it (no exif_transpose)
    c["jpeg_exif_rotate90.jpg"] = save(rgb, "JPEG", quality=90, exif=exif.tobytes())
    cmyk = Image.fromarray(np.dstack([255 - RGB, (xx * 10 + yy * 7).astype(np.uint8)]), "CMYK")
    c["jpeg_cmyk_adobe.jpg"] = save(cmyk, "JPEG", quality=90)  # APP14 Adobe, transform 0, inverted samples
    c["jpeg_cmyk_no_adobe.jpg"] = strip_adobe(c["jpeg_cmyk_adobe.jpg"])
    c["png_named.JPEG"] = save(rgb, "PNG")  # a PNG under an ImageNet-style .JPEG name
    pal = rgb.quantize(colors=6)
    c["png_palette_trns.png"] = save(pal, "PNG", transparency=2)
    la = Image.merge("LA", [gray, Image.fromarray((xx * 16).astype(np.uint8))])
    c["png_gray_alpha.png"] = save(la, "PNG")
    rgb16 = RGB.astype(np.uint16) * 257 + (xx * 31 + yy)[..., None].astype(np.uint16) % 256
    c["png_rgb16.png"] = png_bytes(W, H, 16, 2, [rgb16[r].astype(">u2").tobytes() for r in range(H)])
    gray16 = (xx * 40 + yy * 3).astype(np.uint16)  # 0..627: PIL opens mode I, convert('RGB') clips at 255
    c["png_gray16.png"] = png_bytes(W, H, 16, 0, [gray16[r].astype(">u2").tobytes() for r in range(H)])
    c["bmp_rgb24.bmp"] = save(rgb, "BMP")
    c["bmp_palette8.bmp"] = save(pal.convert("RGB").quantize(colors=6), "BMP")
    c["tiff_rgb_lzw.tif"] = save(rgb, "TIFF", compression="tiff_lzw")
    c["webp_lossy.webp"] = save(rgb, "WEBP", quality=80)
    c["webp_lossless.webp"] = save(rgb, "WEBP", lossless=True)
    frames = [pal, Image.fromarray(255 - RGB).quantize(colors=6)]
    c["gif_animated.gif"] = save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0,
                                 transparency=2)
    return c


def pil_rgb(data):
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def refuses(data):
    try:
        pil_rgb(data)
        return False
    except Exception:  # OSError("image file is truncated ..."), UnidentifiedImageError, ...
        return True


def main():
    os.makedirs(OUT, exist_ok=True)
    manifest = {"pillow": PIL.__version__, "numpy": np.__version__, "libjpeg": features.version("jpg"),
                "libtiff": features.version("libtiff"), "libwebp": features.version("webp"),
                "python": sys.version.split()[0], "files": {}}
    for name, data in cases().items():
        ref = pil_rgb(data)
        assert ref.shape == (H, W, 3), (name, ref.shape)
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        with open(os.path.join(OUT, name + ".rgb"), "wb") as f:
            f.write(np.ascontiguousarray(ref).tobytes())
        im = Image.open(io.BytesIO(data))
        manifest["files"][name] = {"format": im.format, "mode": im.mode, "width": W, "height": H, "bytes": len(data),
                                   "pil_refuses_first_half": refuses(data[:len(data) // 2]),
                                   "pil_refuses_last_2_bytes_cut": refuses(data[:-2])}
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    print(json.dumps(manifest, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
