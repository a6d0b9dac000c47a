"""Figures 1, 6 and 7 and Table 6 of He et al. 2016 (CIFAR-10), drawn from the CSVs of `collect`.

Inputs, all in ``results/<preset>/`` (any may be missing or lack some nets; what is missing is named in
a small note on the figure, never raised):

* ``runs.csv``       one row per run (final errors, params, data source, ...)
* ``curves.csv``     long format: arch, seed, iteration, metric, value (errors as fractions)
* ``layer_std.csv``  Fig. 7 layer responses: arch, seed, layer (1-based, forward order), std, ...
* ``table6.csv``     the Table 6 rows: ours (mean/std/min over seeds) next to the paper and a public repro

Every figure builder (:func:`fig1`, :func:`fig6`, :func:`fig7`) takes the dict of :func:`load_results`
and returns a :class:`matplotlib.figure.Figure`; :func:`save_figure` writes it as PNG and PDF. Figures
are built with the object-oriented API (``matplotlib.figure.Figure``, rendered by Agg on save), never
through pyplot: nothing is registered globally, so nothing needs closing, no GUI backend is touched,
and a notebook's own backend is left alone (with ``%matplotlib inline`` a returned Figure displays
inline). :func:`make_figures` does everything for one preset.
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

from .collect import (
    CURVE_COLUMNS,
    IMAGENET_COLUMNS,
    LAYER_COLUMNS,
    RUN_COLUMNS,
    STATUS_COLUMNS,
    TABLE6_COLUMNS,
    load_collected,
    table6,
)
from .config import (
    FULL_SCALE_PRESETS,
    PRESETS,
    TrainConfig,
    make_config,
    preset_family,
)
from .experiments import (
    GRIDS,
    PAPER_TABLE2,
    PAPER_TABLE3,
    PAPER_TABLE6,
    PAPER_TABLE6_NOTE,
    PUBLIC_REPRO,
    PUBLIC_REPRO_NOTE,
)
from .wording import data_label, scale_label  # noqa: F401 (part of the figures' API)

DPI = 150

# The collected tables, with the columns collect writes (one schema, defined in collect.py).
COLUMNS: dict[str, list[str]] = {"runs": RUN_COLUMNS, "curves": CURVE_COLUMNS, "layer_std": LAYER_COLUMNS,
                                 "table6": TABLE6_COLUMNS, "status": STATUS_COLUMNS, "imagenet": IMAGENET_COLUMNS}

# What each figure draws (the paper's nets; whatever of them exists is drawn).
FIG1_ARCHS = ["plain20", "plain56"]
FIG6_ARCHS = {
    "plain": ["plain20", "plain32", "plain44", "plain56", "plain110"],
    "resnet": ["resnet20", "resnet32", "resnet44", "resnet56", "resnet110"],
    "deep": ["resnet110", "resnet1202"],
}
FIG6_TITLES = {
    "plain": "Fig. 6 (left): plain nets on CIFAR-10",
    "resnet": "Fig. 6 (middle): ResNets on CIFAR-10",
    "deep": "Fig. 6 (right): ResNet-110 vs ResNet-1202",
}
# Without a ResNet-1202 run the right panel puts ResNet-110 beside plain-110 instead, and its title says so.
FIG6_DEEP_STANDIN = (["resnet110", "plain110"], "Fig. 6 (right) stand-in, no ResNet-1202 run: ResNet-110 vs plain-110")
FIG6_NAMES = {"plain": "fig6_plain", "resnet": "fig6_resnet", "deep": "fig6_deep"}
FIG7_ARCHS = ["plain20", "plain56", "resnet20", "resnet56", "resnet110"]

# One colour per depth, shared by the plain and residual nets of that depth in every figure.
DEPTH_COLORS = {20: "#e69f00", 32: "#17becf", 44: "#2ca02c", 56: "#d62728", 110: "#1f3a93", 1202: "#9467bd",
                18: "#e69f00", 34: "#d62728"}  # ImageNet-style nets: shallow orange, deep red, as 20 and 56
TRAIN_STYLE = dict(linestyle="--", linewidth=1.0)  # training error: dashed, thin (as in the paper)
TEST_STYLE = dict(linestyle="-", linewidth=2.2)  # test error: bold
PAPER_YMAX = 20.0  # the paper's Fig. 1 and Fig. 6 show 0-20 %


# ----------------------------------------------------------------------------- labels


def arch_depth(arch: str) -> int | None:
    from .models import parse_arch

    try:
        return parse_arch(arch).depth
    except ValueError:
        return None


def arch_label(arch: str) -> str:
    """``resnet56`` -> ``ResNet-56``, ``plain20`` -> ``plain-20`` (the paper's spelling)."""
    from .models import parse_arch

    try:
        cfg = parse_arch(arch)
    except ValueError:
        return arch
    name = f"ResNet-{cfg.depth}" if cfg.residual else f"plain-{cfg.depth}"
    if cfg.variant != "original":  # an ECCV 2016 block variant (issue 8)
        from .models import variant_label

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
    return "partial runs (unfinished, drawn as far as they got): " + ", ".join(runs)


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


# ----------------------------------------------------------------------------- loading


def load_results(preset: str, root: str | Path = "results") -> dict[str, pd.DataFrame]:
    """{"runs", "curves", "layer_std", "table6", "status", "imagenet"} -> DataFrame, as collect wrote them; a
    missing or empty file gives an empty frame with the right columns."""
    return load_collected(preset, root)


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


def _curve_values(curves: pd.DataFrame, archs, metrics) -> list[float]:
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


def _max_iteration(curves: pd.DataFrame, archs, preset: str | None = None) -> float:
    """The x-axis end: the preset's whole schedule (so unfinished runs show how far they got), or the data's."""
    it = curves.loc[curves["arch"].isin(archs), "iteration"].dropna()
    data_end = float(it.max()) if len(it) else 0.0
    end = schedule_end(preset) if preset else None
    return data_end if end is None else max(float(end), data_end)


def _off_scale_notes(curves: pd.DataFrame, archs, top: float) -> list[str]:
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
    head = f"{scale}  |  {data_label(runs)}"
    parts = [head] if len(head) <= width else [scale, data_label(runs)]  # too long: one line each
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


def _empty_axis_note(ax, text: str = "no data"):
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=10, color="#888888")


