"""Study: ImageNet-style nets, 18 vs 34 layers, plain and residual (Fig. 4, Tables 2 and 3 of He et al. 2016).

Runs: experiments.IMAGENET_GRID (plain-18, plain-34, ResNet-18, ResNet-34 with shortcuts A, B and C) on an
ImageNet-style preset (imagenet.py). Table: imagenet.csv, per net the final val errors (10-crop and single view,
top-1 and top-5) and training error beside the paper's. Figure: Fig. 4, training and val error curves, plain nets
left and ResNets right. Tables 2 and 3 analogues in Markdown and LaTeX. Verdict: degradation at 34 layers,
ResNet-34 against ResNet-18 and plain-34, and the order of options A, B and C, with the sampling noise of one seed
(imagenet_claims.py, as claims.py holds the CIFAR claims).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from nbformat.v4 import new_code_cell, new_markdown_cell

from ..config import FULL_SCALE_PRESETS, PIPELINE_CHECK_TEXT, PRESETS, is_pipeline_check, make_config
from ..imagenet import protocol_text
from ..imagenet_claims import imagenet_verdict, seed_spread
from ..models import arch_order, build_model, count_params, parse_arch
from ..paper import (PAPER_IMAGENET, PAPER_PRECISION, PAPER_TABLE2, PAPER_TABLE3, imagenet_data, imagenet_schedule,
                     table2_text, table3_text)
from ..plotting import (
    annotate,
    arch_label,
    curve_values,
    empty_axis_note,
    error_axis,
    iteration_unit,
    max_iteration,
    missing_note,
    new_figure,
    partial_note,
    plot_curves,
)
from ..wording import (data_text, num, params_m, provenance_table, runs_label, scale_label, scale_text,
                       trained_label, write_table)

FAMILY, PAGE = "imagenet", "report"
IMAGENET_COLUMNS = ["arch", "depth", "residual", "shortcut", "params", "n", "val_10crop_err_pct",
                    "val_10crop_top5_err_pct", "val_err_pct", "val_top5_err_pct", "train_err_pct",
                    "paper_10crop_err_pct", "paper_10crop_top5_err_pct"]
TABLES = {"imagenet": IMAGENET_COLUMNS}
FIGURES = {"fig4": "fig4_imagenet_plain_vs_resnet_18_vs_34"}
FIG4_NAME = FIGURES["fig4"]
CAPTIONS = {  # what each figure shows, under it in the report and the notebook
    "fig4": "Fig. 4 analogue: training error (dashed: augmented crops, train-mode BN) and val error (bold: single "
            "center view) against iterations of the 18- and 34-layer nets; plain nets left, ResNets (option A) "
            "right. In the paper plain-34 is above plain-18 and ResNet-34 below ResNet-18.",
}


# ----------------------------------------------------------------------------- collect


def imagenet_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per arch, means over seeds (%) of the final val errors (10-crop and single view, top-1 and top-5) and of
    the final training error, beside the paper's 10-crop val errors (Table 2 top-1, Table 3 top-1/top-5)."""
    rows = []
    for arch, g in runs.groupby("arch"):
        def mean_pct(col):
            return float(pd.to_numeric(g[col], errors="coerce").mean() * 100)

        paper1, paper5 = PAPER_TABLE3.get(arch, (PAPER_TABLE2.get(arch, math.nan), math.nan))
        rows.append(dict(arch=arch, depth=int(g["depth"].iloc[0]), residual=bool(g["residual"].iloc[0]),
                         shortcut=g["shortcut"].iloc[0], params=int(g["params"].iloc[0]), n=len(g),
                         val_10crop_err_pct=mean_pct("final_val_10crop_err"),
                         val_10crop_top5_err_pct=mean_pct("final_val_10crop_top5_err"), val_err_pct=mean_pct("final_val_err"),
                         val_top5_err_pct=mean_pct("final_val_top5_err"), train_err_pct=mean_pct("final_train_err"),
                         paper_10crop_err_pct=paper1, paper_10crop_top5_err_pct=paper5))
    df = pd.DataFrame(rows, columns=IMAGENET_COLUMNS)
    return df.iloc[sorted(range(len(df)), key=lambda i: arch_order(df.arch.iloc[i]))].reset_index(drop=True)


def collect(rs) -> dict[str, pd.DataFrame]:
    return {"imagenet": imagenet_table(rs.runs)}


