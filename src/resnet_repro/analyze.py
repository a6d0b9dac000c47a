"""Layer responses (the paper's Fig. 7): a step that needs the final weights.

For every finished run, load `checkpoints/final.ckpt` (or, without it, the published `weights.safetensors`), run the net in inference mode over the whole
test set and record, with forward hooks, the response of every 3x3 conv layer of the stacked blocks:
the output of its BN, before the ReLU and before the shortcut addition (Sec. 4.2, Fig. 7).

Definition of the std (what Fig. 7 plots here): for layer l with response r[i, c, h, w] over all test
images i, channels c and positions (h, w), std_l = sqrt(mean(r^2) - mean(r)^2), the population std of
all those numbers pooled together. `std_channel_mean` is also kept: the std of each channel over
images and positions, averaged over channels (it differs from the pooled std by the spread of the
channel means, which BN's learned shift creates).

How the pooled variance is spread over the images: with d_i the rms deviation of image i's responses from the
pooled mean (so std_l^2 is the mean of d_i^2), `std_image_median` is the median d_i and `top1pct_share` the share of
sum_i d_i^2 carried by the 1% of images with the largest d_i. A heavy tail (a few images whose activations grow
along the residual stream under the running BN statistics) lifts std_l far above the median image's.

Writes `layer_std.csv` into the run folder: layer, stage, block, conv, std, std_channel_mean, std_image_median,
top1pct_share. Writes also
`test_wrong.json`: which test images (by index in test-set order) the final weights get wrong, in fp32 inference,
so that claims.py can measure the test-set noise of a difference between two nets on the same images (paired).
Writes also `response_tail.json`: the 1% of test images with the largest share of the response variance (each
image's d_i^2 / sum_j d_j^2, averaged over the layers), with their shares, labels and input percentiles (where each
image sits among the test images by contrast, colour saturation and blue excess, INPUT_MEASURES): which images a
heavy tail is, and what sets them apart.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import batches as B
from . import data as D
from .hooks import LAYER_STD_COLUMNS, TAIL_FRACTION, ResponseStats
from .models import ResNet
from .runfolder import (CODE_COMMIT, arrays_for, data_key, load_final_model, provenance, run_config,
                        runs_with_checkpoint)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def inference_batches(x_uint8: torch.Tensor, y: torch.Tensor, mean: torch.Tensor, device: torch.device) -> B.EvalBatches:
    """Un-augmented batches for the analyses of trained nets (layer stds, lesions, landscapes). Inference-mode BN
    makes each image's output independent of its batch, so the size is free: on a CPU, small channels_last
    batches are ~4x faster (ResNet-56 on 2 cores: 325 images/s in batches of 1000, 1,312 in channels_last 100s)."""
    cpu = device.type == "cpu"
    return B.EvalBatches(x_uint8, y, mean, 100 if cpu else 1000, channels_last=cpu)


OUTPUTS = ("layer_std.csv", "test_wrong.json", "response_tail.json")


def current(run: Path, name: str) -> bool:
    """Whether the run has output `name` in its present form: a layer_std.csv written before a column was added
    (the per-image tail columns) is measured again, and only it: test_wrong.json is kept; a response_tail.json
    written before the input percentiles gets them added (analyze_run), without an inference pass."""
    f = run / name
    if not f.is_file():
        return False
    if name == "response_tail.json":
        tail = json.loads(f.read_text())
        return all(f"{k}_pct" in tail for k in INPUT_MEASURES)
    return name != "layer_std.csv" or list(pd.read_csv(f, nrows=0).columns) == LAYER_STD_COLUMNS


@torch.no_grad()
def measure(model: ResNet, batches, stds: bool = True
            ) -> tuple[pd.DataFrame | None, np.ndarray | None, list[int], int]:
    """One inference pass over `batches` of (x, y): the layer-std table and each image's mean share of the response
    variance (ResponseStats.image_shares; both None without `stds`), the indices of the images the net gets wrong (in
    the order of `batches`) and the number of images."""
    model.eval()
    stats = ResponseStats(model) if stds else None
    wrong: list[int] = []
    n = 0
    try:
        for x, y in batches:
            wrong += (torch.nonzero(model(x).argmax(1) != y).flatten() + n).tolist()
            n += len(y)
    finally:
        if stats is not None:
            stats.remove()
    return (stats.table() if stats is not None else None), (stats.image_shares() if stats is not None else None), \
        wrong, n


# What a tail image may stand out by among the test images (input_measures), each kept as a percentile: its contrast
# (the std of its stored pixel values), its colour saturation (per pixel, the largest channel minus the smallest,
# averaged) and its blue excess (mean blue minus mean red: sky and sea). The colour measures were chosen after looking at
# ResNet-110 seed 0's tail images at `quarter` (blue backgrounds throughout): they describe a tail, they test nothing.
INPUT_MEASURES = ("contrast", "chroma", "blue")


def input_measures(x_uint8: np.ndarray) -> dict[str, np.ndarray]:
    """INPUT_MEASURES of each image of an (N, H, W, RGB) uint8 array, in pixel units (0-255)."""
    x = x_uint8.astype(np.float32)
    return dict(contrast=x.reshape(len(x), -1).std(1), chroma=(x.max(-1) - x.min(-1)).mean((1, 2)),
                blue=x[..., 2].mean((1, 2)) - x[..., 0].mean((1, 2)))


def input_percentiles(x_uint8: np.ndarray) -> dict[str, np.ndarray]:
    """Each image's INPUT_MEASURES as percentiles of the set's (mid-rank, 0-100): 50 is a typical image, 99 one of
    the top 1% by that measure."""
    return {k: (np.argsort(np.argsort(v, kind="stable"), kind="stable") + 0.5) * 100 / len(v)
            for k, v in input_measures(x_uint8).items()}


def _pcts(pct: dict[str, np.ndarray], images) -> dict[str, list[float]]:
    """response_tail.json's `<measure>_pct` lists: the percentiles of `images`, in their order."""
    idx = np.asarray(images, dtype=int)
    return {f"{k}_pct": [round(float(v), 2) for v in pct[k][idx]] for k in INPUT_MEASURES}


