"""Study: layer responses (Fig. 7 of He et al. 2016).

Measurement (analyze.py, run after training, by the campaign or `make analyze`): the std of each 3x3 layer's
response (after BN, before the ReLU and the addition) over all test images, channels and positions, at the final
weights, with how it spreads over the images (the median image's std, the top 1%'s share), into
<run>/layer_std.csv, and the test images a heavy tail consists of, into <run>/response_tail.json. Tables:
layer_std.csv, every finished run's stds with arch, seed, depth and residual prepended; response_tail.csv, per run,
the share of the variance its top 1% of images carry, the error on them, their commonest class and where they sit
among the test images by contrast, colour saturation and blue excess.
Figures: the stds in layer order (top) and sorted by magnitude (bottom), plain nets dashed; the same at every depth;
the same on the median test image; the top 1%'s share per layer (where a heavy tail builds up). Verdict: claim 4,
in fig7_claims.py (residual responses smaller than plain ones, and smaller for deeper ResNets).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from nbformat.v4 import new_code_cell, new_markdown_cell

from ..analyze import INPUT_MEASURES
from ..data import CIFAR10_CLASSES
from ..fig7_claims import HEAVY_TAIL, fig7 as fig7_verdict
from ..models import parse_arch
from ..paths import run_path
from ..plotting import annotate, arch_color, arch_label, arch_sort, empty_axis_note, missing_note, new_figure
from ..wording import data_label

FAMILY, PAGE = "cifar", "report"
LAYER_COLUMNS = ["arch", "seed", "depth", "residual", "layer", "stage", "block", "conv", "std", "std_channel_mean",
                 "std_image_median", "top1pct_share"]  # the last two: empty for runs measured before they existed
TAIL_COLUMNS = ["arch", "seed", "n_images", "n_tail", "tail_share", "tail_err", "test_err", "top_class",
                "top_class_share", *[f"{m}_pct" for m in INPUT_MEASURES], "images"]  # per run: its response_tail.json's
# images (space-separated), their error, their commonest class and the medians of their input percentiles
# (analyze.input_percentiles: contrast, colour saturation, blue excess)
TABLES = {"layer_std": LAYER_COLUMNS, "response_tail": TAIL_COLUMNS}
FIGURES = {"fig7": "fig7_layer_response_std", "fig7_all": "fig7_layer_response_std_all_depths",
           "fig7_median": "fig7_layer_response_std_median_image", "fig7_tail": "fig7_layer_response_tail_share"}
YLABELS = {"std": "std", "std_image_median": "std, median test image",
           "top1pct_share": "variance share, top 1% of images"}  # the columns fig7() can draw
FIG7_ARCHS = ["plain20", "plain56", "resnet20", "resnet56", "resnet110"]
LOG_SCALE_ABOVE = 30  # a log y-axis where the largest std drawn is this many times the smallest (e.g. a net at chance)
CAPTIONS = {  # what each figure shows, under it in the report and the notebooks
    "fig7": "Fig. 7 analogue: std of each 3×3 layer's response (after BN, before the addition and the ReLU) on "
            "the CIFAR-10 test images, in layer order (top) and sorted in descending order (bottom); plain nets "
            "dashed, ResNets solid. In the paper, ResNets respond less than plain nets, and deeper ResNets less.",
    "fig7_all": "Fig. 7 at every depth trained here, drawn as Fig. 7 (layer order on top, sorted below).",
    "fig7_median": "Fig. 7 on the median test image, at every depth: per layer, the median over the test images of "
                   "each image's response std (its rms deviation from the pooled mean). Not the paper's measure: it "
                   "is robust to a heavy tail of a few images, which can lift the pooled std of a whole net.",
    "fig7_tail": "Where a heavy tail builds up: per layer, the share of its response variance carried by the 1% of "
                 "test images with the largest deviation from the pooled mean (1% would be an even spread; 100% all "
                 "of it). Not in the paper.",
}


def response_tail(dirs) -> pd.DataFrame:
    """Per run with a response_tail.json (and its test_wrong.json, from the same weights): the share of the response
    variance its tail images carry, the error on them against the whole test set's, their commonest class and the
    medians of their input percentiles (empty where the file predates them)."""
    rows = []
    for rd in dirs:
        if (rd / "response_tail.json").is_file() and (rd / "test_wrong.json").is_file():
            tail = json.loads((rd / "response_tail.json").read_text())
            wrong = set(json.loads((rd / "test_wrong.json").read_text())["wrong"])
            labels = pd.Series(tail["labels"])
            top = int(labels.value_counts().idxmax())
            rows.append(dict(arch=rd.parent.name, seed=int(rd.name[4:]), n_images=tail["n_images"],
                             n_tail=len(tail["images"]), tail_share=tail["tail_share"],
                             tail_err=sum(i in wrong for i in tail["images"]) / len(tail["images"]),
                             test_err=len(wrong) / tail["n_images"], top_class=CIFAR10_CLASSES[top],
                             top_class_share=float((labels == top).mean()),
                             **{f"{m}_pct": float(np.median(tail[f"{m}_pct"])) if f"{m}_pct" in tail else np.nan
                                for m in INPUT_MEASURES},
                             images=" ".join(map(str, tail["images"]))))
    return pd.DataFrame(rows, columns=TAIL_COLUMNS)


def collect(rs) -> dict[str, pd.DataFrame]:
    """Every finished run's layer_std.csv, with arch, seed, depth and residual prepended; the response tails."""
    frames = []
    for rd in rs.dirs:
        if (rd / "layer_std.csv").is_file():
            ls = pd.read_csv(rd / "layer_std.csv")
            arch, cfg = rd.parent.name, parse_arch(rd.parent.name)
            for col, val in (("residual", cfg.residual), ("depth", cfg.depth), ("seed", int(rd.name[4:])),
                             ("arch", arch)):
                ls.insert(0, col, val)
            frames.append(ls)
    return {"layer_std": pd.concat(frames, ignore_index=True).reindex(columns=LAYER_COLUMNS) if frames
            else pd.DataFrame(columns=LAYER_COLUMNS), "response_tail": response_tail(rs.dirs)}


