"""CIFAR-10: loading, checking, caching, and the Lightning data module that serves the paper's batches.

Sources (picked by `find_source`):
* the official python batches (`cifar-10-batches-py/`), fetched through torchvision's
  `CIFAR10(download=True)` when the default data folder is empty;
* an image-folder copy laid out as `{train,test}/<class>/*.{png,jpg}` (CINIC-10 style, and the
  lossy JPEG copy in ../shared/data/cifar10-jpeg).

Images are decoded once and cached as uint8 arrays. During training the whole set lives on the
training device as uint8 and `batches.py` (shared with the ImageNet-style data) draws, normalises and
augments each batch there with tensor ops; its docstring states the paper's preprocessing.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import lightning as L
import numpy as np
import torch

from .batches import EvalBatches, TrainStream, mean_image, split_indices, subset_indices, to_tensor_nchw

if TYPE_CHECKING:
    from .config import TrainConfig

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}
DEFAULT_DATA_DIR = "data/cifar10"


class DataError(Exception):
    """A problem with the user's data folder: reported in one line, without a traceback."""


@dataclass
class CifarArrays:
    train_x: np.ndarray  # (N, 32, 32, 3) uint8, HWC as stored
    train_y: np.ndarray  # (N,) int64
    test_x: np.ndarray
    test_y: np.ndarray
    source: str  # e.g. "imagefolder-jpeg (lossy)" or "official-python-batches"
    path: str  # where it was read from


def cache_dir() -> Path:
    return Path(os.environ.get("RESNET_REPRO_CACHE", Path.home() / ".cache" / "resnet_repro"))


# ----------------------------------------------------------------------------- finding and reading


def find_source(data_dir: str | os.PathLike) -> tuple[str, Path]:
    """Return ("imagefolder" | "batches", path) for a data folder, or raise DataError."""
    d = Path(data_dir)
    if (d / "train").is_dir() and (d / "test").is_dir():
        return "imagefolder", d
    for cand in (d, d / "cifar-10-batches-py"):
        if (cand / "data_batch_1").is_file() or (cand / "test_batch").is_file():
            return "batches", cand
    if not d.exists():
        raise DataError(f"data folder {d} does not exist")
    raise DataError(f"data folder {d} holds neither train/ and test/ class folders nor cifar-10-batches-py/")


def download_official(data_dir: str | os.PathLike) -> Path:
    """Fetch the official python batches with torchvision (needs internet)."""
    from torchvision.datasets import (
        CIFAR10,  # imported here: torchvision is only needed for this
    )

    Path(data_dir).mkdir(parents=True, exist_ok=True)
    try:
        CIFAR10(str(data_dir), train=True, download=True)
    except Exception as e:  # network errors come in many types; the user needs one line
        raise DataError(f"could not download CIFAR-10 into {data_dir}: {e}. "
                        f"Pass --data-dir pointing to a local copy instead") from None
    return Path(data_dir) / "cifar-10-batches-py"


