"""`python -m resnet_repro bench`: training speed of this project's path against the conventional one.

For every arch, on the current device (CUDA if available, else CPU), with batch 128 and the same
number of warm-up and timed iterations for every path, on the same images:

* ``project``: the real training path. `train.LitResNet` and `data.CIFARDataModule` (the whole set on
  the device as uint8, batched on-device normalisation, crop and flip, channels_last, fused SGD on
  CUDA) driven by a Lightning Trainer without validation, logger or checkpoints. A callback reads
  `time.perf_counter()` at `on_train_batch_end`, with a CUDA sync only at the warm-up boundary and at
  the end, so the GPU queue is never drained in between.
* ``project-compile`` (with ``--compile``): the same with `TrainConfig.compile=True`.
* ``conventional``: what peer reproductions do. A torchvision-style CIFAR Dataset over the uint8 HWC
  array (`Image.fromarray` per item, like `torchvision.datasets.CIFAR10.__getitem__`) with per-image
  PIL transforms (RandomCrop(32, padding=4), RandomHorizontalFlip, ToTensor, per-channel Normalize),
  a shuffling DataLoader with worker processes (pin_memory on CUDA), host-to-device copies every
  iteration, an eager model in the default NCHW layout and plain `torch.optim.SGD` (momentum 0.9,
  weight decay 1e-4).
* ``bare-model``: a reference line with no data pipeline at all. The project's model setup
  (channels_last, the optimizer of `LitResNet.configure_optimizers`) stepping on one fixed batch of
  random tensors that already lives on the device: about the fastest these iterations can go.

On CUDA every path runs with the same backend flags as `train.train`: cudnn.benchmark and TF32 on.

ms/iter = (t_end - t_warm) / iters. images/s = batch / (ms/iter / 1000). The ratio column is
images/s over the conventional path's images/s for the same arch. Training FLOPs per iteration are
3 x the forward FLOPs (2 x multiply-adds of every Conv2d and Linear, counted with forward hooks on
one 3x32x32 image; BN, ReLU, additions and pooling are left out) x batch. The peak is a datasheet
number on CUDA (dense TF32 tensor-core, since fp32 training runs its convolutions in TF32) and an
estimate on CPU (cores x clock x fp32 FLOPs per cycle of the widest FMA the flags show).

Writes <out>/<device-slug>.csv (one row per arch and path, replacing an earlier file of that
device) and prints a summary table.
"""

from __future__ import annotations

import csv
import gc
import logging
import math
import os
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .hardware import device_info, forward_flops

BATCH = 128
SYNTHETIC_N = 50_000  # random training images when no data folder is given
SYNTHETIC_TEST_N = 1_000
# The per-channel statistics most peer CIFAR code normalises with (e.g. kuangliu/pytorch-cifar).
PEER_MEAN = (0.4914, 0.4822, 0.4465)
PEER_STD = (0.2023, 0.1994, 0.2010)

COLUMNS = ["arch", "path", "images_per_s", "ms_per_iter", "ratio_vs_conventional", "train_gflop_per_iter",
           "achieved_tflops", "peak_tflops", "peak_basis", "pct_of_peak", "device", "n_cpu", "workers", "batch",
           "warmup_iters", "timed_iters", "torch", "lightning", "commit", "data_source", "timestamp",
           "load_avg_1m_at_start"]

PATH_NOTES = {
    "project": "LitResNet + CIFARDataModule under a Lightning Trainer (on-device data, channels_last)",
    "project-compile": "the same with TrainConfig.compile=True",
    "conventional": "PIL per-image transforms, DataLoader workers, H2D copies, eager NCHW, torch SGD",
    "bare-model": "project model + optimizer on one fixed random device batch (no data pipeline)",
}

# ----------------------------------------------------------------------------- helpers


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _free(dev: torch.device) -> None:
    gc.collect()
    if dev.type == "cuda":
        torch.cuda.empty_cache()


@contextmanager
def _quiet_lightning():
    """Silence Lightning's 'GPU available ...' banner lines for the bench's short fits."""
    names = ["lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda",
             "lightning.fabric.utilities.rank_zero"]
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, lv in zip(loggers, levels):
            lg.setLevel(lv)


def bench_data(data_dir: str | None):
    """The images every path trains on: CIFAR-10 from a folder, or random images ("synthetic")."""
    from . import data as D

    if data_dir or os.environ.get("DATA_DIR"):
        a = D.load_cifar10(data_dir)
        return a, f"{a.source}: {Path(a.path).resolve()}"
    rng = np.random.default_rng(0)
    a = D.CifarArrays(
        train_x=rng.integers(0, 256, (SYNTHETIC_N, 32, 32, 3), dtype=np.uint8),
        train_y=rng.integers(0, 10, SYNTHETIC_N, dtype=np.int64),
        test_x=rng.integers(0, 256, (SYNTHETIC_TEST_N, 32, 32, 3), dtype=np.uint8),
        test_y=rng.integers(0, 10, SYNTHETIC_TEST_N, dtype=np.int64),
        source="synthetic", path="synthetic")
    return a, f"synthetic ({SYNTHETIC_N} random uint8 32x32x3 images, random labels)"