def _error_axis(ax, top: float, unit_label: str, ylabel: str, xmax: float | None = None):
    ax.set_ylim(0, top)
    ax.yaxis.set_major_locator(MultipleLocator(5 if top <= 40 else 10))
    ax.set_xlim(0, xmax if xmax else None)
    ax.set_xlabel(unit_label)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)


# ----------------------------------------------------------------------------- figures


def fig1(results: dict[str, pd.DataFrame], preset: str, archs: list[str] = FIG1_ARCHS) -> Figure:
    """Fig. 1: plain-20 vs plain-56, training error (left) and test error (right) vs iterations."""
    curves = results["curves"]
    fig, axes = new_figure(1, 2, figsize=(9, 3.9))
    xmax = _max_iteration(curves, archs, preset)
    unit, unit_label = iteration_unit(xmax)
    top, ynote = error_ylim(preset, _curve_values(curves, archs, ("train_err", "test_err")))
    drawn = []
    for ax, metric, ylabel in ((axes[0, 0], "train_err", "training error (%)"),
                               (axes[0, 1], "test_err", "test error (%)")):
        drawn = plot_curves(ax, curves, archs, metrics=(metric,), unit=unit, outside=False)
        _error_axis(ax, top, unit_label, ylabel, xmax / unit)
        if not drawn:
            _empty_axis_note(ax)
    notes = [missing_note(archs, drawn, preset), partial_note(archs, results.get("status")), ynote]
    notes += _off_scale_notes(curves, drawn, top)
    return annotate(fig, "Fig. 1: degradation, plain-20 vs plain-56 on CIFAR-10", preset, results["runs"], notes)


def fig6(results: dict[str, pd.DataFrame], preset: str, which: str = "resnet",
         archs: list[str] | None = None) -> Figure:
    """Fig. 6: training (dashed) and test (bold) error vs iterations; which = plain, resnet or deep."""
    curves = results["curves"]
    title = FIG6_TITLES.get(which, "Fig. 6")
    if archs is None and which == "deep" and not (curves["arch"] == "resnet1202").any():
        archs, title = FIG6_DEEP_STANDIN  # titled by what it draws
    archs = archs if archs is not None else FIG6_ARCHS[which]
    fig, axes = new_figure(1, 1, figsize=(8.4, 4.8))
    ax = axes[0, 0]
    xmax = _max_iteration(curves, archs, preset)
    unit, unit_label = iteration_unit(xmax)
    top, ynote = error_ylim(preset, _curve_values(curves, archs, ("train_err", "test_err")))
    drawn = plot_curves(ax, curves, archs, unit=unit)
    _error_axis(ax, top, unit_label, "error (%)", xmax / unit)
    if not drawn:
        _empty_axis_note(ax)
    notes = [missing_note(archs, drawn, preset), partial_note(archs, results.get("status")), ynote]
    notes += _off_scale_notes(curves, drawn, top)
    return annotate(fig, title, preset, results["runs"], notes)


