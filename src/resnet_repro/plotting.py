"""The figures' common frame, owned here: labels and colours of the nets, error curves with seed bands, the
axes, the scale-and-data footer and the notes that name what is missing, and saving (PNG and PDF).

Figures are built with the object-oriented API (``matplotlib.figure.Figure``, rendered by Agg on save), never
through pyplot: nothing is registered globally, so nothing needs closing, no GUI backend is touched, and a
notebook's own backend is left alone (with ``%matplotlib inline`` a returned Figure displays inline). The figures
themselves live with their studies (``resnet_repro.studies``).
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MultipleLocator

from .config import FULL_SCALE_PRESETS, PRESETS, TrainConfig
from .experiments import GRIDS
from .models import parse_arch, variant_label
from .wording import runs_label, scale_label

DPI = 150

# One colour per depth, shared by the plain and residual nets of that depth in every figure.
DEPTH_COLORS = {20: "#e69f00", 32: "#17becf", 44: "#2ca02c", 56: "#d62728", 110: "#1f3a93", 1202: "#9467bd",
                18: "#e69f00", 34: "#d62728"}  # ImageNet-style nets: shallow orange, deep red, as 20 and 56
TRAIN_STYLE = dict(linestyle="--", linewidth=1.0)  # training error: dashed, thin (as in the paper)
TEST_STYLE = dict(linestyle="-", linewidth=2.2)  # test error: bold
PAPER_YMAX = 20.0  # the paper's Fig. 1 and Fig. 6 show 0-20 %


# ----------------------------------------------------------------------------- labels


def arch_depth(arch: str) -> int | None:
    try:
        return parse_arch(arch).depth
    except ValueError:
        return None


def arch_label(arch: str) -> str:
    """``resnet56`` -> ``ResNet-56``, ``plain20`` -> ``plain-20`` (the paper's spelling)."""
    try:
        cfg = parse_arch(arch)
    except ValueError:
        return arch
    name = f"ResNet-{cfg.depth}" if cfg.residual else f"plain-{cfg.depth}"
    if cfg.variant != "original":  # an ECCV 2016 block variant (issue 8)
        name += f", {variant_label(cfg.variant)}"
    return name + (f" (option {cfg.shortcut})" if cfg.residual and cfg.shortcut != "A" else "")


def arch_color(arch: str) -> str:
    """One hue per depth; a plain net gets a darker shade of its depth's colour, so that a plain net and the ResNet
    of the same depth stay apart where their curves meet (Fig. 7, lesions), while the pairing stays visible."""
    d = arch_depth(arch)
    base = DEPTH_COLORS.get(d, "#555555") if d is not None else "#555555"
    if not arch.startswith("plain"):
        return base
    r, g, b = (int(base[i:i + 2], 16) for i in (1, 3, 5))
    return "#{:02x}{:02x}{:02x}".format(*(int(0.55 * c) for c in (r, g, b)))


def partial_note(requested: list[str], status: pd.DataFrame | None) -> str:
    """'partial runs ...' for requested nets whose runs (status.csv of collect) are still unfinished."""
    if status is None or status.empty:
        return ""
    d = status[(status["status"] == "partial") & status["arch"].isin(requested)]
    if d.empty:
        return ""
    runs = [f"{arch_label(r.arch)} seed {int(r.seed)} ({int(r.iterations_logged)} it.)"
            for r in d.itertuples() if pd.notna(r.seed) and pd.notna(r.iterations_logged)]
    return "partial runs, not drawn until they finish (collect reads finished runs only): " + ", ".join(runs)


def missing_note(requested: list[str], present, preset: str) -> str:
    """'missing ...' for the requested nets without data ('' if none), split into not-run-yet and not-in-preset."""
    present = set(present)
    missing = [a for a in requested if a not in present]
    if not missing:
        return ""
    grid = {a for a, _ in GRIDS.get(preset, [])}
    not_run = [arch_label(a) for a in missing if a in grid or not grid]
    not_in = [arch_label(a) for a in missing if grid and a not in grid]
    parts = []
    if not_run:
        parts.append("missing (no data yet): " + ", ".join(not_run))
    if not_in:
        parts.append(f"missing (not in the {preset} preset): " + ", ".join(not_in))
    return "; ".join(parts)




# ----------------------------------------------------------------------------- curves


def aggregate_curve(curves: pd.DataFrame, arch: str, metric: str) -> pd.DataFrame:
    """Per iteration: mean, min, max over the seeds of one net (columns iteration, mean, min, max, n)."""
    d = curves[(curves["arch"] == arch) & (curves["metric"] == metric)].dropna(subset=["iteration", "value"])
    if d.empty:
        return pd.DataFrame(columns=["iteration", "mean", "min", "max", "n"])
    g = d.groupby("iteration")["value"].agg(["mean", "min", "max", "count"]).reset_index()
    return g.rename(columns={"count": "n"}).sort_values("iteration")


def iteration_unit(max_iteration: float) -> tuple[float, str]:
    """The x-axis scale: the paper's 'iter. (1e4)' where runs reach 1e4 iterations, else 1e3 or plain."""
    if max_iteration >= 1e4:
        return 1e4, "iter. (1e4)"
    if max_iteration >= 1e3:
        return 1e3, "iter. (1e3)"
    return 1.0, "iter."


def error_ylim(preset: str, values_pct) -> tuple[float, str]:
    """Top of the error axis (%) and a note saying why.

    The paper preset uses the paper's 0-20 %. Scaled-down presets, whose errors are higher, use
    max(20, ceil(95th percentile of the plotted errors)) so the data are visible."""
    v = np.asarray([x for x in values_pct if np.isfinite(x)], dtype=float)
    if preset == "paper" or v.size == 0:
        return PAPER_YMAX, ""
    top = float(max(PAPER_YMAX, math.ceil(np.percentile(v, 95))))
    if top == PAPER_YMAX:
        return top, ""
    return top, (f"y-axis 0-{top:g}% (the paper's is 0-20%; raised to the 95th percentile of the "
                 "errors shown, since this preset's errors are higher)")


def _plot_band(ax, agg: pd.DataFrame, unit: float, color: str, style: dict, alpha: float, label=None):
    x = agg["iteration"].to_numpy(float) / unit
    ax.plot(x, agg["mean"].to_numpy(float) * 100, color=color, label=label, **style)
    if (agg["n"] > 1).any():
        ax.fill_between(x, agg["min"].to_numpy(float) * 100, agg["max"].to_numpy(float) * 100,
                        color=color, alpha=alpha, linewidth=0)


def plot_curves(ax, curves: pd.DataFrame, archs: list[str], metrics=("train_err", "test_err"),
                unit: float = 1e4, legend: bool = True, outside: bool = True) -> list[str]:
    """Error curves (%) of `archs` on `ax`: train dashed/thin, test bold, one colour per depth; with
    several seeds the mean with a shaded min-max band. Returns the archs drawn."""
    drawn = []
    for arch in archs:
        color = arch_color(arch)
        nseeds = curves.loc[curves["arch"] == arch, "seed"].nunique()
        label = arch_label(arch) + (f" (mean of {nseeds} seeds, band min-max)" if nseeds > 1 else "")
        labelled = False
        for metric in metrics:
            agg = aggregate_curve(curves, arch, metric)
            if agg.empty:
                continue
            style = TRAIN_STYLE if metric.startswith("train") else TEST_STYLE
            _plot_band(ax, agg, unit, color, style, 0.10 if metric.startswith("train") else 0.22,
                       None if labelled else label)
            labelled = True
        if labelled:
            drawn.append(arch)
    if legend and drawn:
        handles, _ = ax.get_legend_handles_labels()
        if len(metrics) > 1:  # one solid colour entry per net, then what the two line styles mean
            handles = [Line2D([], [], color=h.get_color(), linewidth=2, label=h.get_label()) for h in handles]
            bold = next((m for m in metrics if not m.startswith("train")), "test_err").split("_")[0]
            handles += [Line2D([], [], color="k", **TRAIN_STYLE, label="training error (dashed)"),
                        Line2D([], [], color="k", **TEST_STYLE, label=f"{bold} error (bold)")]
        # Outside the axes, on the right: a legend inside covered the curves (plain-56 from 2k to 4k in Fig. 6).
        # Panels side by side (Fig. 1, Fig. 4) keep theirs inside, where matplotlib finds the emptiest corner.
        kw = dict(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0) if outside else dict(loc="best")
        ax.legend(handles=handles, fontsize=8, **kw)
    return drawn


def curve_values(curves: pd.DataFrame, archs, metrics) -> list[float]:
    vals = []
    for a in archs:
        for m in metrics:
            vals += list(aggregate_curve(curves, a, m)["mean"].to_numpy(float) * 100)
    return vals


def schedule_end(preset: str) -> int | None:
    """The preset's max_steps (64k for paper), or None for an unknown preset."""

    if preset not in PRESETS:
        return None
    return int(PRESETS[preset].get("max_steps", TrainConfig.max_steps))


def max_iteration(curves: pd.DataFrame, archs, preset: str | None = None) -> float:
    """The x-axis end: the preset's whole schedule (so unfinished runs show how far they got), or the data's."""
    it = curves.loc[curves["arch"].isin(archs), "iteration"].dropna()
    data_end = float(it.max()) if len(it) else 0.0
    end = schedule_end(preset) if preset else None
    return data_end if end is None else max(float(end), data_end)


def off_scale_notes(curves: pd.DataFrame, archs, top: float) -> list[str]:
    notes = []
    for a in archs:
        agg = aggregate_curve(curves, a, "test_err")
        if not agg.empty and agg["mean"].min() * 100 > top:
            notes.append(f"{arch_label(a)} lies above the y-limit (lowest test error "
                         f"{agg['mean'].min() * 100:.1f}%)")
    return notes


# ----------------------------------------------------------------------------- figure frame


def new_figure(nrows: int = 1, ncols: int = 1, figsize=(6.4, 4.8), **kw) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=figsize, dpi=DPI, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def annotate(fig: Figure, title: str, preset: str, runs: pd.DataFrame, notes=(), scale: str | None = None) -> Figure:
    """Suptitle, plus a footer with the preset's scale (or `scale`), the data source and any notes (missing nets...)."""
    fig.suptitle(title, fontsize=11)
    scaled = preset not in FULL_SCALE_PRESETS
    size = 7.5
    width = max(40, int(fig.get_figwidth() * 72 / (size * 0.6)))  # characters per footer line
    scale = scale or scale_label(preset)
    data = runs_label(runs)
    head = f"{scale}  |  {data}"
    parts = [head] if len(head) <= width else [scale, data]  # too long: one line each
    lines = [(w, "#b00000" if scaled else "#333333")
             for part in parts for w in textwrap.wrap(part, width, subsequent_indent="    ")]
    for n in notes:
        if n:
            lines += [(w, "#555555") for w in textwrap.wrap(f"note: {n}", width, subsequent_indent="    ")]
    line_h = size * 1.35 / 72 / fig.get_figheight()  # one line of text, as a fraction of the figure height
    footer = line_h * (len(lines) + 0.5)
    fig.get_layout_engine().set(rect=(0, footer, 1, 1 - footer))
    for i, (line, color) in enumerate(lines):
        fig.text(0.01, footer - line_h * (i + 1), line, fontsize=size, ha="left", va="bottom", color=color)
    return fig


def empty_axis_note(ax, text: str = "no data"):
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=10, color="#888888")


def error_axis(ax, top: float, unit_label: str, ylabel: str, xmax: float | None = None):
    ax.set_ylim(0, top)
    ax.yaxis.set_major_locator(MultipleLocator(5 if top <= 40 else 10))
    ax.set_xlim(0, xmax if xmax else None)
    ax.set_xlabel(unit_label)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)




def save_figure(fig: Figure, out_dir: str | Path, name: str) -> list[Path]:
    """Write `fig` as <out_dir>/<name>.png (dpi 150) and .pdf; returns both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.png", out / f"{name}.pdf"]
    for p in paths:
        # No creation date in the PDF: a figure redrawn from the same CSVs is the same file.
        fig.savefig(p, dpi=DPI, **({"metadata": {"CreationDate": None}} if p.suffix == ".pdf" else {}))
    return paths



def style(arch: str) -> dict:
    """A net's line: its colour, dashed if plain, solid if residual."""
    return dict(color=arch_color(arch), linestyle="--" if arch.startswith("plain") else "-", linewidth=1.4)


def arch_sort(archs) -> list[str]:
    """ResNets before plain nets, each by depth."""
    return sorted(archs, key=lambda a: (a.startswith("plain"), parse_arch(a).depth, a))