def _layer_agg(ls: pd.DataFrame, arch: str, sort: bool, col: str = "std") -> pd.DataFrame:
    """Per layer (or per rank once each seed's values of `col` are sorted descending): mean, min, max over seeds."""
    d = ls[ls["arch"] == arch].dropna(subset=["layer", col])
    if d.empty:
        return pd.DataFrame(columns=["x", "mean", "min", "max", "n"])
    if sort:
        d = d.assign(x=d.groupby("seed", dropna=False)[col].rank(method="first", ascending=False))
    else:
        d = d.assign(x=d["layer"])
    g = d.groupby("x")[col].agg(["mean", "min", "max", "count"]).reset_index()
    return g.rename(columns={"count": "n"}).sort_values("x")


def fig7(results: dict[str, pd.DataFrame], preset: str, archs: list[str] = FIG7_ARCHS,
         title: str = "Fig. 7: std of layer responses on CIFAR-10", col: str = "std") -> Figure:
    """Fig. 7: std of the layer responses (after BN, before the addition), in layer order (top) and
    sorted in descending order (bottom). Plain nets dashed, ResNets solid, one colour per depth. `col`: the pooled
    std (the paper's) or the median image's (std_image_median), with the runs that have it."""
    ls = results["layer_std"]
    fig, axes = new_figure(2, 1, figsize=(8.4, 6.4))
    shown = ls.loc[ls["arch"].isin(archs), col] if col in ls else pd.Series(dtype=float)
    shown = shown[(shown > 0) & (shown < float("inf"))]
    # a log axis where one net's responses dwarf the others' (never for a share, which lies in [0, 1])
    log = col != "top1pct_share" and len(shown) > 0 and shown.max() > LOG_SCALE_ABOVE * shown.min()
    drawn = []
    for ax, sort, xlabel in ((axes[0, 0], False, "layer index (original)"),
                             (axes[1, 0], True, "layer index (sorted by magnitude)")):
        drawn = []
        for arch in archs:
            agg = _layer_agg(ls, arch, sort, col)
            if agg.empty:
                continue
            nseeds = ls.loc[(ls["arch"] == arch) & ls[col].notna(), "seed"].nunique()
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
        ax.set_ylabel(YLABELS[col] + (" (log scale)" if log else ""))
        if log:
            ax.set_yscale("log")
        if col == "top1pct_share":
            ax.set_ylim(0, 1.02)
        ax.set_xlim(left=0)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # layers are counted: no tick at 2.5
        ax.grid(True, alpha=0.3)
        if drawn:
            ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        else:
            empty_axis_note(ax)
    unmeasured = [a for a in archs if col != "std" and a not in drawn and a in set(ls["arch"])]  # stds, not col
    notes = [missing_note([a for a in archs if a not in unmeasured], drawn, preset)]
    if unmeasured:
        notes.append("no per-image measure (measured before it existed; no final weights here to measure again): "
                     + ", ".join(arch_label(a) for a in unmeasured))
    return annotate(fig, title, preset, results["runs"], [n for n in notes if n])