def _layer_agg(ls: pd.DataFrame, arch: str, sort: bool) -> pd.DataFrame:
    """Per layer (or per rank once each seed's stds are sorted descending): mean, min, max over seeds."""
    d = ls[ls["arch"] == arch].dropna(subset=["layer", "std"])
    if d.empty:
        return pd.DataFrame(columns=["x", "mean", "min", "max", "n"])
    if sort:
        d = d.assign(x=d.groupby("seed", dropna=False)["std"].rank(method="first", ascending=False))
    else:
        d = d.assign(x=d["layer"])
    g = d.groupby("x")["std"].agg(["mean", "min", "max", "count"]).reset_index()
    return g.rename(columns={"count": "n"}).sort_values("x")


def fig7(results: dict[str, pd.DataFrame], preset: str, archs: list[str] = FIG7_ARCHS) -> Figure:
    """Fig. 7: std of the layer responses (after BN, before the addition), in layer order (top) and
    sorted in descending order (bottom). Plain nets dashed, ResNets solid, one colour per depth."""
    ls = results["layer_std"]
    fig, axes = new_figure(2, 1, figsize=(8.4, 6.4))
    drawn = []
    for ax, sort, xlabel in ((axes[0, 0], False, "layer index (original)"),
                             (axes[1, 0], True, "layer index (sorted by magnitude)")):
        drawn = []
        for arch in archs:
            agg = _layer_agg(ls, arch, sort)
            if agg.empty:
                continue
            nseeds = ls.loc[ls["arch"] == arch, "seed"].nunique()
            plain = arch.startswith("plain")
            label = arch_label(arch) + (f" (mean of {nseeds} seeds, band min-max)" if nseeds > 1 else "")
            x = agg["x"].to_numpy(float)
            ax.plot(x, agg["mean"].to_numpy(float), color=arch_color(arch), label=label,
                    linestyle="--" if plain else "-", linewidth=1.3, marker="." if len(x) <= 60 else None,
                    markersize=4)
            if (agg["n"] > 1).any():
                ax.fill_between(x, agg["min"].to_numpy(float), agg["max"].to_numpy(float),
                                color=arch_color(arch), alpha=0.18, linewidth=0)
            drawn.append(arch)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("std")
        ax.set_xlim(left=0)
        ax.grid(True, alpha=0.3)
        if drawn:
            ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        else:
            _empty_axis_note(ax)
    notes = [missing_note(archs, drawn, preset)]
    return annotate(fig, "Fig. 7: std of layer responses on CIFAR-10", preset, results["runs"], notes)


def save_figure(fig: Figure, out_dir: str | Path, name: str) -> list[Path]:
    """Write `fig` as <out_dir>/<name>.png (dpi 150) and .pdf; returns both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.png", out / f"{name}.pdf"]
    for p in paths:
        # No creation date in the PDF: a figure redrawn from the same CSVs is the same file.
        fig.savefig(p, dpi=DPI, **({"metadata": {"CreationDate": None}} if p.suffix == ".pdf" else {}))
    return paths


# ----------------------------------------------------------------------------- Table 6


def _params_of(arch: str) -> float:
    try:
        from .models import build_model, count_params

        return float(count_params(build_model(arch)))
    except Exception:  # noqa: BLE001 - only a label; a missing count prints as a dash
        return float("nan")


def table6_frame(results: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Rows of Table 6: table6.csv (or runs.csv), plus a paper-only row for every paper net not run.

    ResNets first, then plain nets, each by depth."""
    t = results["table6"]
    t = t if not t.empty else table6(results["runs"].dropna(subset=["final_test_err"]))  # collect's own rows
    t = t.copy()
    extra = [dict(arch=a, depth=arch_depth(a), params=_params_of(a), n=0, paper_test_err_pct=p,
                  public_repro_test_err_pct=PUBLIC_REPRO.get(a, np.nan))
             for a, p in PAPER_TABLE6.items() if a not in set(t["arch"])]
    if extra:
        t = pd.concat([t, pd.DataFrame(extra, columns=COLUMNS["table6"])], ignore_index=True)
    t["n"] = pd.to_numeric(t["n"], errors="coerce").fillna(0).astype(int)
    t["depth"] = [d if pd.notna(d) else arch_depth(a) for a, d in zip(t["arch"], t["depth"])]
    for col, ref in (("paper_test_err_pct", PAPER_TABLE6), ("public_repro_test_err_pct", PUBLIC_REPRO)):
        t[col] = [v if pd.notna(v) else ref.get(a, np.nan) for a, v in zip(t["arch"], t[col])]
    t["_plain"] = t["arch"].str.startswith("plain")
    t = t.sort_values(["_plain", "depth", "arch"]).drop(columns="_plain").reset_index(drop=True)
    return t


