"""Image folders for the ImageNet-style presets: find, check and decode ``<data_dir>/{train,val}/<class>/*``.

The memory loader decodes every image once (shorter side resized to S, center-cropped to S x S) into a uint8 cache;
the workers loader only lists the folder (torchvision ImageFolder). The class count and, where ``expect_counts`` is
set, the image counts are checked on the file listing before anything is decoded. imagenet.py builds the
augmentation, the test views and the data module on top of this.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import data as D
from .data import DataError

PAPER_CROP = 224  # the paper's crop; scale_range is given in the paper's pixels for this crop


# ----------------------------------------------------------------------------- sizes


def test_size(cfg) -> int:
    """S: the side of the stored images and of the test-time image (the paper's 256 at T = 224)."""
    return round(cfg.scale_range[0] * cfg.image_size / PAPER_CROP)


def scale_pixels(cfg) -> tuple[int, int]:
    """The training shorter-side range in pixels at this image_size (the paper's [256, 480] at 224)."""
    lo, hi = cfg.scale_range
    return round(lo * cfg.image_size / PAPER_CROP), round(hi * cfg.image_size / PAPER_CROP)


# ----------------------------------------------------------------------------- finding, checking, decoding


@dataclass
class FolderArrays:
    """A decoded image folder (the memory loader): S x S uint8 images, HWC as PIL gives them."""

    train_x: np.ndarray  # (N, S, S, 3) uint8
    train_y: np.ndarray  # (N,) int64
    val_x: np.ndarray
    val_y: np.ndarray
    classes: list[str]
    source: str  # e.g. "image folder 'imagenette-224' (JPEG, all 224x224), 10 classes"
    path: str


@dataclass
class FolderIndex:
    """An image folder listed but not decoded (the workers loader): torchvision ImageFolders without transforms."""

    train_set: object  # torchvision.datasets.ImageFolder
    val_set: object
    classes: list[str]
    source: str
    path: str


def data_root(cfg) -> Path:
    d = cfg.data_dir or os.environ.get("DATA_DIR")
    if not d:
        raise DataError("the imagefolder data set needs --data-dir DIR (or DATA_DIR), where DIR/train and DIR/val "
                        "hold one folder of images per class")
    root = Path(d)
    if not root.exists():
        raise DataError(f"data folder {root} does not exist")
    for split in ("train", "val"):
        if not (root / split).is_dir():
            raise DataError(f"{root} has no {split}/ folder; expected {root}/{{train,val}}/<class>/*.JPEG")
    return root


def list_split(root: Path, split: str) -> tuple[list[str], list[tuple[Path, int]]]:
    """(sorted class names, [(file, label)]) of root/split, in torchvision ImageFolder's order."""
    from torchvision.datasets.folder import IMG_EXTENSIONS

    d = root / split
    classes = sorted(p.name for p in d.iterdir() if p.is_dir())
    files = [(f, label) for label, c in enumerate(classes) for f in sorted((d / c).iterdir())
             if f.suffix.lower() in IMG_EXTENSIONS]
    return classes, files


def check_listing(root: Path, cfg, train_classes: list[str], val_classes: list[str], n_train: int,
                  n_val: int) -> None:
    """Class folders and image counts against the configuration; DataError with a plain message."""
    if train_classes != val_classes:
        only = sorted(set(train_classes) ^ set(val_classes))
        raise DataError(f"{root}: train/ and val/ hold different class folders (e.g. {', '.join(only[:3])})")
    if len(train_classes) != cfg.num_classes:
        raise DataError(f"{root}: found {len(train_classes)} class folders, expected {cfg.num_classes} "
                        f"(num_classes)")
    if n_train == 0 or n_val == 0:
        raise DataError(f"{root}: found {n_train} train and {n_val} val images")
    if cfg.expect_counts and (n_train, n_val) != tuple(cfg.expect_counts):
        raise DataError(f"{root}: found {n_train:,} train and {n_val:,} val images, expected "
                        f"{cfg.expect_counts[0]:,} and {cfg.expect_counts[1]:,} (expect_counts; "
                        f"--expect-counts '' checks nothing)")


def decode(path: Path, size: int) -> tuple[np.ndarray, tuple[int, int]]:
    """One image as (size, size, 3) uint8: RGB, shorter side resized to `size` (PIL bilinear, antialiased),
    center-cropped. The same calls as the workers loader's Resize + CenterCrop. Also returns the file's size."""
    import torchvision.transforms.functional as TF
    from PIL import Image

    try:
        with Image.open(path) as im:
            orig = im.size
            im = im.convert("RGB")  # greyscale (242 Imagenette files) and CMYK to RGB
    except Exception as e:
        raise DataError(f"cannot read image {path}: {type(e).__name__}") from None
    if im.size != (size, size):
        im = TF.center_crop(TF.resize(im, size), [size, size])
    return np.asarray(im, dtype=np.uint8), orig


def _source(root: Path, files: list[tuple[Path, int]], sizes: set, n_classes: int) -> str:
    fmts = sorted({f.suffix.lower().lstrip(".").replace("jpeg", "jpg") for f, _ in files})
    size = f", all {next(iter(sizes))[0]}x{next(iter(sizes))[1]}" if len(sizes) == 1 else ""
    return f"image folder '{root.name}' ({'/'.join(fmts).upper()}{size}), {n_classes} classes"


def load_imagefolder(cfg, use_cache: bool = True) -> FolderArrays:
    """The memory loader's data: list and check the folder, then decode it once into a uint8 cache
    (keyed by the folder, its listing and the stored size S) in ~/.cache/resnet_repro/."""
    root = data_root(cfg)
    classes, train_files = list_split(root, "train")
    val_classes, val_files = list_split(root, "val")
    check_listing(root, cfg, classes, val_classes, len(train_files), len(val_files))
    size = test_size(cfg)
    counts = {s: np.bincount([y for _, y in fs], minlength=len(classes))
              for s, fs in (("train", train_files), ("val", val_files))}
    stamp = ",".join(f"{s}/{c}:{n[i]}" for s, n in counts.items() for i, c in enumerate(classes))
    key = hashlib.sha1(f"{root.resolve()}|{size}|{stamp}".encode()).hexdigest()[:16]
    cache = D.cache_dir() / f"imagefolder-{root.name}-{size}px-{key}.npz"
    if use_cache and cache.is_file():
        z = np.load(cache, allow_pickle=False)
        return FolderArrays(z["train_x"], z["train_y"], z["val_x"], z["val_y"], [str(c) for c in z["classes"]],
                            str(z["source"]), str(root))
    t0, sizes, arrays = time.time(), set(), {}
    print(f"[data] decoding {len(train_files):,} train and {len(val_files):,} val images of {root} at "
          f"{size}x{size} (once; cached in {cache.parent})", flush=True)
    for split, files in (("train", train_files), ("val", val_files)):
        x = np.empty((len(files), size, size, 3), dtype=np.uint8)
        for i, (f, _) in enumerate(files):
            x[i], orig = decode(f, size)
            sizes.add(orig)
        arrays[split] = (x, np.asarray([y for _, y in files], dtype=np.int64))
    source = _source(root, train_files + val_files, sizes, len(classes))
    print(f"[data] decoded in {time.time() - t0:.0f}s: {source}", flush=True)
    out = FolderArrays(*arrays["train"], *arrays["val"], classes, source, str(root))
    if use_cache:
        D.save_cache(cache, train_x=out.train_x, train_y=out.train_y, val_x=out.val_x, val_y=out.val_y,
                     classes=np.asarray(classes), source=source)
    return out


def scan_imagefolder(cfg) -> FolderIndex:
    """The workers loader's data: torchvision ImageFolders of train/ and val/, checked, nothing decoded."""
    from torchvision.datasets import ImageFolder

    root = data_root(cfg)
    train_set, val_set = ImageFolder(str(root / "train")), ImageFolder(str(root / "val"))
    check_listing(root, cfg, train_set.classes, val_set.classes, len(train_set), len(val_set))
    files = [(Path(f), y) for f, y in train_set.samples[:1000]]
    return FolderIndex(train_set, val_set, train_set.classes,
                       _source(root, files, set(), len(train_set.classes)), str(root))


def load_data(cfg) -> FolderArrays | FolderIndex:
    return load_imagefolder(cfg) if cfg.loader == "memory" else scan_imagefolder(cfg)
