"""What the beyond-the-paper studies share: the run's data as training saw it, its first batches, provenance, and the
plot style.
"""

from __future__ import annotations

import dataclasses
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .. import data as D
from ..analyze import inference_batches
from ..models import parse_arch
from ..train import CODE_COMMIT, device_name

RUN_FILES = {"gradflow_final": "gradflow_final.csv", "gradflow_train": "gradflow.csv", "lesion": "lesion.csv",
             "landscape_1d": "landscape_1d.csv", "landscape_2d": "landscape_2d.csv"}


def cifar_setup(cfg, arrays: D.CifarArrays, device: torch.device):
    """The run's data as training saw it: (train stream, test batches, train x/y on the device, mean image)."""
    dm = D.CIFARDataModule(dataclasses.replace(cfg, channels_last=False), arrays)
    dm.setup()
    tx, ty, mean = dm.train_x.to(device), dm.train_y.to(device), dm.mean.to(device)
    stream = D.TrainStream(tx, ty, mean, cfg.batch_size, cfg.seed, cfg.eval_every)
    test = inference_batches(dm.test_x.to(device), dm.test_y.to(device), mean, device)
    return stream, test, tx, ty, mean


def first_batches(stream: D.TrainStream, n: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The first n training batches of seed `seed`'s run (the same images and augmentation as its first session)."""
    gen = torch.Generator(device=stream.x.device).manual_seed(D._seed(seed, 0, 0, 0xA06))
    return [stream.batch(i, gen) for i in range(n)]


def provenance(device: torch.device, arrays: D.CifarArrays, **extra) -> dict:
    return dict(**extra, commit=CODE_COMMIT, device=device_name(device), torch=torch.__version__,
                python=platform.python_version(), threads=torch.get_num_threads(), data_source=arrays.source,
                data_path=str(Path(arrays.path).resolve()), created_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))


def fmt(x: float) -> str:
    if not np.isfinite(x):
        return "n/a"
    return f"{x:.3g}" if 1e-3 <= abs(x) < 1e4 else f"{x:.2e}"


def runs_frame(b: dict) -> pd.DataFrame:
    """The finished runs' final.json contents (for figures.data_label), or an empty frame."""
    return b["runs"] if not b["runs"].empty and "data_source" in b["runs"] else pd.DataFrame(columns=["data_source"])


def style(arch: str) -> dict:
    from ..figures import arch_color

    return dict(color=arch_color(arch), linestyle="--" if arch.startswith("plain") else "-", linewidth=1.4)


def arch_sort(archs) -> list[str]:
    return sorted(archs, key=lambda a: (a.startswith("plain"), parse_arch(a).depth, a))