def _pct(v) -> str:
    return f"{v:.2f}" if pd.notna(v) else "—"


def _params_m(v) -> str:
    return f"{v / 1e6:.2f}M" if pd.notna(v) else "—"


def _ours(r) -> str:
    if r["n"] == 0 or pd.isna(r["mean_test_err_pct"]):
        return "not run"
    if r["n"] > 1 and pd.notna(r["std_test_err_pct"]):
        return f"{r['mean_test_err_pct']:.2f} ± {r['std_test_err_pct']:.2f} (n={r['n']})"
    return f"{r['mean_test_err_pct']:.2f} (n={r['n']})"


TABLE6_HEADER = ["net", "depth", "# params", "ours [c]: mean ± std (n seeds)", "ours: min", "paper",
                 "public repro [b]"]


def table6_cells(t: pd.DataFrame) -> list[list[str]]:
    """The table body as strings, errors in % with 2 decimals; the paper's 110 value carries mark [a]."""
    rows = []
    for _, r in t.iterrows():
        paper = _pct(r["paper_test_err_pct"])
        if r["arch"] in PAPER_TABLE6_NOTE and paper != "—":
            paper += " [a]"
        rows.append([arch_label(r["arch"]), str(int(r["depth"])) if pd.notna(r["depth"]) else "—",
                     _params_m(r["params"]), _ours(r), _pct(r["min_test_err_pct"]) if r["n"] else "—",
                     paper, _pct(r["public_repro_test_err_pct"])])
    return rows


def table6_footnotes(preset: str, runs: pd.DataFrame) -> list[str]:
    paper_notes = "; ".join(f"{arch_label(a)}: {n}" for a, n in PAPER_TABLE6_NOTE.items())
    return [
        f"[a] paper, {paper_notes}: the best of 5 runs, not a mean; in brackets the mean ± std over the 5.",
        f"[b] public repro: {PUBLIC_REPRO_NOTE} (optimistic by construction).",
        "[c] ours: test error of the final iterate (after the last iteration), never selected on the "
        "test set; mean ± sample std over n seeds, min = best seed.",
        f"Scale: {scale_label(preset)}. {data_label(runs)[0].upper() + data_label(runs)[1:]}.",
    ]


def _table6_status_notes(t: pd.DataFrame, preset: str, status: pd.DataFrame | None) -> list[str]:
    notes = [missing_note(list(t.loc[t["n"] == 0, "arch"]), [], preset),
             partial_note(sorted(set(status["arch"])) if status is not None else [], status)]
    return [f"Ours: {n}." for n in notes if n]


def table6_markdown(t: pd.DataFrame, preset: str, runs: pd.DataFrame, status: pd.DataFrame | None = None) -> str:
    rows = table6_cells(t)
    out = [f"Table 6 (CIFAR-10 test error, %), {scale_label(preset)}", "",
           "| " + " | ".join(TABLE6_HEADER) + " |",
           "|" + "|".join(["---"] + ["---:"] * (len(TABLE6_HEADER) - 1)) + "|"]
    out += ["| " + " | ".join(c) + " |" for c in rows]
    out += [""] + [f"{n}  " for n in table6_footnotes(preset, runs)]
    for note in _table6_status_notes(t, preset, status):
        out += [f"{note}  "]
    return "\n".join(out) + "\n"


