"""Study: ImageNet-style nets, 18 vs 34 layers, plain and residual (Fig. 4, Tables 2 and 3 of He et al. 2016).

Runs: experiments.IMAGENET_GRID (plain-18, plain-34, ResNet-18, ResNet-34 with shortcuts A, B and C) on an
ImageNet-style preset (imagenet.py). Table: imagenet.csv, per net the final val errors (10-crop and single view,
top-1 and top-5) and training error beside the paper's. Figure: Fig. 4, training and val error curves, plain nets
left and ResNets right. Tables 2 and 3 analogues in Markdown and LaTeX. Verdict: degradation at 34 layers,
ResNet-34 against ResNet-18 and plain-34, and the order of options A, B and C, with the sampling noise of one seed.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from nbformat.v4 import new_code_cell, new_markdown_cell

from ..config import (FULL_SCALE_PRESETS, PIPELINE_CHECK_TEXT, PRESETS, imagenet_schedule_text,
                      is_pipeline_check, make_config)
from ..imagenet import protocol_text
from ..models import arch_order, build_model, count_params, parse_arch
from ..paper import PAPER_IMAGENET, PAPER_TABLE2, PAPER_TABLE3, imagenet_data, imagenet_schedule, table2_text, table3_text
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
from ..wording import (data_text, num, params_m, pct, provenance_table, runs_label, scale_label, scale_text,
                       write_table)

FAMILY, PAGE = "imagenet", "report"
IMAGENET_COLUMNS = ["arch", "depth", "residual", "shortcut", "params", "n", "val_10crop_err_pct",
                    "val_10crop_top5_err_pct", "val_err_pct", "val_top5_err_pct", "train_err_pct",
                    "paper_10crop_err_pct", "paper_10crop_top5_err_pct"]
TABLES = {"imagenet": IMAGENET_COLUMNS}
FIGURES = {"fig4": "fig4_imagenet_plain_vs_resnet_18_vs_34"}
FIG4_NAME = FIGURES["fig4"]


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



# ----------------------------------------------------------------------------- verdict and report


def _final(runs: pd.DataFrame, arch: str, col: str) -> float | None:
    g = runs[runs.arch == arch]
    return None if g.empty else float(g[col].mean())


def _n(runs: pd.DataFrame, arch: str) -> int:
    return int((runs.arch == arch).sum())


def _pts(a: float, b: float) -> str:
    return f"{100 * (b - a):+.2f} points"


def _gap_note(v18: float, v34: float) -> str:
    """Where the plain nets' val gap is an order of magnitude above the paper's, what that says about this budget."""
    ours, paper = 100 * (v34 - v18), PAPER_TABLE2["plain34"] - PAPER_TABLE2["plain18"]
    if ours <= 10 * paper:
        return ""
    return (f" The gap is {ours / paper:.0f}× the paper's {paper:+.2f} points: at this budget plain-34 is still far "
            "from converged (see its training curve in Fig. 4), in line with the paper's conjecture that deep plain "
            "nets have exponentially low convergence rates (Sec. 4.1), so the size of the gap measures the budget "
            "as much as the depth.")


def seed_spread(runs: pd.DataFrame, col: str = "final_val_10crop_err") -> tuple[float | None, list[str]]:
    """The seed-to-seed std of one net's final val error, pooled over the nets that have more than one seed (the
    root of their mean variance), and those nets; (None, []) while every net has one seed."""
    var = runs.groupby("arch")[col].var(ddof=1).dropna() if len(runs) else pd.Series(dtype=float)
    return (math.sqrt(float(var.mean())), list(var.index)) if len(var) else (None, [])


def imagenet_verdict(runs: pd.DataFrame, preset: str | None = None) -> str:
    """The Fig. 4 / Table 2 / Table 3 claims, checked on the final iterates (means over seeds): does plain-34
    train and validate worse than plain-18, does ResNet-34 beat ResNet-18, and how do options A, B, C order.
    Val errors are top-1, 10-crop (the paper's Tables 2 and 3)."""
    if runs.empty:
        return "- No finished runs yet: nothing can be decided."
    preset = preset or str(runs["preset"].iloc[0])
    tr = {a: _final(runs, a, "final_train_err") for a in PAPER_TABLE2}
    va = {a: _final(runs, a, "final_val_10crop_err") for a in set(PAPER_TABLE2) | set(PAPER_TABLE3)}
    n_val = int(pd.to_numeric(runs.get("n_val"), errors="coerce").max()) if "n_val" in runs else 0
    known = [v for v in va.values() if v is not None]
    # Binomial standard error of one val error on n_val images: a floor on the noise of a single-seed number.
    binom = math.sqrt(sum(known) / len(known) * (1 - sum(known) / len(known)) / n_val) if known and n_val else math.nan
    spread, spread_archs = seed_spread(runs)
    se = binom if spread is None or math.isnan(binom) else max(binom, spread)  # the noise of one net's number
    missing = lambda archs: ", ".join(a for a in archs if _n(runs, a) == 0)  # noqa: E731
    lines, order = [], {}

    def noisy(a: float, b: float) -> str:  # a difference of two val errors within two standard errors
        small = not math.isnan(se) and abs(b - a) < 2 * se * math.sqrt(2)
        return ", within two standard errors of sampling noise" if small else ""

    def paper(a, b):
        return f"paper: {PAPER_TABLE2[a]:.2f}% vs {PAPER_TABLE2[b]:.2f}%"

    if tr["plain18"] is None or tr["plain34"] is None:
        lines.append(f"- **Plain-34 vs plain-18 (degradation):** not decidable yet; missing: "
                     f"{missing(['plain18', 'plain34'])}.")
    else:
        worse_tr, worse_va = tr["plain34"] > tr["plain18"], va["plain34"] > va["plain18"]
        order["plain"] = worse_va
        verdict = {(True, True): "**Reproduced**: the deeper plain net trains *and* validates worse.",
                   (True, False): "**Partly reproduced**: plain-34 trains worse but does not validate worse.",
                   (False, True): "**Partly reproduced**: plain-34 validates worse but does not train worse (the "
                                  "paper's point is the higher *training* error).",
                   (False, False): "**Not reproduced**: plain-34 is not worse than plain-18 here.",
                   }[(worse_tr, worse_va)]
        lines.append(f"- **Plain-34 vs plain-18 (degradation):** plain-34 ends with a training error of "
                     f"{pct(tr['plain34'])} against {pct(tr['plain18'])} ({_pts(tr['plain18'], tr['plain34'])}) and "
                     f"a val error of {pct(va['plain34'])} against {pct(va['plain18'])} "
                     f"({_pts(va['plain18'], va['plain34'])}{noisy(va['plain18'], va['plain34'])}; "
                     f"{paper('plain34', 'plain18')}). {verdict}" + _gap_note(va["plain18"], va["plain34"]))
    if tr["resnet18"] is None or tr["resnet34"] is None:
        lines.append(f"- **ResNet-34 vs ResNet-18:** not decidable yet; missing: {missing(['resnet18', 'resnet34'])}.")
    else:
        beats = va["resnet34"] < va["resnet18"]
        order["resnet"] = beats
        lines.append(f"- **ResNet-34 vs ResNet-18:** val error {pct(va['resnet34'])} against {pct(va['resnet18'])} "
                     f"({_pts(va['resnet18'], va['resnet34'])}{noisy(va['resnet18'], va['resnet34'])}; "
                     f"{paper('resnet34', 'resnet18')}), training error "
                     f"{pct(tr['resnet34'])} against {pct(tr['resnet18'])}: ResNet-34 "
                     + ("**beats** ResNet-18, as in the paper." if beats else "does **not** beat ResNet-18."))
    if tr["plain34"] is not None and tr["resnet34"] is not None:
        p34 = f"paper: {PAPER_TABLE2['resnet34']:.2f}% vs {PAPER_TABLE2['plain34']:.2f}% val"
        lines.append(f"- **Shortcuts at 34 layers:** ResNet-34 {pct(va['resnet34'])} val / {pct(tr['resnet34'])} "
                     f"train against plain-34's {pct(va['plain34'])} / {pct(tr['plain34'])} ({p34}): ResNet-34 "
                     + ("**beats** plain-34." if va["resnet34"] < va["plain34"] else "does **not** beat plain-34."))
    noise = "" if math.isnan(se) else (
        f" The binomial standard error of one val error on {n_val:,} images is about ±{100 * binom:.2f} points"
        + (f"; the seed-to-seed std of one net's val error, from a second seed of {', '.join(spread_archs)}, is "
           f"{100 * spread:.2f} points (n=2 per net: a rough estimate). A difference of two nets counts here beyond "
           f"two standard errors of a difference, ±{200 * se * math.sqrt(2):.2f} points." if spread is not None else
           f" (±{100 * se * math.sqrt(2):.2f} for a difference of two). One seed per net: seed-to-seed variation, "
           f"not measured, adds to it."))
    if len(order) == 2:
        if order["plain"] and order["resnet"]:
            lines.append("- **Overall: the 18/34 ordering of Table 2 reproduces on this data** (val error, "
                         "10-crop): deeper is worse for plain nets and better for ResNets." + noise)
        else:
            c = make_config(preset) if preset in PRESETS else None
            sched = f" ({imagenet_schedule_text(preset)})" if c else ""
            lines.append("- **Overall: the 18/34 ordering of Table 2 does not fully reproduce on this data** "
                         "(val error, 10-crop). "
                         "Possible reasons: 10 classes instead of 1000 (an easier task, far lower errors); "
                         f"{int(runs['n_train'].max()):,} training images instead of {PAPER_IMAGENET['train_images'] / 1e6:.2f}M, so the 34-layer nets can "
                         "overfit rather than underfit (compare the training errors); and a shorter schedule"
                         f"{sched} than the paper's {imagenet_schedule()}." + noise)
    opts = [(k, va[a]) for k, a in (("A", "resnet34"), ("B", "resnet34b"), ("C", "resnet34c")) if va[a] is not None]
    if len(opts) < 3:
        lines.append(f"- **Shortcut options (Table 3):** not decidable yet; missing: "
                     f"{missing(['resnet34', 'resnet34b', 'resnet34c'])}.")
    else:
        (_, a), (_, b), (_, c) = opts
        top1 = [PAPER_TABLE3[n][0] for n in ("resnet34", "resnet34b", "resnet34c")]
        paper_abc, paper_gap = ", ".join(f"{v:.2f}%" for v in top1), max(top1) - min(top1)
        ranked = " < ".join(k for k, _ in sorted(opts, key=lambda kv: kv[1]))
        holds, beat = c <= b <= a, {k: v < a for k, v in (("B", b), ("C", c))}
        lines.append(f"- **Shortcut options (Table 3):** ResNet-34 A {pct(a)}, B {pct(b)}, C {pct(c)} val error "
                     f"(paper: {paper_abc}, i.e. C < B < A by at most {paper_gap:.2f} points). "
                     + ("B and C both **beat** A, as in the paper. " if all(beat.values()) else
                        " and ".join(k for k, v in beat.items() if not v)
                        + (" do" if not any(beat.values()) else " does") + " **not** beat A. ")
                     + f"Ours rank {ranked}: "
                     + ("the paper's order C ≤ B ≤ A **holds**." if holds else "the paper's order C ≤ B ≤ A "
                        "does **not** hold.")
                     + (f" The largest gap, {100 * (max(a, b, c) - min(a, b, c)):.2f} points, is "
                        + ("within" if max(a, b, c) - min(a, b, c) < 2 * se * math.sqrt(2) else "beyond")
                        + f" two standard errors of sampling noise (±{200 * se * math.sqrt(2):.2f})."
                        if not math.isnan(se) else ""))
    lines.append("- Top-5 errors (Table 3 analogue) are over 10 classes (chance: 50%), not comparable with the "
                 "paper's top-5 over 1000.")
    return "\n".join(lines)


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
                     "size), which also keeps the GPU time small.")
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
        prec = ", ".join(sorted(set(runs.precision.astype(str)))) if "precision" in runs else "?"
        lines.append(f"- **Hardware and precision:** {', '.join(sorted(set(runs.device.astype(str))))}; {prec} "
                     "(the paper: fp32 on GPUs).")
    return "\n".join(lines)


def report_fields(t: dict, preset: str, figures_dir: Path) -> dict[str, str]:
    """The fields of templates/report_imagenet.md that this study fills."""
    def table(name):
        f = Path(figures_dir) / f"{name}.md"
        return f.read_text() if f.is_file() else f"_{name}.md not drawn yet (`make figures`)._"

    return dict(paper_table2=table2_text(), paper_table3=table3_text(), protocol=protocol_text(preset),
                deviations=imagenet_deviations_text(t["runs"], preset),
                verdict=PIPELINE_CHECK_TEXT if is_pipeline_check(preset) else imagenet_verdict(t["runs"], preset),
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
                      "imagenet_depth.imagenet_verdict(t['runs'])))"),
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
