"""The wording of scale and data, owned here: every table, figure, notebook and report says what its numbers are
(the paper's protocol or a scaled-down preset; which copy of the data) in the same words, computed from
config.PRESETS and the runs' data_source, never typed per preset.

`scale_text` / `data_text` are the report's Markdown; `scale_label` / `data_label` the figures' plain text.
"""

from __future__ import annotations

import math

import pandas as pd

from .config import (
    FULL_SCALE_PRESETS,
    PRESETS,
    TrainConfig,
    cifar_schedule_text,
    imagenet_schedule_text,
    make_config,
    preset_family,
)

SMOKE = ("**scaled-down, not a result**: the `smoke` preset (20 iterations on a 2,048-image subset), "
         "which only checks that the pipeline runs")


def pct(x: float, digits: int = 2) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.{digits}f}%"


def scale_text(preset: str) -> str:
    if preset_family(preset) == "imagenet":
        scaled = "" if preset in FULL_SCALE_PRESETS else "**scaled-down**: "
        return f"{scaled}the `{preset}` preset, {imagenet_schedule_text(preset)}"
    if preset == "smoke":
        return SMOKE
    if preset not in PRESETS:
        return f"preset `{preset}`"
    scaled = "" if preset in FULL_SCALE_PRESETS else "**scaled-down**: "
    return f"{scaled}the `{preset}` preset, {cifar_schedule_text(preset)}"


def data_text(runs: pd.DataFrame) -> str:
    if runs.empty:
        return "no finished runs yet"
    srcs = sorted(set(runs.data_source.dropna().astype(str))) if "data_source" in runs else []
    if not srcs:
        return "data source not recorded"
    parts = []
    for s in srcs:
        if s.startswith("image folder") and "imagenette" in s.lower() and "224x224" in s:
            parts.append("the **lossy 224×224 JPEG copy of Imagenette** (10 ImageNet classes, 9,469 train / 3,925 "
                         "val images, resized without keeping the aspect ratio, quality ≈75; "
                         "`../shared/data/imagenette-224`)")
        elif s.startswith("image folder"):
            parts.append(f"{s}")
        elif "lossy" in s:
            parts.append("the **lossy JPEG copy of CIFAR-10** (quality ≈75, 4:2:0 chroma; `../shared/data/cifar10-jpeg`), "
                         "so errors are expected to sit somewhat above those on the official files")
        elif "official" in s:
            parts.append("the official CIFAR-10 python batches (torchvision download)")
        else:
            parts.append(f"`{s}`")
    return "; ".join(parts)


def scale_label(preset: str) -> str:
    """What the numbers of a preset are: the paper's protocol or a scaled-down stand-in."""
    if preset_family(preset) == "imagenet":
        scaled = "" if preset in FULL_SCALE_PRESETS else "SCALED-DOWN: "
        return f"{scaled}{preset} preset, {imagenet_schedule_text(preset)}"
    if preset == "smoke":
        return "SCALED-DOWN: smoke preset (a few iterations on a subset; not a result)"
    if preset not in PRESETS:
        return f"preset {preset!r} (not a preset of this version; scale unknown)"
    c = make_config(preset)
    if preset in FULL_SCALE_PRESETS:
        return f"paper protocol ({c.max_steps // 1000}k iterations)"
    frac = f"1/{TrainConfig.max_steps / c.max_steps:.3g} of the paper's schedule"
    return f"SCALED-DOWN: {preset} preset, {frac} ({c.max_steps // 1000}k iterations)"


def data_label(runs: pd.DataFrame) -> str:
    """Where the training data came from, from runs.csv's data_source column."""
    if runs.empty or "data_source" not in runs:
        return "data: unknown (no finished runs in runs.csv)"
    sources = sorted({str(s) for s in runs["data_source"].dropna()})
    if not sources:
        return "data: unknown (no data_source recorded)"
    if any(s.startswith("image folder") for s in sources):  # the ImageNet-style presets (imagenet.py)
        if any("imagenette" in s.lower() for s in sources):
            copy = "lossy 224x224 JPEG copy of " if any("224x224" in s for s in sources) else ""
            return f"data: {copy}Imagenette (10 ImageNet classes)"
        return "data: " + "; ".join(sources)
    if any("lossy" in s.lower() for s in sources):
        return "data: lossy JPEG copy of CIFAR-10"
    return "data: CIFAR-10 (" + ", ".join(sources) + ")"