def draw(t: dict, preset: str) -> list[tuple[Figure, str]]:
    """The paper's Fig. 7 (its five nets); once nets of other depths have layer stds, the same at every depth
    trained (plain and ResNet of 20-110 layers); and, where runs have the per-image columns, the median image's and
    the top 1%'s share of the variance."""
    out = [(fig7(t, preset), FIGURES["fig7"])]
    present = arch_sort({a for a in set(t["layer_std"]["arch"]) if parse_arch(a).variant in ("original", None)})
    if set(present) - set(FIG7_ARCHS):
        out.append((fig7(t, preset, present, "Fig. 7 at every depth trained: std of layer responses on CIFAR-10"),
                    FIGURES["fig7_all"]))
    if t["layer_std"].get("std_image_median", pd.Series(dtype=float)).notna().any():
        out.append((fig7(t, preset, present, "Fig. 7 on the median test image: std of layer responses on CIFAR-10",
                         "std_image_median"), FIGURES["fig7_median"]))
        out.append((fig7(t, preset, present, "Variance share of the top 1% of test images, per layer, on CIFAR-10",
                         "top1pct_share"), FIGURES["fig7_tail"]))
    return out


GALLERY_COLS, GALLERY_ROWS = 12, 2  # the tail images shown (largest share first), above one row of random ones


def tail_gallery(results, preset: str, tail: pd.DataFrame) -> bytes | str:
    """A PNG of the tail images of the run whose tail carries the largest share (response_tail.json's order), with
    their classes, above as many random test images: what a tail looks like. It needs the test images, which are not
    in results/: they are read from the folder the run's analysis read (its data_path), where this machine has it;
    else a sentence saying so. Notebook 03 only: figures/ holds what results/ alone draws."""
    if tail is None or tail.empty:
        return "_No run has a `response_tail.json` yet (`make analyze`)._"
    r = tail.sort_values(["tail_share", "arch", "seed"], ascending=[False, True, True]).iloc[0]
    rt = json.loads((run_path(results, preset, r["arch"], int(r["seed"])) / "response_tail.json").read_text())
    where = Path(rt.get("data_path") or "")
    if not where.is_dir():
        return (f"_The test images are not on this machine (`{where}`, where the analysis of {r['arch']} seed "
                f"{r['seed']} read them)._")
    from ..data import DataError, load_cifar10

    try:
        arrays = load_cifar10(where)
    except DataError as e:  # another folder at that path now: say so rather than fail the notebook
        return f"_The test images could not be read from `{where}`: {e}_"
    shown = rt["images"][:GALLERY_COLS * GALLERY_ROWS]
    random = np.random.default_rng(0).choice(len(arrays.test_y), GALLERY_COLS, replace=False).tolist()
    fig, axes = new_figure(GALLERY_ROWS + 1, GALLERY_COLS, figsize=(GALLERY_COLS * 0.9, (GALLERY_ROWS + 1) * 1.1))
    cells = shown + [None] * (GALLERY_COLS * GALLERY_ROWS - len(shown)) + random  # row by row, as axes.flat
    for ax, i in zip(axes.flat, cells):
        ax.axis("off")
        if i is not None:
            ax.imshow(arrays.test_x[i])
            ax.set_title(CIFAR10_CLASSES[int(arrays.test_y[i])], fontsize=6)
    fig.suptitle(f"{arch_label(r['arch'])} seed {r['seed']} ({preset}): its {len(shown)} test images with the largest "
                 f"share of the response variance (rows 1-{GALLERY_ROWS}, largest first), above {GALLERY_COLS} random "
                 f"test images; {data_label(pd.DataFrame(dict(data_source=[arrays.source])))}", fontsize=7)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def report_fields(t: dict, preset: str, figures_dir) -> dict[str, str]:
    return dict(fig7=fig7_verdict(t["layer_std"], preset, t.get("response_tail")), heavy_tail=f"{HEAVY_TAIL:g}")