def tail_images(shares: np.ndarray, labels: np.ndarray, pct: dict[str, np.ndarray]) -> dict:
    """The top TAIL_FRACTION of images by their mean share of the response variance (at least one), largest first:
    response_tail.json's numbers, with each image's input percentiles (input_percentiles of the same images)."""
    top = np.argsort(-shares, kind="stable")[:max(1, math.ceil(TAIL_FRACTION * len(shares)))]
    return dict(fraction=TAIL_FRACTION, n_images=len(shares), tail_share=float(shares[top].sum()),
                images=top.tolist(), shares=[round(float(v), 8) for v in shares[top]],
                labels=[int(v) for v in labels[top]], **_pcts(pct, top))


def add_input_pcts(run: Path, arrays: D.CifarArrays) -> None:
    """Give a response_tail.json written before the input percentiles its tail images' ones: they need the test
    images, not the net, so the rest is kept as measured; `inputs_added` records the code and data that added them."""
    f = run / "response_tail.json"
    # `contrast_added` marked a first backfill of the contrast alone: the percentiles are all written anew here
    tail = {k: v for k, v in json.loads(f.read_text()).items() if k != "contrast_added"}
    tail.update(_pcts(input_percentiles(arrays.test_x), tail["images"]))
    tail["inputs_added"] = dict(commit=CODE_COMMIT, data_source=arrays.source,
                                created_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    f.write_text(json.dumps(tail) + "\n")


def analyze_run(run: Path, arrays: D.CifarArrays, device: torch.device, force: bool = False) -> pd.DataFrame | None:
    """The run's files of OUTPUTS that are missing (all with force), from one pass over the test set (none where only
    the input percentiles were, add_input_pcts); its layer stds where computed."""
    cfg = run_config(run)
    if not force and (run / "response_tail.json").is_file() and not current(run, "response_tail.json"):
        add_input_pcts(run, arrays)
    need_stds = force or not current(run, "layer_std.csv")
    need_tail = force or not current(run, "response_tail.json")
    need_wrong = force or not (run / "test_wrong.json").is_file()
    if not (need_stds or need_tail or need_wrong):
        return None
    dm = D.CIFARDataModule(cfg, arrays)  # the same mean image as in training (same split and subset)
    dm.setup()
    model = load_final_model(run, device)
    test_x = B.to_tensor_nchw(arrays.test_x).to(device)  # the full test set, whatever the run evaluated
    test_y = torch.from_numpy(arrays.test_y).to(device)
    batches = inference_batches(test_x, test_y, dm.mean.to(device), device)
    df, shares, wrong, n = measure(model, batches, stds=need_stds or need_tail)
    if need_stds:
        df.to_csv(run / "layer_std.csv", index=False)
    if need_tail:
        meta = provenance(device, arrays, what="the test images with the largest mean share (over layers) of the "
                          "response variance, by index in test-set order (analyze.tail_images), fp32 inference",
                          arch=cfg.arch, seed=cfg.seed)
        tail = tail_images(shares, arrays.test_y, input_percentiles(arrays.test_x))
        (run / "response_tail.json").write_text(json.dumps(dict(**meta, **tail)) + "\n")
    if need_wrong:
        meta = provenance(device, arrays, what="test images the final weights get wrong, by index in test-set "
                          "order (analyze.measure), fp32 inference", arch=cfg.arch, seed=cfg.seed)
        (run / "test_wrong.json").write_text(json.dumps(dict(**meta, n_test=n, test_err=len(wrong) / n,
                                                             wrong=wrong)) + "\n")
    return df if need_stds else None


def analyze_preset(preset: str, results: str | Path = "results", data_dir: str | None = None,
                   force: bool = False, archs=None, seeds=None) -> list[Path]:
    """Write the OUTPUTS (layer_std.csv, test_wrong.json, response_tail.json) for every finished run that has its final
    weights and lacks one, or has one in an older form (current)."""
    todo = runs_with_checkpoint(preset, results, archs, seeds=seeds,
                                done=lambda r: not force and all(current(r, f) for f in OUTPUTS))
    if not todo:
        print(f"[analyze] {preset}: nothing to do", flush=True)
        return []
    device, arrays = default_device(), arrays_for(todo, data_dir)
    for run in todo:
        df = analyze_run(run, arrays[data_key(run, data_dir)], device, force)
        what = (f"{len(df)} layers, mean std {df['std'].mean():.3f}" if df is not None
                else "test outcomes, tail or input percentiles")
        print(f"[analyze] {run}: {what}", flush=True)
    return todo
