#!/usr/bin/env python3
"""Writes the JPEG/PNG codec fixtures and PIL's decoded pixels for Tests/DatasetsTests (JPEGTests, PNGTests).

    python3 scripts/reference/make_codec_fixtures.py [--photos DIR]

DIR is scikit-image's data folder (Debian python3-skimage: /usr/lib/python3/dist-packages/skimage/data, or the
folder extracted from its .deb with `apt-get download python3-skimage && dpkg-deb -x python3-skimage_*.deb x`).
Its astronaut.png (NASA, public domain), coffee.png, chelsea.png, camera.png (CC0) and hubble_deep_field.jpg
(NASA/ESA, public domain) are shrunk to small photos. Without it, photo-like images are synthesised with numpy.

Every fixture image is written by PIL (or, for PNG layouts PIL cannot write, assembled chunk by chunk below), then
decoded by PIL exactly as torchvision's pil_loader does (`Image.open(f).convert("RGB")`), or as a gray image
(`convert("L")`), or as raw palette indices (`np.array(Image.open(f))` on a "P" image, VOC SegmentationClass).
The pixels go into `<fixture>.<mode>.bin` (raw uint8, row-major, interleaved) and `expected.json` lists them.
"""
import argparse
import io
import json
import os
import struct
import zlib

import numpy as np
import PIL
from PIL import Image, features

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "DatasetsTests", "Fixtures", "codecs")


# MARK: - sources

