"""CIFAR-10: loading, checking, caching, and the paper's preprocessing as batched tensor ops.

Sources (picked by `find_source`):
* the official python batches (`cifar-10-batches-py/`), fetched through torchvision's
  `CIFAR10(download=True)` when the default data folder is empty;
* an image-folder copy laid out as `{train,test}/<class>/*.{png,jpg}` (CINIC-10 style, and the
  lossy JPEG copy in ../shared/data/cifar10-jpeg).

Images are decoded once and cached as uint8 arrays. During training the whole set lives on the
training device as uint8; every iteration draws a shuffled batch and pads, crops and flips each sample
with its own random offsets on that device (no per-image PIL work in the loop).

Preprocessing (Sec. 4.2): subtract the per-pixel mean of the training images (on a 0-1 scale; no
division by a std, no ImageNet statistics), then, for training only, zero-pad 4 pixels, take a random
32x32 crop and flip horizontally with probability 1/2. The padding is zero *after* the mean
subtraction, as in fb.resnet.torch. Test images are the original 32x32 view.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F

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


# ----------------------------------------------------------------------------- preprocessing


def to_tensor_nchw(x: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) array -> uint8 (N, 3, H, W) tensor."""
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def mean_image(x_uint8: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """The per-pixel mean of the given (training) images, (3, H, W) float32 on a 0-1 scale.

    Summed in float64 chunks: a float64 copy of the whole set (1.2 GB for CIFAR-10) is never made."""
    total = torch.zeros(x_uint8.shape[1:], dtype=torch.float64, device=x_uint8.device)
    for i in range(0, len(x_uint8), chunk):
        total += x_uint8[i: i + chunk].double().sum(0)
    return (total / len(x_uint8) / 255.0).float()


def normalize(x_uint8: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    return x_uint8.float().div_(255.0).sub_(mean)


def augment(x: torch.Tensor, gen: torch.Generator | None = None, pad: int = 4,
            part: tuple[int, int] | None = None) -> torch.Tensor:
    """Pad by `pad` zeros, crop back to the input size at a random offset and flip half the samples.

    Every sample gets its own offsets and flip; all of it is one gather on x's device. `part` = (rank, world):
    x is that rank's slice of a global batch of world x len(x) images; the random numbers are drawn for the
    whole global batch and sliced, so that DDP ranks together augment exactly as one process would."""
    b, c, h, w = x.shape
    dev = x.device
    xp = F.pad(x, (pad, pad, pad, pad))
    rank, world = part or (0, 1)
    sl = slice(rank * b, (rank + 1) * b)
    oy = torch.randint(0, 2 * pad + 1, (world * b, 1), device=dev, generator=gen)[sl]
    ox = torch.randint(0, 2 * pad + 1, (world * b, 1), device=dev, generator=gen)[sl]
    flip = (torch.rand(world * b, 1, device=dev, generator=gen) < 0.5)[sl]
    ar_h, ar_w = torch.arange(h, device=dev), torch.arange(w, device=dev)
    rows = oy + ar_h  # (b, h) rows of the padded image
    cols = ox + torch.where(flip, (w - 1) - ar_w, ar_w)  # (b, w); a flip reads the window right to left
    wp = w + 2 * pad
    flat = (rows[:, :, None] * wp + cols[:, None, :]).view(b, 1, h * w).expand(b, c, h * w)
    return xp.flatten(2).gather(2, flat).view(b, c, h, w)


def stream_seed(*parts: int) -> int:
    # A stable mix of integers into a 63-bit seed (Python's hash() is salted per process for str).
    return int.from_bytes(hashlib.sha256(",".join(map(str, parts)).encode()).digest()[:8], "little") >> 1


class TrainStream:
    """Training batches as a pure function of (seed, iteration): resumes reproduce the same stream.

    Iteration i takes images [i*B, (i+1)*B) of an endless chain of seeded epoch permutations, so every
    image is seen once per epoch and no batch is short. With world_size > 1 each rank takes its slice
    of the global batch (batch 128 on 2 GPUs is 64/64, as in the paper). One `iter()` yields
    `steps` batches starting at `start_step()`; Lightning calls it once per eval interval.
    """

    def __init__(self, x_uint8: torch.Tensor, y: torch.Tensor, mean: torch.Tensor, batch_size: int, seed: int,
                 steps: int, start_step: Callable[[], int] = lambda: 0, augment_data: bool = True,
                 rank: int = 0, world_size: int = 1, channels_last: bool = False):
        self.x, self.y, self.mean = x_uint8, y, mean
        self.batch_size, self.seed, self.steps, self.start_step = batch_size, seed, steps, start_step
        self.augment_data, self.rank, self.world_size = augment_data, rank, world_size
        self.channels_last = channels_last
        self._perms: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return self.steps

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            g = torch.Generator().manual_seed(stream_seed(self.seed, epoch, 0xDA7A))
            self._perms = {e: p for e, p in self._perms.items() if e >= epoch - 1}
            self._perms[epoch] = torch.randperm(len(self.x), generator=g).to(self.x.device)
        return self._perms[epoch]

    def indices(self, step: int) -> torch.Tensor:
        n, b = len(self.x), self.batch_size
        start = step * b
        e0, e1 = start // n, (start + b - 1) // n
        chain = self._perm(e0) if e0 == e1 else torch.cat([self._perm(e) for e in range(e0, e1 + 1)])
        off = start - e0 * n
        per_rank = b // self.world_size
        lo = off + self.rank * per_rank
        return chain[lo: lo + per_rank]

    def batch(self, step: int, gen: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self.indices(step)
        x = normalize(self.x[idx], self.mean)
        if self.augment_data:
            x = augment(x, gen, part=(self.rank, self.world_size))
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, self.y[idx]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        s0 = self.start_step()
        # The same generator on every rank (rank 0's, as one process would use): augment() slices what it draws.
        gen = torch.Generator(device=self.x.device).manual_seed(stream_seed(self.seed, s0, 0, 0xA06))
        for s in range(s0, s0 + self.steps):
            yield self.batch(s, gen)


class EvalBatches:
    """The un-augmented view of a set, in fixed order; with world_size > 1 each rank takes a shard."""

    def __init__(self, x_uint8: torch.Tensor, y: torch.Tensor, mean: torch.Tensor, batch_size: int = 1000,
                 rank: int = 0, world_size: int = 1, channels_last: bool = False):
        self.x, self.y, self.mean = x_uint8[rank::world_size], y[rank::world_size], mean
        self.batch_size, self.channels_last = batch_size, channels_last

    def __len__(self) -> int:
        return (len(self.x) + self.batch_size - 1) // self.batch_size

    def __iter__(self):
        for i in range(0, len(self.x), self.batch_size):
            x = normalize(self.x[i: i + self.batch_size], self.mean)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.y[i: i + self.batch_size]


def split_indices(n: int, n_val: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded train/val split of range(n): (train indices, val indices), both sorted."""
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def subset_indices(n: int, k: int | None, seed: int) -> np.ndarray:
    """k seeded indices of range(n) (all of them when k is None), sorted."""
    if k is None or k >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).permutation(n)[:k])


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