def _read_batches(d: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    def read(names):
        xs, ys = [], []
        for n in names:
            f = d / n
            if not f.is_file():
                raise DataError(f"missing file {f}")
            try:
                with open(f, "rb") as fh:
                    entry = pickle.load(fh, encoding="latin1")
                xs.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
                ys.append(np.asarray(entry.get("labels", entry.get("fine_labels")), dtype=np.int64))
            except DataError:
                raise
            except Exception as e:
                raise DataError(f"cannot read {f}: {e}") from None
        return np.concatenate(xs).transpose(0, 2, 3, 1).copy(), np.concatenate(ys)

    tx, ty = read([f"data_batch_{i}" for i in range(1, 6)])
    vx, vy = read(["test_batch"])
    return tx, ty, vx, vy


def _read_imagefolder(d: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool]:
    from PIL import Image

    lossy = False

    def read(split):
        nonlocal lossy
        root = d / split
        classes = sorted(p.name for p in root.iterdir() if p.is_dir())
        if len(classes) != 10:
            raise DataError(f"{root} has {len(classes)} class folders, expected 10")
        xs, ys = [], []
        for label, c in enumerate(classes):
            files = sorted(p for p in (root / c).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            for f in files:
                lossy |= f.suffix.lower() in (".jpg", ".jpeg")
                try:
                    with Image.open(f) as im:
                        a = np.asarray(im.convert("RGB"), dtype=np.uint8)
                except Exception as e:
                    raise DataError(f"cannot read image {f}: {type(e).__name__}") from None
                if a.shape != (32, 32, 3):
                    raise DataError(f"image {f} is {a.shape[1]}x{a.shape[0]}, expected 32x32")
                xs.append(a)
                ys.append(label)
        if not xs:
            raise DataError(f"{root} holds no images")
        return np.stack(xs), np.asarray(ys, dtype=np.int64), classes

    tx, ty, c_train = read("train")
    vx, vy, c_test = read("test")
    if c_train != c_test:
        raise DataError(f"train and test class folders differ: {c_train} vs {c_test}")
    return tx, ty, vx, vy, lossy


def _count_files(d: Path, split: str) -> int:
    root = d / split
    return sum(1 for c in root.iterdir() if c.is_dir() for p in c.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def check_counts(tx, ty, vx, vy, expected: tuple[int, int], where: Path) -> None:
    n_train, n_test = expected
    if len(tx) != n_train or len(vx) != n_test:
        raise DataError(f"{where}: found {len(tx)} train and {len(vx)} test images, "
                        f"expected {n_train} and {n_test}")
    for name, y in (("train", ty), ("test", vy)):
        if len(np.unique(y)) != 10 or y.min() < 0 or y.max() > 9:
            raise DataError(f"{where}: {name} labels cover {len(np.unique(y))} classes, expected 10")


def load_cifar10(data_dir: str | os.PathLike | None = None, expected: tuple[int, int] = (50_000, 10_000),
                 use_cache: bool = True) -> CifarArrays:
    """Load CIFAR-10 from `data_dir` (or $DATA_DIR, or data/cifar10 with a torchvision download).

    Checks the image and class counts and raises DataError with a plain message on any problem.
    Decoded arrays are cached (keyed by the folder's path and listing) so later runs start in seconds.
    """
    explicit = bool(data_dir) or bool(os.environ.get("DATA_DIR"))  # an empty value (make's DATA_DIR=) means unset
    d = Path(data_dir or os.environ.get("DATA_DIR") or DEFAULT_DATA_DIR)
    try:
        kind, path = find_source(d)
    except DataError:
        if explicit:
            raise
        kind, path = "batches", download_official(d)

    if kind == "imagefolder":  # count first: a wrong copy is reported before any decoding
        n = (_count_files(path, "train"), _count_files(path, "test"))
        if n != expected:
            raise DataError(f"{path}: found {n[0]} train and {n[1]} test images, "
                            f"expected {expected[0]} and {expected[1]}")
    key = hashlib.sha1(f"{path.resolve()}|{kind}|{_listing_stamp(path, kind)}".encode()).hexdigest()[:16]
    cache = cache_dir() / f"cifar10-{key}.npz"
    if use_cache and cache.is_file():
        z = np.load(cache, allow_pickle=False)
        arr = CifarArrays(z["train_x"], z["train_y"], z["test_x"], z["test_y"], str(z["source"]), str(path))
    else:
        if kind == "batches":
            tx, ty, vx, vy = _read_batches(path)
            source = "official-python-batches"
        else:
            tx, ty, vx, vy, lossy = _read_imagefolder(path)
            source = "imagefolder-jpeg (lossy)" if lossy else "imagefolder-png"
        arr = CifarArrays(tx, ty, vx, vy, source, str(path))
        if use_cache:
            save_cache(cache, train_x=tx, train_y=ty, test_x=vx, test_y=vy, source=source)
    check_counts(arr.train_x, arr.train_y, arr.test_x, arr.test_y, expected, path)
    return arr


def save_cache(cache: Path, **arrays) -> None:
    """Write a decoded-data cache atomically. The temporary file is named per process: two campaign workers (or
    DDP ranks) that decode at once each write their own and the last rename wins; a shared name made the slower
    one's rename fail after the faster one had moved the file away."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f"{cache.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(cache)


def _listing_stamp(path: Path, kind: str) -> str:
    """Fingerprint of a data folder that changes when any file changes: name, size and mtime of every file (the
    batches, or every image), hashed. A file rewritten or corrupted after the first load invalidates the cache."""
    h = hashlib.sha1()
    folders = [path] if kind == "batches" else [c for s in ("train", "test") for c in sorted((path / s).iterdir())
                                               if c.is_dir()]
    for folder in folders:
        for e in sorted(os.scandir(folder), key=lambda e: e.name):
            if e.is_file():
                st = e.stat()
                h.update(f"{folder.name}/{e.name}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


# ----------------------------------------------------------------------------- the Lightning data module


class CIFARDataModule(L.LightningDataModule):
    """Holds CIFAR-10 on the training device as uint8 and serves the paper's batches."""

    def __init__(self, cfg: TrainConfig, arrays: CifarArrays | None = None):
        super().__init__()
        self.cfg, self.arrays = cfg, arrays

    def setup(self, stage: str | None = None) -> None:
        cfg = self.cfg
        a = self.arrays or load_cifar10(cfg.data_dir)
        self.source, self.source_path = a.source, a.path
        dev = self.trainer.strategy.root_device if self.trainer else torch.device("cpu")
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        train_idx, val_idx = (split_indices(len(a.train_x), cfg.val_size, cfg.split_seed)
                              if cfg.val_size else (np.arange(len(a.train_x)), None))
        train_idx = train_idx[subset_indices(len(train_idx), cfg.train_subset, cfg.split_seed)]
        test_idx = subset_indices(len(a.test_x), cfg.test_subset, cfg.split_seed)

        def dev_tensors(x, y, idx):
            return to_tensor_nchw(x[idx]).to(dev), torch.from_numpy(y[idx]).to(dev)

        self.train_x, self.train_y = dev_tensors(a.train_x, a.train_y, train_idx)
        self.mean = mean_image(self.train_x)  # training images only (the val split excluded)
        self.test_x, self.test_y = dev_tensors(a.test_x, a.test_y, test_idx)
        self.val = dev_tensors(a.train_x, a.train_y, val_idx) if val_idx is not None else None
        self.n_train, self.n_test = len(train_idx), len(test_idx)
        self.rank, self.world = rank, world
        # Evaluation batches: 1000 images on a GPU; 250 on a CPU, where 1000 spill the caches (quarter ResNet-56,
        # bf16, 2 threads: 15.4 s per 10k test images at 1000, 8.5 s at 250; the logits are bit-identical).
        self.eval_batch = 250 if dev.type == "cpu" else 1000
        step = (lambda: self.trainer.global_step) if self.trainer else (lambda: 0)
        # Every rank walks the same global batches and takes its own slice of each.
        self.stream = TrainStream(self.train_x, self.train_y, self.mean, cfg.batch_size, cfg.seed,
                                    cfg.eval_every, step, rank=rank, world_size=world,
                                    channels_last=cfg.channels_last)

    def train_dataloader(self):
        return self.stream

    def eval_batches(self, x, y):
        return EvalBatches(x, y, self.mean, self.eval_batch, self.rank, self.world, self.cfg.channels_last)

    def val_dataloader(self):
        loaders = [self.eval_batches(self.test_x, self.test_y)]
        if self.val is not None:
            loaders.insert(0, self.eval_batches(*self.val))
        return loaders
