"""Layer responses (the paper's Fig. 7): the only step that needs checkpoints.

For every finished run, load `checkpoints/final.ckpt`, run the net in inference mode over the whole
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
from .models import ResNet, build_model

LAYER_STD_COLUMNS = ["layer", "stage", "block", "conv", "std", "std_channel_mean"]


class ResponseStats:
    """Forward hooks that accumulate per-channel sums of each response layer's output in float64."""

    def __init__(self, model: ResNet):
        self.layers = model.response_layers()
        self.sums: list[torch.Tensor | None] = [None] * len(self.layers)
        self.handles = [m.register_forward_hook(self._hook(i)) for i, (_, _, _, m) in enumerate(self.layers)]

    def _hook(self, i: int):
        def hook(module, inputs, out):
            o = out.detach().double()
            s = torch.stack([o.sum((0, 2, 3)), (o * o).sum((0, 2, 3)),
                             torch.full((o.shape[1],), o.numel() / o.shape[1], dtype=o.dtype, device=o.device)])
            self.sums[i] = s if self.sums[i] is None else self.sums[i] + s
        return hook

    def remove(self) -> None:
        for h in self.handles:
            h.remove()

    def table(self) -> pd.DataFrame:
        rows = []
        for i, ((stage, block, conv, _), s) in enumerate(zip(self.layers, self.sums), 1):
            s1, s2, n = s[0], s[1], s[2]
            mean, sq = s1.sum() / n.sum(), s2.sum() / n.sum()
            ch_std = (s2 / n - (s1 / n) ** 2).clamp_min(0).sqrt()
            rows.append(dict(layer=i, stage=stage, block=block, conv=conv,
                             std=float((sq - mean * mean).clamp_min(0).sqrt()),
                             std_channel_mean=float(ch_std.mean())))
        return pd.DataFrame(rows, columns=LAYER_STD_COLUMNS)


@torch.no_grad()
def layer_stds(model: ResNet, batches) -> pd.DataFrame:
    """Run `model` (in eval mode) over `batches` of (x, y) and return the per-layer std table."""
    model.eval()
    stats = ResponseStats(model)
    try:
        for x, _ in batches:
            model(x)
    finally:
        stats.remove()
    return stats.table()


def load_final_model(run: Path, device: torch.device) -> ResNet:
    cfg = json.loads((run / "config.json").read_text())
    ckpt = torch.load(run / "checkpoints" / "final.ckpt", map_location="cpu", weights_only=False)
    sd = {k[len("model."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    model = build_model(cfg["arch"])
    model.load_state_dict({k.replace("_orig_mod.", ""): v for k, v in sd.items()})
    return model.to(device)


def analyze_run(run: Path, arrays: D.CifarArrays, device: torch.device) -> pd.DataFrame:
    cfg_d = json.loads((run / "config.json").read_text())
    cfg = TrainConfig(**{**cfg_d, "milestones": tuple(cfg_d["milestones"])})
    from .train import CIFARDataModule  # the same mean image as in training (same split and subset)

    dm = CIFARDataModule(cfg, arrays)
    dm.setup()
    model = load_final_model(run, device)
    test_x = D.to_tensor_nchw(arrays.test_x).to(device)  # the full test set, whatever the run evaluated
    test_y = torch.from_numpy(arrays.test_y).to(device)
    df = layer_stds(model, D.EvalBatches(test_x, test_y, dm.mean.to(device), 500))
    df.to_csv(run / "layer_std.csv", index=False)
    return df


def finished_runs(preset: str, results: str | Path = "results") -> list[Path]:
    root = Path(results) / preset / "runs"
    return sorted(p for p in root.glob("*/seed*") if (p / "final.json").is_file())


def analyze_preset(preset: str, results: str | Path = "results", data_dir: str | None = None,
                   force: bool = False) -> list[Path]:
    """Write layer_std.csv for every finished run that has its final checkpoint and lacks the file."""
    todo, no_ckpt = [], []
    for run in finished_runs(preset, results):
        if (run / "layer_std.csv").is_file() and not force:
            continue
        (todo if (run / "checkpoints" / "final.ckpt").is_file() else no_ckpt).append(run)
    for run in no_ckpt:
        print(f"[analyze] {run}: no final checkpoint here, layer_std.csv not computed", flush=True)
    if not todo:
        print(f"[analyze] {preset}: nothing to do", flush=True)
        return []
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    data_dirs = {json.loads((r / "config.json").read_text()).get("data_dir") for r in todo}
    arrays = {d: D.load_cifar10(data_dir or d) for d in data_dirs}
    for run in todo:
        cfg_dir = json.loads((run / "config.json").read_text()).get("data_dir")
        df = analyze_run(run, arrays[cfg_dir], device)
        print(f"[analyze] {run}: {len(df)} layers, mean std {df['std'].mean():.3f}", flush=True)
    return todo
