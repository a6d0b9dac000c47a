"""Layer responses (the paper's Fig. 7): a step that needs the final weights.

For every finished run, load `checkpoints/final.ckpt` (or, without it, the published `weights.safetensors`), run the net in inference mode over the whole
test set and record, with forward hooks, the response of every 3x3 conv layer of the stacked blocks:
the output of its BN, before the ReLU and before the shortcut addition (Sec. 4.2, Fig. 7).

Definition of the std (what Fig. 7 plots here): for layer l with response r[i, c, h, w] over all test
images i, channels c and positions (h, w), std_l = sqrt(mean(r^2) - mean(r)^2), the population std of
all those numbers pooled together. `std_channel_mean` is also kept: the std of each channel over
images and positions, averaged over channels (it differs from the pooled std by the spread of the
channel means, which BN's learned shift creates).

Writes `layer_std.csv` into the run folder: layer, stage, block, conv, std, std_channel_mean.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import torch

from . import data as D
from .config import TrainConfig
from .hooks import LAYER_STD_COLUMNS, ResponseStats, layer_stds  # noqa: F401 (re-exported for the notebooks)
from .models import ResNet, build_model, parse_arch


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def run_config(run: Path) -> TrainConfig:
    """The resolved configuration a run folder was trained with."""
    return TrainConfig(**json.loads((run / "config.json").read_text()))


def inference_batches(x_uint8: torch.Tensor, y: torch.Tensor, mean: torch.Tensor, device: torch.device) -> D.EvalBatches:
    """Un-augmented batches for the analyses of trained nets (layer stds, lesions, landscapes). Inference-mode BN
    makes each image's output independent of its batch, so the size is free: on a CPU, small channels_last
    batches are ~4x faster (ResNet-56 on 2 cores: 325 images/s in batches of 1000, 1,312 in channels_last 100s)."""
    cpu = device.type == "cpu"
    return D.EvalBatches(x_uint8, y, mean, 100 if cpu else 1000, channels_last=cpu)


def load_final_model(run: Path, device: torch.device) -> ResNet:
    """The run's final weights, channels_last on a CPU (to match inference_batches)."""
    from .weights import (
        final_state,  # checkpoints/final.ckpt where it exists, else the published weights
    )

    model = build_model(run_config(run).arch)
    model.load_state_dict(final_state(run))
    fmt = torch.channels_last if device.type == "cpu" else torch.contiguous_format
    return model.to(device, memory_format=fmt)


def analyze_run(run: Path, arrays: D.CifarArrays, device: torch.device) -> pd.DataFrame:
    dm = D.CIFARDataModule(run_config(run), arrays)  # the same mean image as in training (same split and subset)
    dm.setup()
    model = load_final_model(run, device)
    test_x = D.to_tensor_nchw(arrays.test_x).to(device)  # the full test set, whatever the run evaluated
    test_y = torch.from_numpy(arrays.test_y).to(device)
    df = layer_stds(model, inference_batches(test_x, test_y, dm.mean.to(device), device))
    df.to_csv(run / "layer_std.csv", index=False)
    return df


def finished_runs(preset: str, results: str | Path = "results") -> list[Path]:
    root = Path(results) / preset / "runs"
    return sorted(p for p in root.glob("*/seed*") if (p / "final.json").is_file())


def runs_with_checkpoint(preset: str, results: str | Path = "results", archs=None, name: str = "analyze",
                         done=lambda run: False, seeds=None) -> list[Path]:
    """Finished CIFAR runs of `preset` (only `archs` and `seeds`, if given) that still need work and have their
    final checkpoint. `done(run)` drops a run silently; a run that needs work but has no checkpoint is reported."""
    out = []
    for run in finished_runs(preset, results):
        if (archs and run.parent.name not in archs) or (seeds is not None and run.name not in
                                                        {f"seed{k}" for k in seeds}) or done(run):
            continue
        try:
            if parse_arch(run.parent.name).family != "cifar":
                continue
        except ValueError:
            continue
        from .weights import has_final_weights

        if not has_final_weights(run):
            print(f"[{name}] {run}: no final weights here (no checkpoint, no published file), skipped", flush=True)
            continue
        out.append(run)
    return out


def arrays_for(runs: list[Path], data_dir: str | None = None) -> dict:
    """CIFAR-10 arrays for the runs, loaded once per data folder and keyed by `data_key`."""
    cache: dict = {}
    for run in runs:
        key = data_key(run, data_dir)
        if key not in cache:
            cache[key] = D.load_cifar10(key)
    return cache


def data_key(run: Path, data_dir: str | None = None) -> str | None:
    """The data folder of a run: `data_dir` if given, else the one its config names."""
    return data_dir or run_config(run).data_dir


def analyze_preset(preset: str, results: str | Path = "results", data_dir: str | None = None,
                   force: bool = False, archs=None, seeds=None) -> list[Path]:
    """Write layer_std.csv for every finished run that has its final checkpoint and lacks the file."""
    todo = runs_with_checkpoint(preset, results, archs, done=lambda r: not force and (r / "layer_std.csv").is_file(),
                                seeds=seeds)
    if not todo:
        print(f"[analyze] {preset}: nothing to do", flush=True)
        return []
    device, arrays = default_device(), arrays_for(todo, data_dir)
    for run in todo:
        df = analyze_run(run, arrays[data_key(run, data_dir)], device)
        print(f"[analyze] {run}: {len(df)} layers, mean std {df['std'].mean():.3f}", flush=True)
    return todo