def default_workers(dev: torch.device) -> int:
    """The conventional path's DataLoader workers: every core on a GPU machine; on a CPU-only one,
    2 (the peers' usual setting), never more than the cores, since the workers share them with
    the model's own threads there."""
    n = os.cpu_count() or 1
    return n if dev.type == "cuda" else min(2, n)


# ----------------------------------------------------------------------------- the paths


class CIFARPIL(torch.utils.data.Dataset):
    """torchvision.datasets.CIFAR10's item access over an in-memory uint8 (N, 32, 32, 3) array."""

    def __init__(self, x: np.ndarray, y: np.ndarray, transform):
        self.x, self.y, self.transform = x, y, transform

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        from PIL import Image

        img = self.transform(Image.fromarray(self.x[i]))
        return img, int(self.y[i])


def _time_sgd_steps(model: nn.Module, opt: torch.optim.Optimizer, next_batch, dev: torch.device, warmup: int,
                    iters: int) -> float:
    """Seconds per SGD step of a hand-written loop, timed over `iters` steps after `warmup` untimed ones."""
    model.train()
    t0 = time.perf_counter()
    for i in range(warmup + iters):
        if i == warmup:
            _sync(dev)
            t0 = time.perf_counter()
        x, y = next_batch()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    _sync(dev)
    return (time.perf_counter() - t0) / iters


def time_conventional(arch: str, arrays, dev: torch.device, warmup: int, iters: int, workers: int) -> float:
    """Seconds per timed iteration of the conventional pipeline."""
    import torchvision.transforms as T

    from .models import build_model

    tf = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                    T.Normalize(PEER_MEAN, PEER_STD)])
    pin = dev.type == "cuda"
    loader = torch.utils.data.DataLoader(CIFARPIL(arrays.train_x, arrays.train_y, tf), batch_size=BATCH,
                                         shuffle=True, num_workers=workers, pin_memory=pin, drop_last=True,
                                         persistent_workers=workers > 0)

    def batches():
        while True:  # more iterations than one epoch holds: start another
            yield from loader

    torch.manual_seed(0)
    model = build_model(arch).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    it = batches()

    def next_batch():
        x, y = next(it)
        return x.to(dev, non_blocking=pin), y.to(dev, non_blocking=pin)

    dt = _time_sgd_steps(model, opt, next_batch, dev, warmup, iters)
    it.close()
    del it, loader, model, opt
    _free(dev)
    return dt


def time_project(arch: str, arrays, dev: torch.device, warmup: int, iters: int, compile: bool = False,
                 precision: str = "32-true") -> float:
    """Seconds per timed iteration of this project's Lightning training path."""
    import lightning as L
    from lightning.pytorch.callbacks import Callback

    from .config import make_config
    from .data import CIFARDataModule
    from .train import LitResNet

    total = warmup + iters

    class StepTimer(Callback):
        def __init__(self):
            self.n, self.t_warm, self.t_end = 0, None, None

        def _now(self) -> float:
            _sync(dev)  # only ever called at the two boundaries
            return time.perf_counter()

        def on_train_start(self, trainer, pl_module):
            if warmup == 0:
                self.t_warm = self._now()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.n += 1
            if self.n == warmup:
                self.t_warm = self._now()
            if self.n == total:
                self.t_end = self._now()

    # One Lightning epoch of `total` steps (eval_every = max_steps) and no validation at all.
    cfg = make_config("paper", arch=arch, max_steps=total, eval_every=total, compile=compile, precision=precision,
                      accelerator="gpu" if dev.type == "cuda" else "cpu", devices=1)
    L.seed_everything(cfg.seed, workers=False, verbose=False)
    module = LitResNet(cfg.to_dict())
    dm = CIFARDataModule(cfg, arrays)
    timer = StepTimer()
    with _quiet_lightning():
        trainer = L.Trainer(accelerator=cfg.accelerator, devices=1, precision=cfg.precision, max_steps=total,
                            max_epochs=-1, limit_val_batches=0, num_sanity_val_steps=0, logger=False,
                            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                            use_distributed_sampler=False, callbacks=[timer], benchmark=None)
        trainer.fit(module, datamodule=dm)
    if timer.n != total or timer.t_end is None or timer.t_warm is None:
        raise RuntimeError(f"project path ran {timer.n} of {total} iterations")
    dt = (timer.t_end - timer.t_warm) / iters
    del trainer, module, dm, timer
    _free(dev)
    return dt