def latex_escape(s: str) -> str:
    rep = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
           "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
           "±": r"$\pm$", "—": "---", "–": "--"}
    return "".join(rep.get(ch, ch) for ch in s)


def table6_latex(t: pd.DataFrame, preset: str, runs: pd.DataFrame, status: pd.DataFrame | None = None) -> str:
    rows = table6_cells(t)
    out = [f"% Table 6 (CIFAR-10 test error, %): {scale_label(preset)}; {data_label(runs)}",
           "% generated by resnet_repro.figures; \\input this inside a table environment",
           r"\begin{tabular}{lrrlrrr}", r"\hline",
           " & ".join(latex_escape(h) for h in TABLE6_HEADER) + r" \\", r"\hline"]
    out += [" & ".join(latex_escape(c) for c in r) + r" \\" for r in rows]
    out += [r"\hline", r"\end{tabular}", r"\par\smallskip", r"{\footnotesize"]
    out += [latex_escape(n) + r"\par" for n in table6_footnotes(preset, runs)]
    out += [latex_escape(note) + r"\par" for note in _table6_status_notes(t, preset, status)]
    out += ["}"]
    return "\n".join(out) + "\n"


def write_table6(results: dict[str, pd.DataFrame], preset: str, out_dir: str | Path) -> list[Path]:
    """Write <out_dir>/table6.md and table6.tex; returns both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t = table6_frame(results)
    md, tex = out / "table6.md", out / "table6.tex"
    md.write_text(table6_markdown(t, preset, results["runs"], results.get("status")), encoding="utf-8")
    tex.write_text(table6_latex(t, preset, results["runs"], results.get("status")), encoding="utf-8")
    return [md, tex]


# ----------------------------------------------------------------------------- everything


def build_figures(results: dict[str, pd.DataFrame], preset: str) -> dict[str, Figure]:
    """Every figure of a preset, by file name (without extension)."""
    figs = {"fig1_degradation_plain20_vs_plain56": fig1(results, preset)}
    for which, name in FIG6_NAMES.items():
        figs[name] = fig6(results, preset, which)
    figs["fig7_layer_response_std"] = fig7(results, preset)
    return figs


def make_figures(preset: str, results_root: str | Path = "results", figures_root: str | Path = "figures") -> list[Path]:
    """Draw every figure (PNG and PDF) and Table 6 (Markdown and LaTeX) of a preset into figures/<preset>/.

    Missing inputs never raise: what is missing is named on the figures and in the table."""
    results = load_results(preset, results_root)
    out = Path(figures_root) / preset
    if preset_family(preset) == "imagenet":
        return make_imagenet_figures(results, preset, out)
    paths: list[Path] = []
    for name, fig in build_figures(results, preset).items():
        paths += save_figure(fig, out, name)
    paths += write_table6(results, preset, out)
    return paths


# ----------------------------------------------------------------------------- ImageNet-style: Fig. 4, Tables 2, 3

FIG4_PANELS = (("plain", ["plain18", "plain34"]), ("ResNet", ["resnet18", "resnet34"]))
TABLE2_ARCHS = ["plain18", "plain34", "resnet18", "resnet34"]
TABLE3_ARCHS = ["plain34", "resnet34", "resnet34b", "resnet34c"]
PAPER_FIG4_YLIM = (20, 60)  # the paper's Fig. 4 shows 20-60 %


def fig4(results: dict[str, pd.DataFrame], preset: str) -> Figure:
    """Fig. 4: training error (dashed; augmented crops, train-mode BN) and val error (bold; single center view)
    vs iterations of the 18- and 34-layer nets: plain nets left, ResNets (option A) right."""
    curves = results["curves"]
    archs = [a for _, pair in FIG4_PANELS for a in pair]
    fig, axes = new_figure(1, 2, figsize=(10, 4.3))
    xmax = _max_iteration(curves, archs, preset)
    unit, unit_label = iteration_unit(xmax)
    v = np.asarray([x for x in _curve_values(curves, archs, ("train_err", "val_err")) if np.isfinite(x)])
    # Errors over 10 classes sit far below ImageNet's: the axis follows the data (95th percentile of the values).
    top = 60.0 if v.size == 0 else float(min(100, max(20, 5 * math.ceil(np.percentile(v, 95) / 5))))
    drawn = []
    for ax, (name, pair) in zip(axes[0], FIG4_PANELS):
        got = plot_curves(ax, curves, pair, metrics=("train_err", "val_err"), unit=unit, outside=False)
        drawn += got
        _error_axis(ax, top, unit_label, "error (%)", xmax / unit)
        ax.set_title(f"{name}-18 vs {name}-34", fontsize=10)
        if not got:
            _empty_axis_note(ax)
    notes = [missing_note(archs, drawn, preset), partial_note(archs, results.get("status")),
             f"y-axis 0-{top:g}% (the paper's Fig. 4, on 1000 ImageNet classes: {PAPER_FIG4_YLIM[0]}-"
             f"{PAPER_FIG4_YLIM[1]}%); val error of the center crop, as in the paper"]
    return annotate(fig, "Fig. 4: ImageNet-style nets, 18 vs 34 layers, plain (left) and residual (right)",
                    preset, results["runs"], notes)


def imagenet_frame(results: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """imagenet.csv of collect (or the same computed from runs.csv), indexed by arch."""
    from .collect import imagenet_table

    t = results.get("imagenet")
    if t is None or t.empty:
        t = imagenet_table(results["runs"]) if not results["runs"].empty else pd.DataFrame(columns=["arch"])
    return t.set_index("arch")


def _cell(t: pd.DataFrame, arch: str, col: str) -> float:
    return float(t.loc[arch, col]) if arch in t.index and col in t and pd.notna(t.loc[arch, col]) else np.nan


def _ours_cell(t: pd.DataFrame, arch: str, col: str) -> str:
    v = _cell(t, arch, col)
    if np.isnan(v):
        return "not run"
    n = int(_cell(t, arch, "n"))
    return f"{v:.2f}" + (f" (n={n})" if n > 1 else "")


def _delta(a: float, b: float) -> str:
    return "—" if np.isnan(a) or np.isnan(b) else f"{b - a:+.2f}"


def _shortcut_label(arch: str) -> str:
    """Table 3's spelling: 'ResNet-34 A', 'plain-34'."""
    from .models import parse_arch

    c = parse_arch(arch)
    return f"ResNet-{c.depth} {c.shortcut}" if c.residual else f"plain-{c.depth}"


