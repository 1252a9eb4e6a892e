#!/usr/bin/env bash
# Real photos for AugmentBench: the RGB sample photos shipped in Debian's python3-skimage package (public domain /
# CC0, see skimage/data/README.txt in the package), re-encoded as ImageNet-like JPEGs (quality 90, long side ≤ 640)
# into benchmarks/.photos. The package is downloaded and unpacked, not installed.
set -euo pipefail
cd "$(dirname "$0")"
out=.photos
[ -n "$(ls "$out"/*.jpg 2>/dev/null)" ] && { echo "photos: $(ls "$out"/*.jpg | wc -l) in $out"; exit 0; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download python3-skimage >/dev/null 2>&1 && dpkg-deb -x python3-skimage_*.deb x)
mkdir -p "$out"
python3 - "$work/x/usr/lib/python3/dist-packages/skimage/data" "$out" <<'PY'
import sys, pathlib
from PIL import Image
src, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
names = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png", "motorcycle_right.png",
         "ihc.png", "hubble_deep_field.jpg", "retina.jpg", "color.png"]
for name in names:
    im = Image.open(src / name).convert("RGB")
    scale = min(1.0, 640 / max(im.size))
    if scale < 1:
        im = im.resize((round(im.width * scale), round(im.height * scale)), Image.BILINEAR)
    im.save(out / (pathlib.Path(name).stem + ".jpg"), quality=90)
    print(f"{name}: {im.width}x{im.height}")
PY