def time_bare(arch: str, dev: torch.device, warmup: int, iters: int) -> float:
    """Seconds per timed iteration of the project's model and optimizer on one random device batch."""
    from .config import TrainConfig
    from .models import build_model

    cfg = TrainConfig(arch=arch)
    torch.manual_seed(0)
    model = build_model(arch).to(dev)
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    fused = True if dev.type == "cuda" else None  # as LitResNet.configure_optimizers
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                          fused=fused)
    x = torch.randn(BATCH, 3, 32, 32, device=dev).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (BATCH,), device=dev)
    dt = _time_sgd_steps(model, opt, lambda: (x, y), dev, warmup, iters)
    del model, opt, x, y
    _free(dev)
    return dt


# ----------------------------------------------------------------------------- the command


def run_bench(args) -> list[dict]:
    """Time every path for every arch in args.archs; write the CSV and print a summary. Returns the rows."""
    import lightning as L

    from .models import parse_arch
    from .runfolder import git_commit

    archs = [a.strip() for a in str(args.archs).split(",") if a.strip()]
    if not archs:
        raise ValueError("--archs is empty")
    for a in archs:
        parse_arch(a)  # a bad name fails here, before any timing
    warmup, iters = int(args.warmup), int(args.iters)
    if warmup < 0 or iters < 1:
        raise ValueError(f"need --warmup >= 0 and --iters >= 1, got {warmup} and {iters}")
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    workers = default_workers(dev) if getattr(args, "workers", None) is None else int(args.workers)
    if workers < 0:
        raise ValueError(f"--workers must be >= 0, got {workers}")
    load0 = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    if dev.type == "cuda":  # the same backend flags as train.train, for every path
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    arrays, data_source = bench_data(getattr(args, "data_dir", None))
    name, slug, peak, basis = device_info(dev)
    commit = git_commit()
    paths = ["conventional", "project"] + (["project-compile"] if getattr(args, "compile", False) else []) + \
        ["bare-model"]
    print(f"[bench] {name}; torch {torch.__version__}, lightning {L.__version__}; batch {BATCH}, "
          f"{warmup} warm-up + {iters} timed iterations per path; conventional workers: {workers}; "
          f"data: {data_source}; 1-min load average at start: {load0:.2f} on {os.cpu_count()} CPUs", flush=True)

    rows = []
    for arch in archs:
        gflop = 3 * forward_flops(arch) * BATCH / 1e9
        secs: dict[str, float] = {}
        for path in paths:
            if path == "conventional":
                s = time_conventional(arch, arrays, dev, warmup, iters, workers)
            elif path == "project":
                s = time_project(arch, arrays, dev, warmup, iters)
            elif path == "project-compile":
                s = time_project(arch, arrays, dev, warmup, iters, compile=True)
            else:
                s = time_bare(arch, dev, warmup, iters)
            secs[path] = s
            print(f"[bench] {arch:<10} {path:<16} {BATCH / s:9.1f} img/s  {1e3 * s:8.2f} ms/iter", flush=True)
        conv_ips = BATCH / secs["conventional"]
        for path in paths:
            s = secs[path]
            ips = BATCH / s
            tflops = gflop / s / 1e3
            rows.append(dict(
                arch=arch, path=path, images_per_s=round(ips, 2), ms_per_iter=round(1e3 * s, 3),
                ratio_vs_conventional=round(ips / conv_ips, 3), train_gflop_per_iter=round(gflop, 3),
                achieved_tflops=round(tflops, 5), peak_tflops=round(peak, 3) if math.isfinite(peak) else "",
                peak_basis=basis, pct_of_peak=round(100 * tflops / peak, 3) if math.isfinite(peak) else "",
                device=name, n_cpu=os.cpu_count(), workers=workers if path == "conventional" else 0,
                batch=BATCH, warmup_iters=warmup, timed_iters=iters, torch=torch.__version__,
                lightning=L.__version__, commit=commit, data_source=data_source,
                timestamp=time.strftime("%Y-%m-%dT%H:%M:%S%z"), load_avg_1m_at_start=round(load0, 2)))

    out = Path(getattr(args, "out", None) or "results/bench")
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{slug}.csv"
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, COLUMNS)
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)
    print_summary(rows, basis)
    print(f"[bench] wrote {path}", flush=True)
    return rows


def print_summary(rows: list[dict], basis: str) -> None:
    head = f"{'arch':<10} {'path':<16} {'img/s':>9} {'ms/iter':>9} {'x conv':>7} {'TFLOP/s':>9} {'% peak':>7}"
    print()
    print(head)
    print("-" * len(head))
    for r in rows:
        pct = f"{r['pct_of_peak']:.2f}" if r["pct_of_peak"] != "" else "n/a"
        print(f"{r['arch']:<10} {r['path']:<16} {r['images_per_s']:>9.1f} {r['ms_per_iter']:>9.2f} "
              f"{r['ratio_vs_conventional']:>7.2f} {r['achieved_tflops']:>9.4f} {pct:>7}")
    print()
    for p in dict.fromkeys(r["path"] for r in rows):
        print(f"  {p:<16} {PATH_NOTES[p]}")
    if rows:
        print(f"  training GFLOP/iter = 3 x forward (Conv2d+Linear, 2 x MACs) x batch; peak: {basis}")
