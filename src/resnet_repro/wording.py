"""The wording of scale and data, owned here: every table, figure, notebook and report says what its numbers are
(the paper's protocol or a scaled-down preset; which copy of the data) in the same words, computed from
config.PRESETS and the runs' data_source, never typed per preset.

`scale_text` / `data_text` are the report's Markdown; `scale_label` / `data_label` the figures' plain text.
"""

from __future__ import annotations

import math
from pathlib import Path

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


def data_name(runs: pd.DataFrame) -> str:
    """Where the training data came from, from runs.csv's data_source column ('lossy JPEG copy of CIFAR-10')."""
    if runs.empty or "data_source" not in runs:
        return "unknown (no finished runs in runs.csv)"
    sources = sorted({str(s) for s in runs["data_source"].dropna()})
    if not sources:
        return "unknown (no data_source recorded)"
    if any(s.startswith("image folder") for s in sources):  # the ImageNet-style presets (imagenet.py)
        if any("imagenette" in s.lower() for s in sources):
            copy = "lossy 224x224 JPEG copy of " if any("224x224" in s for s in sources) else ""
            return f"{copy}Imagenette (10 ImageNet classes)"
        return "; ".join(sources)
    if any("lossy" in s.lower() for s in sources):
        return "lossy JPEG copy of CIFAR-10"
    return "CIFAR-10 (" + ", ".join(sources) + ")"


def data_label(runs: pd.DataFrame) -> str:
    """'data: <data_name>', as figure footers and table notes state it."""
    return f"data: {data_name(runs)}"


def devices_text(devices) -> str:
    """The distinct devices of a set of runs, sorted, as one text. Separated by '; ' because a device's own name
    has commas ('cpu (Intel(R) Xeon(R) Processor, x86_64, 2 cores)')."""
    return "; ".join(sorted({str(d) for d in devices if d is not None and not (isinstance(d, float) and math.isnan(d))}))


def trained_label(runs: pd.DataFrame) -> str:
    """Where and in what precision the runs trained, from runs.csv ('trained on cpu (x86_64, 2 cores) in
    bf16-mixed'): a `paper` run made on the CPU says so wherever its numbers appear."""
    if runs.empty or "device" not in runs:
        return "hardware: not recorded"
    precs = sorted({str(p) for p in runs["precision"].dropna()}) if "precision" in runs else []
    parts = []
    for dev, g in runs.groupby(runs["device"].astype(str), sort=True):
        p = sorted({str(x) for x in g["precision"].dropna()}) if "precision" in g else []
        parts.append(dev + (f" in {' and '.join(p)}" if p and len(precs) > 1 else ""))
    return "trained on " + "; ".join(parts) + (f" in {precs[0]}" if len(precs) == 1 else "")


def runs_label(runs: pd.DataFrame) -> str:
    """The data and the hardware of the runs, as figure footers and table notes state them."""
    return f"{data_label(runs)}; {trained_label(runs)}"


# ----------------------------------------------------------------------------- run lists


def missing_text(status: pd.DataFrame) -> str:
    if status.empty:
        return "- Nothing has been run for this preset yet."
    miss = status[status.status != "done"]
    if miss.empty:
        return "- Every run of this preset's grid has finished."
    lines = []
    for arch, g in miss.groupby("arch", sort=False):  # one line per net and status, in the grid's order
        for status, h in g.groupby("status", sort=False):
            seeds = ", ".join(str(s) for s in h.seed)
            logged = (f" (logged up to iteration {', '.join(str(i) for i in h.iterations_logged)})"
                      if status == "partial" else "")
            lines.append(f"- `{arch}` seed{'s' if len(h) > 1 else ''} {seeds}: {status}{logged}")
    return "\n".join(lines)


def _versions(run) -> str:
    """The library versions a run's final.json recorded (torch, Lightning), or 'not recorded'."""
    got = [f"{name} {v}" for name in ("torch", "lightning") if isinstance(v := getattr(run, name, None), str)]
    return ", ".join(got) or "not recorded"


def provenance_table(runs: pd.DataFrame, err_col: str = "final_test_err", err_name: str = "test err") -> str:
    if runs.empty:
        return "_No finished runs._"
    rows = [f"| run | iterations | {err_name} | train err | wall time | device | precision | versions | commit | data |",
            "|---|---:|---:|---:|---:|---|---|---|---|---|"]
    for r in runs.itertuples():
        threads = getattr(r, "torch_threads", None)
        dev = r.device + (f", {int(threads)} torch thread{'s' * (threads != 1)}" if pd.notna(threads) else "")
        prec = getattr(r, "precision", None)
        rows.append(f"| {r.arch} seed {r.seed}{' (diverged)' if getattr(r, 'diverged', False) is True else ''} | "
                    f"{r.iterations:,} | {pct(getattr(r, err_col))} | "
                    f"{pct(r.final_train_err)} | {r.wall_time_s / 60:.1f} min | {dev} | "
                    f"{prec if isinstance(prec, str) else 'not recorded'} | {_versions(r)} | `{str(r.commit)[:12]}` | "
                    f"{r.data_source} |")
    return "\n".join(rows)


# ----------------------------------------------------------------------------- tables, in Markdown and LaTeX


def num(v, digits: int = 2) -> str:
    """A table cell: a number already in % (or any unit) with `digits` decimals, or a dash where missing."""
    return f"{v:.{digits}f}" if pd.notna(v) else "—"


def params_m(v) -> str:
    return f"{v / 1e6:.2f}M" if pd.notna(v) else "—"


def latex_escape(s: str) -> str:
    rep = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
           "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
           "±": r"$\pm$", "—": "---", "–": "--"}
    return "".join(rep.get(ch, ch) for ch in s)


def table_md(title: str, header: list[str], rows: list[list[str]], notes: list[str]) -> str:
    """A titled Markdown table, first column left-aligned, the others right-aligned, notes under it."""
    out = [title, "", "| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    out += [""] + [f"{n}  " for n in notes if n]
    return "\n".join(out) + "\n"


def table_tex(title: str, header: list[str], rows: list[list[str]], notes: list[str], align: str | None = None) -> str:
    """The same table as a LaTeX tabular (to \\input inside a table environment), notes in a footnotesize block."""
    out = [f"% {title}", "% generated by resnet_repro; \\input this inside a table environment",
           r"\begin{tabular}{" + (align or "l" + "r" * (len(header) - 1)) + "}", r"\hline",
           " & ".join(latex_escape(h) for h in header) + r" \\", r"\hline"]
    out += [" & ".join(latex_escape(c) for c in r) + r" \\" for r in rows]
    out += [r"\hline", r"\end{tabular}", r"\par\smallskip", r"{\footnotesize"]
    out += [latex_escape(n) + r"\par" for n in notes if n] + ["}"]
    return "\n".join(out) + "\n"


def write_table(out_dir, name: str, title: str, header: list[str], rows: list[list[str]], notes: list[str],
                tex_title: str | None = None, align: str | None = None) -> list[Path]:
    """<out_dir>/<name>.md and .tex; returns both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md, tex = out / f"{name}.md", out / f"{name}.tex"
    md.write_text(table_md(title, header, rows, notes), encoding="utf-8")
    tex.write_text(table_tex(tex_title or title, header, rows, notes, align), encoding="utf-8")
    return [md, tex]


def net_name(arch: str) -> str:
    """resnet56 -> ResNet-56, plain20 -> plain-20."""
    return arch.replace("resnet", "ResNet-").replace("plain", "plain-")