# ----------------------------------------------------------------------------- Fig. 4


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
    xmax = max_iteration(curves, archs, preset)
    unit, unit_label = iteration_unit(xmax)
    v = np.asarray([x for x in curve_values(curves, archs, ("train_err", "val_err")) if np.isfinite(x)])
    # Errors over 10 classes sit far below ImageNet's: the axis follows the data (95th percentile of the values).
    top = 60.0 if v.size == 0 else float(min(100, max(20, 5 * math.ceil(np.percentile(v, 95) / 5))))
    drawn = []
    for ax, (name, pair) in zip(axes[0], FIG4_PANELS):
        got = plot_curves(ax, curves, pair, metrics=("train_err", "val_err"), unit=unit, outside=False)
        drawn += got
        error_axis(ax, top, unit_label, "error (%)", xmax / unit)
        ax.set_title(f"{name}-18 vs {name}-34", fontsize=10)
        if not got:
            empty_axis_note(ax)
    notes = [missing_note(archs, drawn, preset), partial_note(archs, results.get("status")),
             f"y-axis 0-{top:g}% (the paper's Fig. 4, on 1000 ImageNet classes: {PAPER_FIG4_YLIM[0]}-"
             f"{PAPER_FIG4_YLIM[1]}%); val error of the center crop, as in the paper"]
    return annotate(fig, "Fig. 4: ImageNet-style nets, 18 vs 34 layers, plain (left) and residual (right)",
                    preset, results["runs"], notes)



def draw(t: dict, preset: str) -> list[tuple[Figure, str]]:
    return [(fig4(t, preset), FIG4_NAME)]


# ----------------------------------------------------------------------------- Tables 2 and 3


