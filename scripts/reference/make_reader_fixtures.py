#!/usr/bin/env python3
"""Writes the tiny dataset trees the reader tests read (Tests/DatasetsTests/ReadersTests), and the gzip files the
gzip and SHA-256 tests read (Tests/SupportTests).

Run: `python3 scripts/reference/make_reader_fixtures.py` (writes Tests/DatasetsTests/Fixtures/readers and
Tests/SupportTests/Fixtures/gzip). Deterministic: gzip members carry mtime 0, and the random
bytes come from a seeded generator. Images are dummies (JPEG / PNG magic bytes only): the readers never decode.
"""
import gzip
import json
import os
import random
import shutil
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.join(ROOT, "Tests", "DatasetsTests", "Fixtures", "readers")
SUPPORT = os.path.join(ROOT, "Tests", "SupportTests", "Fixtures")
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 12 + b"\xff\xd9"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 8


def write(path, data, root=HERE):
    path = os.path.join(root, path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def gz(data, level=9):
    return gzip.compress(data, compresslevel=level, mtime=0)


def gzip_fixtures(rng):
    # Text-like data compresses with dynamic Huffman blocks and long matches; random bytes force stored/literal
    # paths; a run of one byte exercises overlapping back-references (distance 1).
    words = [b"alpha", b"beta", b"gamma", b"delta", b"epsilon", b"zeta", b"eta", b"theta"]
    text = b" ".join(rng.choice(words) for _ in range(12000))
    noise = bytes(rng.getrandbits(8) for _ in range(3000))
    data = text[:30000] + b"\x07" * 5000 + noise + text[30000:]
    write("gzip/data.bin", data, SUPPORT)
    write("gzip/data.bin.gz", gz(data), SUPPORT)
    write("gzip/data-level1.bin.gz", gz(data, 1), SUPPORT)
    write("gzip/data-stored.bin.gz", gz(data, 0), SUPPORT)
    write("gzip/two-members.bin.gz", gz(data[:1000]) + gz(data[1000:2000]), SUPPORT)
    write("gzip/empty.gz", gz(b""), SUPPORT)
    write("gzip/short.txt.gz", gz(b"abcabcabcabc hello hello"), SUPPORT)  # short input: a fixed-Huffman block
    # 64 MiB of zeros in 65 KB: the decompression limit must stop it early (issue 14, item 3).
    write("gzip/zeros-64MiB.gz", gz(bytes(64 << 20)), SUPPORT)


def idx_bytes(array_dims, values):
    header = struct.pack(">BBBB", 0, 0, 8, len(array_dims)) + b"".join(struct.pack(">I", d) for d in array_dims)
    return header + bytes(values)


def idx_fixtures():
    # train: 5 images of 3 rows × 4 columns, pixel (i, r, c) = 10·i + 4·r + c; labels 0, 1, 2, 1, 0.
    train = [10 * i + 4 * r + c for i in range(5) for r in range(3) for c in range(4)]
    write("idx/train-images-idx3-ubyte.gz", gz(idx_bytes([5, 3, 4], train)))
    write("idx/train-labels-idx1-ubyte.gz", gz(idx_bytes([5], [0, 1, 2, 1, 0])))
    # test: uncompressed, 2 images.
    write("idx/t10k-images-idx3-ubyte", idx_bytes([2, 3, 4], [200 + k for k in range(24)]))
    write("idx/t10k-labels-idx1-ubyte", idx_bytes([2], [2, 0]))


def cifar_record(labels, index):
    # Pixel p of plane ch (0 = red) of image `index` = (index + 3·ch + p) mod 256.
    return bytes(labels) + bytes((index + 3 * ch + p) % 256 for ch in range(3) for p in range(1024))


def cifar_fixtures():
    names10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    write("cifar10/batches.meta.txt", "\n".join(names10) + "\n\n")
    for b in range(1, 6):
        write(f"cifar10/data_batch_{b}.bin", cifar_record([b], 2 * b) + cifar_record([b + 4], 2 * b + 1))
    write("cifar10/test_batch.bin", cifar_record([9], 0))
    write("cifar100/fine_label_names.txt", "\n".join(f"fine{k}" for k in range(100)) + "\n")
    write("cifar100/coarse_label_names.txt", "\n".join(f"coarse{k}" for k in range(20)) + "\n")
    write("cifar100/train.bin", cifar_record([3, 42], 0) + cifar_record([19, 99], 1) + cifar_record([0, 0], 2))
    write("cifar100/test.bin", cifar_record([7, 11], 5))


def image_folder_fixtures():
    write("imagefolder/cat/b.png", PNG)
    write("imagefolder/cat/a.jpg", JPEG)
    write("imagefolder/cat/notes.txt", "not an image")
    write("imagefolder/dog/z.JPEG", JPEG)
    write("imagefolder/dog/sub/c.jpg", JPEG)
    write("imagefolder/dog/sub-x/d.jpg", JPEG)
    write("imagefolder/dog/sub/deep/e.jpg", JPEG)  # sorted(os.walk): "dog/sub-x" < "dog/sub/deep" ('-' < '/')
    write("list/train.txt", "imagefolder/cat/a.jpg 0\nimagefolder/dog/z.JPEG  1\n\nimagefolder/dog/sub/c.jpg\t1\n")
    write("list/unlabeled.txt", "imagefolder/cat/a.jpg\nimagefolder/cat/b.png\n")
    write("list/places.csv", "path,label\nimagefolder/cat/b.png,3\nimagefolder/dog/sub-x/d.jpg,7\n")


VOC_OBJECTS = {
    "000001": [("cat", 12, 20, 40, 48, 0, 0), ("dog", 1, 1, 30, 30, 1, 1)],
    "000002": [("dog", 5, 6, 60, 70, 0, 1), ("person", 10, 10, 20, 50, 1, 0)],
    "000003": [("person", 3, 4, 5, 6, 0, 0)],
}


def voc_xml(image_id, objects, part=False):
    body = "".join(f"""
\t<object>
\t\t<name>{name}</name>
\t\t<pose>Unspecified</pose>
\t\t<truncated>{truncated}</truncated>
\t\t<difficult>{difficult}</difficult>
\t\t<bndbox>
\t\t\t<xmin>{x0}</xmin>
\t\t\t<ymin>{y0}</ymin>
\t\t\t<xmax>{x1}</xmax>
\t\t\t<ymax>{y1}</ymax>
\t\t</bndbox>{'''
		<part>
			<name>head</name>
			<bndbox><xmin>11</xmin><ymin>12</ymin><xmax>13.5</xmax><ymax>14</ymax></bndbox>
		</part>''' if part and name == 'person' else ''}
\t</object>""" for name, x0, y0, x1, y1, difficult, truncated in objects)
    return f"""<annotation>
\t<folder>VOC2007</folder>
\t<filename>{image_id}.jpg</filename>
\t<source><database>simsiam-bench fixture</database></source>
\t<size>
\t\t<width>64</width>
\t\t<height>80</height>
\t\t<depth>3</depth>
\t</size>
\t<segmented>{1 if image_id == '000001' else 0}</segmented>{body}
</annotation>
"""


def voc_fixtures():
    root = "VOC2007"
    for image_id, objects in VOC_OBJECTS.items():
        write(f"{root}/JPEGImages/{image_id}.jpg", JPEG)
        write(f"{root}/Annotations/{image_id}.xml", voc_xml(image_id, objects, part=image_id == "000002"))
    write(f"{root}/SegmentationClass/000001.png", PNG)
    write(f"{root}/SegmentationClass/000003.png", PNG)
    write(f"{root}/ImageSets/Segmentation/train.txt", "000001\n")
    write(f"{root}/ImageSets/Segmentation/val.txt", "000003\n")
    splits = {"train": ["000001"], "val": ["000002"], "trainval": ["000001", "000002"], "test": ["000003"]}
    for split, ids in splits.items():
        write(f"{root}/ImageSets/Main/{split}.txt", "".join(i + "\n" for i in ids))
        # VOC flags: 1 present, -1 absent, 0 difficult-only; positive flags are written with two spaces as VOC does.
        for cls in ["cat", "dog", "person"]:
            lines = []
            for i in ids:
                present = [o for o in VOC_OBJECTS[i] if o[0] == cls]
                if cls == "person" and i == "000001":
                    continue  # a missing line: the label matrix must default to -1
                flag = -1 if not present else (0 if all(o[5] for o in present) else 1)
                lines.append(f"{i} {flag:2d}\n")
            write(f"{root}/ImageSets/Main/{cls}_{split}.txt", "".join(lines))
    # Not a class list (two underscores): create_voc_data_files.py's validate_files drops it.
    write(f"{root}/ImageSets/Main/extra_cat_trainval.txt", "000001 1\n")


def rle_to_string(counts):
    """pycocotools common/maskApi.c rleToString, transcribed."""
    out = []
    for i, count in enumerate(counts):
        x = count - (counts[i - 2] if i > 2 else 0)
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def coco_fixtures():
    write("coco/val2017/000000000001.jpg", JPEG)
    write("coco/val2017/000000000002.jpg", JPEG)
    instances = {
        "info": {"description": "simsiam-bench fixture"},
        "images": [
            {"id": 1, "file_name": "000000000001.jpg", "width": 4, "height": 3},
            {"id": 2, "file_name": "000000000002.jpg", "width": 5, "height": 2},
        ],
        "categories": [{"id": 3, "name": "car", "supercategory": "vehicle"},
                       {"id": 1, "name": "person", "supercategory": "person"}],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 1, "bbox": [0.5, 1.0, 2.0, 1.5], "area": 2.25, "iscrowd": 0,
             "segmentation": [[0.5, 1.0, 2.5, 1.0, 2.5, 2.5]]},
            # 4×3 mask, column-major runs: 1 zero, 2 ones, 3 zeros, 6 ones.
            {"id": 11, "image_id": 1, "category_id": 3, "bbox": [0, 0, 4, 3], "area": 8, "iscrowd": 1,
             "segmentation": {"size": [3, 4], "counts": rle_to_string([1, 2, 3, 6])}},
            {"id": 12, "image_id": 2, "category_id": 3, "bbox": [1, 0, 2, 2], "area": 4, "iscrowd": 1,
             "segmentation": {"size": [2, 5], "counts": [2, 4, 4]}},
        ],
    }
    write("coco/annotations/instances_val2017.json", json.dumps(instances, indent=1) + "\n")


if __name__ == "__main__":
    for entry in os.listdir(HERE):
        if os.path.isdir(os.path.join(HERE, entry)):
            shutil.rmtree(os.path.join(HERE, entry))
    shutil.rmtree(os.path.join(SUPPORT, "gzip"), ignore_errors=True)
    gzip_fixtures(random.Random(3))
    idx_fixtures()
    cifar_fixtures()
    image_folder_fixtures()
    voc_fixtures()
    coco_fixtures()
