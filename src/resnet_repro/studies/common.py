"""What the studies share: the finished runs handed to each study's `collect` (RunSet), reading one file from every
run folder, and for the measurements beyond the paper the run's data as training saw it and its first batches (a
measurement's provenance is runfolder.provenance).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .. import batches as B
from .. import data as D
from ..analyze import inference_batches

@dataclasses.dataclass
class RunSet:
    """The finished runs of one preset, as collect hands them to each study: the run folders (sorted by net and seed),
    their final.json contents, and runs.csv's frame."""
    preset: str
    dirs: list[Path]
    finals: list[dict]
    runs: pd.DataFrame

    @classmethod
    def of(cls, preset: str, run_root: Path, runs: pd.DataFrame) -> "RunSet":
        dirs = [rd for rd in sorted(Path(run_root).glob("*/seed*")) if (rd / "final.json").is_file()]
        return cls(preset, dirs, [json.loads((rd / "final.json").read_text()) for rd in dirs], runs)


def run_files(rs: RunSet, fname: str, columns: list[str]) -> pd.DataFrame:
    """One file of every finished run folder, concatenated (an empty frame with `columns` if none has it). Finished
    runs only: a run still training has a partial gradflow.csv that would read as the whole record."""
    frames = [pd.read_csv(r / fname) for r in rs.dirs if (r / fname).is_file() and (r / fname).stat().st_size]
    return pd.concat(frames, ignore_index=True).reindex(columns=columns) if frames else pd.DataFrame(columns=columns)


def run_jsons(folder: Path, name: str) -> list[dict]:
    """<folder>/runs/*/seed*/<name> of every run that has one (the provenance of a per-run measurement)."""
    return [json.loads(p.read_text()) for p in sorted(Path(folder).glob(f"runs/*/seed*/{name}"))]


RUN_FILES = {"gradflow_final": "gradflow_final.csv", "gradflow_train": "gradflow.csv", "lesion": "lesion.csv",
             "landscape_1d": "landscape_1d.csv", "landscape_2d": "landscape_2d.csv"}


def cifar_setup(cfg, arrays: D.CifarArrays, device: torch.device):
    """The run's data as training saw it: (train stream, test batches, train x/y on the device, mean image)."""
    dm = D.CIFARDataModule(dataclasses.replace(cfg, channels_last=False), arrays)
    dm.setup()
    tx, ty, mean = dm.train_x.to(device), dm.train_y.to(device), dm.mean.to(device)
    stream = B.TrainStream(tx, ty, mean, cfg.batch_size, cfg.seed, cfg.eval_every)
    test = inference_batches(dm.test_x.to(device), dm.test_y.to(device), mean, device)
    return stream, test, tx, ty, mean


def first_batches(stream: B.TrainStream, n: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The first n training batches of seed `seed`'s run (the same images and augmentation as its first session)."""
    gen = torch.Generator(device=stream.x.device).manual_seed(B.stream_seed(seed, 0, 0, 0xA06))
    return [stream.batch(i, gen) for i in range(n)]


def fmt(x: float) -> str:
    if not np.isfinite(x):
        return "n/a"
    return f"{x:.3g}" if 1e-3 <= abs(x) < 1e4 else f"{x:.2e}"


def runs_frame(b: dict, shown: pd.DataFrame | None = None) -> pd.DataFrame:
    """The finished runs' final.json contents (for figures.data_label), or an empty frame; with `shown` (a table
    with arch and seed columns), only the runs it draws, so a figure's footer names their devices, not the preset's."""
    runs = b["runs"] if not b["runs"].empty and "data_source" in b["runs"] else pd.DataFrame(columns=["data_source"])
    if shown is None or runs.empty:
        return runs
    keys = set(zip(shown.arch, shown.seed.astype(int)))
    return runs[[(a, int(s)) in keys for a, s in zip(runs.arch, runs.seed)]]
