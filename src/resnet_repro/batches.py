"""Device-resident batches: the paper's preprocessing as batched tensor ops, for CIFAR-10 and the ImageNet-style data.

The whole training set lives on the training device as uint8; every iteration draws a shuffled batch and
pads, crops and flips each sample with its own random offsets on that device (no per-image PIL work in the
loop). The stream of batches is a pure function of (seed, iteration), so a resumed run sees what an
uninterrupted one would.

Preprocessing (Sec. 4.2): subtract the per-pixel mean of the training images (on a 0-1 scale; no
division by a std, no ImageNet statistics), then, for training only, zero-pad 4 pixels, take a random
32x32 crop and flip horizontally with probability 1/2. The padding is zero *after* the mean
subtraction, as in fb.resnet.torch. Test images are the original 32x32 view.
"""

from __future__ import annotations

import hashlib
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F


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