def imagenet_footnotes(preset: str, runs: pd.DataFrame) -> list[str]:
    return [
        "[a] ours: the final iterate's error on the val set (no epoch or net is picked on it); 10-crop = the four "
        "corner and the center crops and their mirror images, softmax averaged; single view = the center crop.",
        "[b] ours: mean training error over the last evaluation interval (augmented crops, train-mode BN), the "
        "dashed curves of Fig. 4.",
        "[c] paper: ImageNet val, 1000 classes, 1.28M training images, 600k iterations of 256 at 224 px; 10-crop. "
        "Table 2 (option A) and Table 3.",
        f"Scale: {scale_label(preset)}. {data_label(runs)[0].upper() + data_label(runs)[1:]}.",
    ]


def _params_or_count(t: pd.DataFrame, arch: str, num_classes: int) -> float:
    """The run's parameter count, or the net's with num_classes outputs where it has not run."""
    v = _cell(t, arch, "params")
    if np.isnan(v):
        from .models import build_model, count_params

        v = float(count_params(build_model(arch, num_classes=num_classes)))
    return v


def table2_rows(t: pd.DataFrame, num_classes: int = 10) -> list[list[str]]:
    rows = [[arch_label(a), _params_m(_params_or_count(t, a, num_classes)), _ours_cell(t, a, "val_10crop_err_pct"),
             _ours_cell(t, a, "val_err_pct"), _ours_cell(t, a, "train_err_pct"), _pct(PAPER_TABLE2[a])]
            for a in TABLE2_ARCHS]
    for kind, (a18, a34) in (("plain", ("plain18", "plain34")), ("ResNet", ("resnet18", "resnet34"))):
        rows.append([f"{kind}: 34 − 18 (points)", ""]
                    + [_delta(_cell(t, a18, c), _cell(t, a34, c))
                       for c in ("val_10crop_err_pct", "val_err_pct", "train_err_pct")]
                    + [_delta(PAPER_TABLE2[a18], PAPER_TABLE2[a34])])
    return rows


TABLE2_HEADER = ["net", "# params", "ours: top-1, 10-crop [a]", "ours: top-1, single view [a]",
                 "ours: training error [b]", "paper: top-1, 10-crop [c]"]