def imagenet_frame(results: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """imagenet.csv of collect (or the same computed from runs.csv), indexed by arch."""
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
    c = parse_arch(arch)
    return f"ResNet-{c.depth} {c.shortcut}" if c.residual else f"plain-{c.depth}"


def imagenet_footnotes(preset: str, runs: pd.DataFrame) -> list[str]:
    return [
        "[a] ours: the final iterate's error on the val set (no epoch or net is picked on it); 10-crop = the four "
        "corner and the center crops and their mirror images, softmax averaged; single view = the center crop.",
        "[b] ours: mean training error over the last evaluation interval (augmented crops, train-mode BN), the "
        "dashed curves of Fig. 4.",
        f"[c] paper: ImageNet val, {imagenet_data()}, {imagenet_schedule()}; 10-crop. "
        "Table 2 (option A) and Table 3.",
        f"Scale: {scale_label(preset)}. {runs_label(runs)[0].upper() + runs_label(runs)[1:]}.",
    ]


def _params_or_count(t: pd.DataFrame, arch: str, num_classes: int) -> float:
    """The run's parameter count, or the net's with num_classes outputs where it has not run."""
    v = _cell(t, arch, "params")
    if np.isnan(v):
        v = float(count_params(build_model(arch, num_classes=num_classes)))
    return v


def table2_rows(t: pd.DataFrame, num_classes: int = 10) -> list[list[str]]:
    rows = [[arch_label(a), params_m(_params_or_count(t, a, num_classes)), _ours_cell(t, a, "val_10crop_err_pct"),
             _ours_cell(t, a, "val_err_pct"), _ours_cell(t, a, "train_err_pct"), num(PAPER_TABLE2[a])]
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
    return [[_shortcut_label(a), params_m(_params_or_count(t, a, num_classes)), _ours_cell(t, a, "val_10crop_err_pct"),
             _ours_cell(t, a, "val_10crop_top5_err_pct"), num(PAPER_TABLE3[a][0]), num(PAPER_TABLE3[a][1])]
            for a in TABLE3_ARCHS]



def write_tables(results: dict[str, pd.DataFrame], preset: str, out_dir: str | Path) -> list[Path]:
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
        paths += write_table(out, name, title, header, rows, n, tex_title=title + f"; {runs_label(runs)}")
    return paths



# ----------------------------------------------------------------------------- report


def _maps(preset_or_px: str | int, stride: int) -> str:
    """The side of the feature maps at `stride` (4 after the stem, 32 in the last stage): each stride-2 step with
    padding rounds up."""
    px = preset_or_px if isinstance(preset_or_px, int) else make_config(preset_or_px).image_size
    return f"{-(-px // stride)}×{-(-px // stride)}"


def imagenet_deviations_text(runs: pd.DataFrame, preset: str) -> str:
    lines = [f"- **Data:** {data_text(runs)}; the paper trains on {imagenet_data()} and "
             f"reports on its {PAPER_IMAGENET['val_images'] // 1000}k val images."]
    if preset not in FULL_SCALE_PRESETS:
        lines.append(f"- **Scale:** {scale_text(preset)}; the paper: {imagenet_schedule()} (about "
                     f"{PAPER_IMAGENET['epochs']} epochs), lr /10 when the error plateaus.")
    c0, (s0, s1) = PAPER_IMAGENET["crop"], PAPER_IMAGENET["scale"]
    if preset in PRESETS and make_config(preset).image_size != c0:
        lines.append(f"- **Image size:** Imagenette's copy is 224×224, so the paper's recipe at {c0} px (images "
                     f"resized to {s0}–{s1}) would upsample every crop up to 2×; it runs instead at "
                     f"{make_config(preset).image_size} px with every length scaled alike (scale range, crop, test "
                     "size), which also keeps the GPU time small. The stem (7×7/2 conv and max-pool) then leaves "
                     f"{_maps(preset, 4)} maps and the last stage works on {_maps(preset, 32)} (the paper: "
                     f"{_maps(c0, 4)} and {_maps(c0, 32)}): little spatial context for the deepest blocks, a caveat "
                     "for every comparison at this size.")
    lines += [
        "- **Mean:** per-pixel mean of the stored training images (as the paper); the `workers` loader, meant for "
        "full ImageNet, subtracts the per-channel ImageNet mean instead.",
        "- **BN statistics:** over the whole batch on one device (with DDP, over each device's share); the paper "
        "does not state its per-GPU split for ImageNet.",
        "- **Training error** is the running mean over each evaluation interval, on augmented crops with train-mode "
        "BN (the thin curves of Fig. 4).",
        "- **Top-5** over 10 classes is not comparable with the paper's top-5 over 1000.",
        "- **Seeds:** one per net, as the paper reports one run per net on ImageNet"
        + (f"; a second seed of {', '.join(seed_spread(runs)[1])} measures the seed-to-seed spread."
           if seed_spread(runs)[1] else "."),
    ]
    if not runs.empty:
        lines.append(f"- **Hardware and precision:** {trained_label(runs)} ({PAPER_PRECISION}).")
    return "\n".join(lines)


def report_fields(t: dict, preset: str, figures_dir: Path) -> dict[str, str]:
    """The fields of templates/report_imagenet.md that this study fills."""
    def table(name):
        f = Path(figures_dir) / f"{name}.md"
        return f.read_text() if f.is_file() else f"_{name}.md not drawn yet (`make figures`)._"

    return dict(paper_table2=table2_text(), paper_table3=table3_text(), protocol=protocol_text(preset),
                deviations=imagenet_deviations_text(t["runs"], preset),
                verdict=PIPELINE_CHECK_TEXT if is_pipeline_check(preset) else imagenet_verdict(t["runs"], preset, t["curves"]),
                table2=table("table2"), table3=table("table3"),
                provenance=provenance_table(t["runs"], "final_val_10crop_err", "val err (10-crop)"))


NOTEBOOKS = {
    "04_imagenet_18_vs_34": [
        new_markdown_cell(
            "# ImageNet-style nets: 18 vs 34 layers, plain and residual (Fig. 4, Tables 2 and 3)\n\n"
            "On ImageNet, He et al. find that the 34-layer plain net has higher training *and* validation error "
            "than the 18-layer one (the degradation problem), while with shortcuts the order flips: ResNet-34 "
            f"beats ResNet-18 (top-1, 10-crop: {table2_text()}). Projection shortcuts "
            f"help a little more (ResNet-34 A/B/C: {table3_text()}). This notebook reads the collected runs and "
            "checks each claim on the final iterates. The data and the scale of this preset are stated below: "
            "10 classes, far fewer images and a shorter schedule than the paper's."),
        new_markdown_cell("## Fig. 4: training error (dashed) and val error (bold, center crop)\n"
                          "Plain nets left, ResNets (option A) right."),
        new_code_cell("from resnet_repro.studies import imagenet_depth\nshow(imagenet_depth.FIG4_NAME)"),
        new_markdown_cell("## What the numbers show"),
        new_code_cell("from resnet_repro.config import PIPELINE_CHECK_TEXT, is_pipeline_check\n"
                      "display(Markdown(PIPELINE_CHECK_TEXT if is_pipeline_check(PRESET) else "
                      "imagenet_depth.imagenet_verdict(t['runs'], PRESET, t['curves'])))"),
        new_markdown_cell("## Table 2 and Table 3 analogues, beside the paper's numbers"),
        new_code_cell('for name in ("table2", "table3"):\n'
                      '    f = fig_dir / f"{name}.md"\n'
                      '    text = f.read_text() if f.is_file() else f"_{f} not written yet (`make figures`)._"\n'
                      '    display(Markdown(text))'),
        new_markdown_cell("## Final errors of every run (%)"),
        new_code_cell("cols = ['final_train_err', 'final_val_err', 'final_val_10crop_err',\n"
                      "        'final_val_10crop_top5_err']\n"
                      "r = t['runs'][['arch', 'seed'] + cols + ['iterations', 'wall_time_s', 'device']].copy()\n"
                      "r[cols] = r[cols].astype(float) * 100\nr.round(2)"),
        new_markdown_cell("## What has not been run yet"),
        new_code_cell("display(Markdown(wording.missing_text(t['status'])))"),
    ],
}