def photo(photos, name, size, rng, gray=False):
    """A real photo from scikit-image's data folder shrunk to `size`, or a synthetic photo-like image."""
    if photos and os.path.exists(os.path.join(photos, name)):
        im = Image.open(os.path.join(photos, name))
        im = im.convert("L" if gray else "RGB")
        w, h = im.size
        # centre crop to the target aspect ratio, then a high-quality shrink
        target = size[0] / size[1]
        if w / h > target:
            cw = int(round(h * target))
            im = im.crop(((w - cw) // 2, 0, (w - cw) // 2 + cw, h))
        else:
            ch = int(round(w / target))
            im = im.crop((0, (h - ch) // 2, w, (h - ch) // 2 + ch))
        return im.resize(size, Image.LANCZOS), f"skimage data/{name}"
    # smooth gradients + blobs + fine texture + noise, like a photo's spectrum
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    channels = []
    for c in range(1 if gray else 3):
        v = 128 + 60 * np.sin(x / (7 + 3 * c) + y / 11) + 40 * np.cos((x - y) / (5 + c))
        for _ in range(4):
            cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(3, 12)
            v += 50 * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r))
        v += rng.normal(0, 6, size=(h, w))
        channels.append(np.clip(v, 0, 255).astype(np.uint8))
    array = channels[0] if gray else np.stack(channels, axis=-1)
    return Image.fromarray(array), "synthetic (numpy)"


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def raw_png(width, height, color_type, bit_depth, rows, extra=b"", interlaced=False, samples=None):
    """A PNG assembled by hand: `rows` is a [h, w·samples] uint8/uint16 array of samples (filter type 0)."""
    dtype = ">u2" if bit_depth == 16 else "u1"
    rows = np.asarray(rows).astype(dtype)
    if not interlaced:
        idat = b"".join(b"\x00" + rows[r].tobytes() for r in range(height))
    else:  # Adam7: (x0, y0, dx, dy) per pass; each pass is a sub-image with its own filter bytes
        passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
        pixels = rows.reshape(height, width, samples)
        idat = b""
        for x0, y0, dx, dy in passes:
            sub = pixels[y0::dy, x0::dx]
            if sub.size == 0:
                continue
            idat += b"".join(b"\x00" + sub[r].tobytes() for r in range(sub.shape[0]))
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 1 if interlaced else 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + extra + png_chunk(b"IDAT", zlib.compress(idat, 9))
            + png_chunk(b"IEND", b""))


def voc_color_map(n=256):
    """VOC devkit's labelcolormap: bits 0, 1, 2 of the label go to R, G, B, most significant bit first."""
    cmap = []
    for i in range(n):
        r = g = b = 0
        label = i
        for j in range(8):
            r |= ((label >> 0) & 1) << (7 - j)
            g |= ((label >> 1) & 1) << (7 - j)
            b |= ((label >> 2) & 1) << (7 - j)
            label >>= 3
        cmap += [r, g, b]
    return cmap


# MARK: - fixtures

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--photos", default="/usr/lib/python3/dist-packages/skimage/data")
    args = parser.parse_args()
    photos = args.photos if os.path.isdir(args.photos) else None
    rng = np.random.default_rng(20240603)
    os.makedirs(OUT, exist_ok=True)
    for name in os.listdir(OUT):
        if name.endswith((".jpg", ".png", ".bin", ".json")):
            os.remove(os.path.join(OUT, name))

    files, expected = {}, []
    sources = {}

    def save(name, data):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        files[name] = data

    def pil_bytes(im, fmt, **options):
        buffer = io.BytesIO()
        im.save(buffer, fmt, **options)
        return buffer.getvalue()

    def expect(name, mode, tolerance=0, note=None):
        """PIL's pixels for fixture `name` decoded as `mode` (grayOrRGB, rgb or indices)."""
        im = Image.open(io.BytesIO(files[name]))
        im.load()
        if mode == "rgb":
            array = np.array(im.convert("RGB"))
        elif mode == "grayOrRGB":
            gray = im.mode in ("1", "L", "LA", "I", "I;16", "I;16B")
            array = np.array(im.convert("L" if gray else "RGB"))
        else:
            assert im.mode in ("P", "L"), (name, im.mode)
            array = np.array(im)
        array = array.astype(np.uint8)
        h, w = array.shape[:2]
        channels = 1 if array.ndim == 2 else array.shape[2]
        binary = f"{name}.{mode}.bin"
        with open(os.path.join(OUT, binary), "wb") as f:
            f.write(np.ascontiguousarray(array).tobytes())
        entry = {"file": name, "mode": mode, "width": w, "height": h, "channels": channels, "pixels": binary,
                 "pilMode": im.mode, "tolerance": tolerance}
        if note:
            entry["note"] = note
        expected.append(entry)

    # --- JPEG: real photos made small, several subsamplings, progressive, optimised tables, gray, CMYK
    im, sources["astronaut_96x96_q90.jpg"] = photo(photos, "astronaut.png", (96, 96), rng)
    save("astronaut_96x96_q90.jpg", pil_bytes(im, "JPEG", quality=90))            # 4:2:0 (PIL's default)
    im, sources["coffee_75x51_q85_422.jpg"] = photo(photos, "coffee.png", (75, 51), rng)
    save("coffee_75x51_q85_422.jpg", pil_bytes(im, "JPEG", quality=85, subsampling=1))  # odd sizes, 4:2:2
    im, sources["chelsea_64x48_q95_444_progressive.jpg"] = photo(photos, "chelsea.png", (64, 48), rng)
    save("chelsea_64x48_q95_444_progressive.jpg", pil_bytes(im, "JPEG", quality=95, subsampling=0, progressive=True))
    im, sources["hubble_61x47_q75_optimized_restart.jpg"] = photo(photos, "hubble_deep_field.jpg", (61, 47), rng)
    save("hubble_61x47_q75_optimized_restart.jpg",
         pil_bytes(im, "JPEG", quality=75, optimize=True, restart_marker_blocks=3))
    im, sources["camera_64x64_gray.jpg"] = photo(photos, "camera.png", (64, 64), rng, gray=True)
    save("camera_64x64_gray.jpg", pil_bytes(im, "JPEG", quality=90))
    im, sources["astronaut_24x16_cmyk.jpg"] = photo(photos, "astronaut.png", (24, 16), rng)
    save("astronaut_24x16_cmyk.jpg", pil_bytes(im.convert("CMYK"), "JPEG", quality=90))
    # Corrupt scan data (a stray RST5 marker mid-scan): libjpeg warns and goes on, and so does PIL.
    corrupt = bytearray(files["coffee_75x51_q85_422.jpg"])
    middle = (corrupt.find(b"\xff\xda") + len(corrupt)) // 2
    corrupt[middle:middle + 2] = b"\xff\xd5"
    save("coffee_75x51_corrupt_scan.jpg", bytes(corrupt))
    sources["coffee_75x51_corrupt_scan.jpg"] = "coffee_75x51_q85_422.jpg with two bytes mid-scan set to FF D5"
    for name in ["astronaut_96x96_q90.jpg", "coffee_75x51_q85_422.jpg", "coffee_75x51_corrupt_scan.jpg",
                 "chelsea_64x48_q95_444_progressive.jpg", "hubble_61x47_q75_optimized_restart.jpg",
                 "astronaut_24x16_cmyk.jpg"]:
        expect(name, "rgb")
    expect("camera_64x64_gray.jpg", "grayOrRGB")
    expect("camera_64x64_gray.jpg", "rgb")

    # PIL's own encoder on PIL's decoded astronaut at quality 90 (4:2:0), decoded again: the Swift encoder at
    # the same quality and subsampling must give the same pixels.
    decoded = Image.open(io.BytesIO(files["astronaut_96x96_q90.jpg"])).convert("RGB")
    save("astronaut_96x96_q90_reencoded_by_pil.jpg", pil_bytes(decoded, "JPEG", quality=90))
    expect("astronaut_96x96_q90_reencoded_by_pil.jpg", "rgb")
    sources["astronaut_96x96_q90_reencoded_by_pil.jpg"] = "PIL re-encoding of astronaut_96x96_q90.jpg's pixels"

    # --- PNG: PIL-written gray, RGB, RGBA, LA, 1-bit, palettes (VOC mask with 256 colours, 4-bit, tRNS)
    im, sources["camera_20x15_gray.png"] = photo(photos, "camera.png", (20, 15), rng, gray=True)
    save("camera_20x15_gray.png", pil_bytes(im, "PNG"))
    im, sources["coffee_20x15_rgb.png"] = photo(photos, "coffee.png", (20, 15), rng)
    save("coffee_20x15_rgb.png", pil_bytes(im, "PNG"))
    rgb = np.array(im)
    alpha = (np.arange(20 * 15).reshape(15, 20) * 37 % 256).astype(np.uint8)
    save("coffee_20x15_rgba.png", pil_bytes(Image.fromarray(np.dstack([rgb, alpha]), "RGBA"), "PNG"))
    gray = np.array(Image.open(io.BytesIO(files["camera_20x15_gray.png"])))
    save("camera_20x15_la.png", pil_bytes(Image.fromarray(np.dstack([gray, alpha]), "LA"), "PNG"))
    save("checker_9x7_1bit.png", pil_bytes(Image.fromarray(((np.indices((7, 9)).sum(0) % 3) == 0)), "PNG"))
    for name in ["coffee_20x15_rgba.png", "camera_20x15_la.png", "checker_9x7_1bit.png"]:
        sources[name] = sources.get(name, "built from the images above / synthetic")

    mask = np.zeros((13, 17), np.uint8)                       # VOC SegmentationClass: class index, 255 = ignore
    mask[2:9, 3:10] = 15                                      # person
    mask[5:12, 8:16] = 7                                      # car
    mask[1, :] = 255
    mask[:, 0] = 255
    mask[10:13, 1:4] = 20
    voc = Image.fromarray(mask, "P")
    voc.putpalette(voc_color_map())
    save("voc_mask_17x13.png", pil_bytes(voc, "PNG"))
    four = Image.fromarray((np.indices((6, 11)).sum(0) % 16).astype(np.uint8), "P")
    four.putpalette([v for i in range(16) for v in (i * 16, 255 - i * 16, (i * 97) % 256)])
    save("palette_11x6_4bit.png", pil_bytes(four, "PNG", bits=4))
    trns = Image.fromarray((np.indices((5, 7)).sum(0) % 3).astype(np.uint8), "P")
    trns.putpalette([10, 20, 30, 200, 100, 50, 0, 255, 0])
    save("palette_7x5_trns.png", pil_bytes(trns, "PNG", transparency=1))
    for name in ["voc_mask_17x13.png", "palette_11x6_4bit.png", "palette_7x5_trns.png"]:
        sources[name] = "synthetic"

    # --- PNG layouts PIL does not write: 16-bit RGB / RGBA / gray, a gAMA chunk, Adam7 interlacing
    samples16 = rng.integers(0, 65536, size=(5, 6 * 3)).astype(np.uint16)
    save("rgb16_6x5.png", raw_png(6, 5, 2, 16, samples16))
    rgba16 = rng.integers(0, 65536, size=(5, 6 * 4)).astype(np.uint16)
    save("rgba16_6x5.png", raw_png(6, 5, 6, 16, rgba16))
    gray16 = np.array([[0, 1, 100, 254, 255, 256, 1000, 65535]] * 3, np.uint16)
    save("gray16_8x3.png", raw_png(8, 3, 0, 16, gray16))
    gamma = png_chunk(b"gAMA", struct.pack(">I", 100000))     # gamma 1.0: PIL ignores it, so must we
    save("gray_gamma1_20x15.png", raw_png(20, 15, 0, 8, gray, extra=gamma))
    save("coffee_20x15_adam7.png", raw_png(20, 15, 2, 8, rgb.reshape(15, 60), interlaced=True, samples=3))
    short = np.array([[0, 1, 2, 255, 1], [2, 255, 0, 0, 1], [1, 1, 2, 2, 255], [0, 2, 255, 1, 0]], np.uint8)
    plte = png_chunk(b"PLTE", bytes([0, 0, 0, 128, 0, 0, 0, 128, 0]))  # 3 colours; 255 (ignore) is outside
    save("palette_5x4_index_beyond_palette.png", raw_png(5, 4, 3, 8, short, extra=plte))
    sources["palette_5x4_index_beyond_palette.png"] = "synthetic, written chunk by chunk"
    for name in ["rgb16_6x5.png", "rgba16_6x5.png", "gray16_8x3.png"]:
        sources[name] = "synthetic, written chunk by chunk"
    sources["gray_gamma1_20x15.png"] = "camera_20x15_gray.png's pixels with a gAMA chunk (gamma 1.0)"
    sources["coffee_20x15_adam7.png"] = "coffee_20x15_rgb.png's pixels, Adam7-interlaced"

    for name in ["camera_20x15_gray.png", "camera_20x15_la.png", "checker_9x7_1bit.png", "gray16_8x3.png",
                 "gray_gamma1_20x15.png"]:
        expect(name, "grayOrRGB")
    for name in ["camera_20x15_gray.png", "coffee_20x15_rgb.png", "coffee_20x15_rgba.png", "camera_20x15_la.png",
                 "checker_9x7_1bit.png", "voc_mask_17x13.png", "palette_11x6_4bit.png", "palette_7x5_trns.png",
                 "rgb16_6x5.png", "gray16_8x3.png", "coffee_20x15_adam7.png"]:
        expect(name, "rgb")
    expect("rgba16_6x5.png", "rgb", tolerance=1,
           note="PIL keeps the high byte of 16-bit samples; libpng's simplified API rounds (v·255/65535) when "
                "the image has an alpha channel")
    for name in ["voc_mask_17x13.png", "palette_11x6_4bit.png", "palette_7x5_trns.png", "camera_20x15_gray.png",
                 "palette_5x4_index_beyond_palette.png"]:
        expect(name, "indices")

    manifest = {
        "script": "scripts/reference/make_codec_fixtures.py",
        "pillow": PIL.__version__,
        "libjpeg_turbo": features.version_feature("libjpeg_turbo"),
        "zlib": features.version("zlib"),
        "sources": sources,
        "expected": expected,
    }
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f"wrote {len(files)} images and {len(expected)} expectations to {os.path.normpath(OUT)}, {total} bytes")


if __name__ == "__main__":
    main()