NOTEBOOKS = {
    "03_layer_responses": [
        new_markdown_cell(
            "# Layer responses (Fig. 7)\n\n"
            "The std of each 3×3 layer's response (after BN, before the ReLU and the addition) over all test "
            "images, channels and positions. The paper finds residual responses generally smaller than plain "
            "ones, and smaller still in deeper ResNets: the residual functions are closer to zero than the "
            "non-residual ones."),
        new_code_cell('show("fig7_layer_response_std")\n'
                      'if (fig_dir / "fig7_layer_response_std_all_depths.png").is_file():  # drawn once other depths ran\n'
                      '    show("fig7_layer_response_std_all_depths")'),
        new_markdown_cell("The same on the median test image (not the paper's measure): a net whose pooled std sits far "
                          "above this one owes it to a heavy tail of a few images."),
        new_code_cell('if (fig_dir / "fig7_layer_response_std_median_image.png").is_file():  # runs with per-image columns\n'
                      '    show("fig7_layer_response_std_median_image")\n'
                      '    show("fig7_layer_response_tail_share")'),
        new_markdown_cell("## What the numbers show"),
        new_code_cell("from resnet_repro import fig7_claims\n"
                      "display(Markdown(fig7_claims.fig7(t['layer_std'], PRESET, t['response_tail'])))"),
        new_markdown_cell("## Mean, median and max response std per net\n\n"
                          "Over layers (and seeds): the pooled std that Fig. 7 plots; beside it, the median test "
                          "image's std and the share of the response variance carried by the top 1% of images, which "
                          "tell a heavy tail of images from a uniformly larger response."),
        new_code_cell("t['layer_std'].groupby('arch').agg(\n"
                      "    layers_x_seeds=('std', 'count'), mean=('std', 'mean'), median=('std', 'median'), max=('std', 'max'),\n"
                      "    median_image=('std_image_median', 'mean'), top1pct_share=('top1pct_share', 'mean')).round(3)"),
        new_markdown_cell("## The images of the tail, per run\n\n"
                          "The 1% of test images with the largest share of the response variance (mean over layers; "
                          "`response_tail.json` of each run, of the 10,000 test images): the share they carry, the "
                          "net's error on them against its error on all test images (fp32 inference), their "
                          "commonest class, and the medians of their percentiles among the test images (50 typical, "
                          "100 the top) by `contrast` (the std of an image's pixel values), `chroma` (colour "
                          "saturation: per pixel, the largest channel minus the smallest, averaged) and `blue` (blue "
                          "excess: mean blue minus mean red; low for red images)."),
        new_code_cell("(t['response_tail'].drop(columns=['images', 'n_images']).sort_values(['arch', 'seed'])\n"
                      " .set_index(['arch', 'seed']).round(3))"),
        new_markdown_cell("### What a tail looks like\n\n"
                          "The tail images of the run whose tail carries the largest share, above random test images "
                          "for comparison. They come from the data folder the run's analysis read, not from results/: "
                          "where that folder is not on the machine that executes this notebook, a sentence says so."),
        new_code_cell("from resnet_repro.studies.responses import tail_gallery\n"
                      "g = tail_gallery(RESULTS, PRESET, t['response_tail'])\n"
                      "display(Image(data=g) if isinstance(g, bytes) else Markdown(g))"),
    ],
}