TABLE3_HEADER = ["net", "# params", "ours: top-1 [a]", "ours: top-5 [a][d]", "paper: top-1 [c]",
                 "paper: top-5 [c]"]


def table3_rows(t: pd.DataFrame, num_classes: int = 10) -> list[list[str]]:
    return [[_shortcut_label(a), _params_m(_params_or_count(t, a, num_classes)), _ours_cell(t, a, "val_10crop_err_pct"),
             _ours_cell(t, a, "val_10crop_top5_err_pct"), _pct(PAPER_TABLE3[a][0]), _pct(PAPER_TABLE3[a][1])]
            for a in TABLE3_ARCHS]


def _table_md(title: str, header: list[str], rows: list[list[str]], notes: list[str]) -> str:
    out = [title, "", "| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    out += [""] + [f"{n}  " for n in notes if n]
    return "\n".join(out) + "\n"


def _table_tex(title: str, header: list[str], rows: list[list[str]], notes: list[str]) -> str:
    out = [f"% {title}", "% generated by resnet_repro.figures; \\input this inside a table environment",
           r"\begin{tabular}{l" + "r" * (len(header) - 1) + "}", r"\hline",
           " & ".join(latex_escape(h) for h in header) + r" \\", r"\hline"]
    out += [" & ".join(latex_escape(c) for c in r) + r" \\" for r in rows]
    out += [r"\hline", r"\end{tabular}", r"\par\smallskip", r"{\footnotesize"]
    out += [latex_escape(n) + r"\par" for n in notes if n] + ["}"]
    return "\n".join(out) + "\n"


def write_imagenet_tables(results: dict[str, pd.DataFrame], preset: str, out_dir: str | Path) -> list[Path]:
    """table2.md/.tex (plain vs ResNet, 18 vs 34 layers, top-1) and table3.md/.tex (ResNet-34 options A/B/C,
    top-1 and top-5, all 10-crop), ours beside the paper's."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t, runs = imagenet_frame(results), results["runs"]

    nc = make_config(preset).num_classes if preset in PRESETS else 10
    notes = imagenet_footnotes(preset, runs) + [f"# params: of the nets with a {nc}-way classifier (the paper's "
                                                "have 1000 outputs)."]
    status = results.get("status")
    missing = [missing_note([a for a in archs if np.isnan(_cell(t, a, "val_10crop_err_pct"))], [], preset)
               for archs in (TABLE2_ARCHS, TABLE3_ARCHS)]
    partial = partial_note(TABLE2_ARCHS + TABLE3_ARCHS, status)
    d = ("[d] top-5 among 10 classes leaves only 5 wrong answers (chance: 50% top-5 error, against 99.5% on "
         "ImageNet), so it is not comparable with the paper's top-5.")
    tables = {
        "table2": (f"Table 2 analogue: top-1 error (%) on the val set, {scale_label(preset)}",
                   TABLE2_HEADER, table2_rows(t, nc), notes + [f"Ours: {missing[0]}." if missing[0] else "",
                                                                 f"Ours: {partial}." if partial else ""]),
        "table3": (f"Table 3 analogue: error (%, 10-crop) on the val set, shortcut options, {scale_label(preset)}",
                   TABLE3_HEADER, table3_rows(t, nc), notes + [d, f"Ours: {missing[1]}." if missing[1] else "",
                                                           f"Ours: {partial}." if partial else ""]),
    }
    paths = []
    for name, (title, header, rows, n) in tables.items():
        md, tex = out / f"{name}.md", out / f"{name}.tex"
        md.write_text(_table_md(title, header, rows, n), encoding="utf-8")
        tex.write_text(_table_tex(title + f"; {data_label(runs)}", header, rows, n), encoding="utf-8")
        paths += [md, tex]
    return paths


FIG4_NAME = "fig4_imagenet_plain_vs_resnet_18_vs_34"


def make_imagenet_figures(results: dict[str, pd.DataFrame], preset: str, out: Path) -> list[Path]:
    """Fig. 4 (PNG, PDF) and the Table 2 and Table 3 analogues (Markdown, LaTeX) of an ImageNet-style preset."""
    return save_figure(fig4(results, preset), out, FIG4_NAME) + write_imagenet_tables(results, preset, out)
