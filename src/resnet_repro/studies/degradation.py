"""Study: the degradation problem and depth on CIFAR-10 (Fig. 1, Fig. 6, Table 6 of He et al. 2016).

Runs: the plain and residual nets of 20-110 (and 1202) layers of experiments.GRIDS, one row per finished run in
runs.csv and their curves in curves.csv (collect.py). Table: table6.csv, per net n seeds, mean/std/min/max of the
final test error (%), beside the paper's and two public reproductions' (best epoch; final iterate); test_wrong.csv,
the test images each run's final weights get wrong (analyze.py), for the paired test-set noise of claims 2-3. Figures:
Fig. 1 (plain-20 vs plain-56, training error left and test error right), Fig. 6 (plain nets, ResNets, and the
deepest nets: ResNet-110 vs ResNet-1202, or plain-110 when there is no ResNet-1202 run, titled so). Verdict: claims 1-3 of claims.py.
Report: the protocol, the deviations from the paper, Table 6 and the claims; notebooks 01 and 02.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from nbformat.v4 import new_code_cell, new_markdown_cell

from ..claims import claims_text
from ..config import PRESETS, TrainConfig, first_lr_step, make_config
from ..models import arch_order, build_model, count_params
from ..paper import (FINAL_REPRO, FINAL_REPRO_N, FINAL_REPRO_NOTE, PAPER_CIFAR, PAPER_PRECISION, PAPER_TABLE6,
                     PAPER_TABLE6_NOTE, PUBLIC_REPRO, PUBLIC_REPRO_NOTE, WARMUP_ABOUT_ITERATIONS)
from ..plotting import (
    annotate,
    arch_depth,
    arch_label,
    curve_values,
    empty_axis_note,
    error_axis,
    error_ylim,
    iteration_unit,
    max_iteration,
    missing_note,
    new_figure,
    off_scale_notes,
    partial_note,
    plot_curves,
)
from ..wording import (data_name, data_text, devices_text, num, params_m, runs_label, scale_label, scale_text,
                       trained_label, write_table)

FAMILY, PAGE = "cifar", "report"

TABLE6_COLUMNS = ["arch", "depth", "residual", "params", "n", "mean_test_err_pct", "std_test_err_pct",
                  "min_test_err_pct", "max_test_err_pct", "mean_train_err_pct", "paper_test_err_pct",
                  "public_repro_test_err_pct", "final_repro_test_err_pct", "final_repro_std_pct"]
TEST_WRONG_COLUMNS = ["arch", "seed", "n_test", "wrong"]  # wrong: the indices, space-separated
TABLES = {"table6": TABLE6_COLUMNS, "test_wrong": TEST_WRONG_COLUMNS}

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
FIGURES = {"fig1": "fig1_degradation_plain20_vs_plain56", **FIG6_NAMES}
CAPTIONS = {  # what each figure shows, under it in the report and the notebooks (its footer says scale and n)
    "fig1": "Fig. 1 analogue: training error (left) and test error (right) of the 20- and 56-layer plain nets on "
            "CIFAR-10 against iterations. In the paper the deeper plain net has the higher training error throughout: "
            "degradation, not overfitting.",
    "plain": "Fig. 6 (left) analogue: plain nets of 20 to 110 layers on CIFAR-10; training error dashed, test error "
             "bold. In the paper, the deeper the plain net, the higher its training error.",
    "resnet": "Fig. 6 (middle) analogue: ResNets of 20 to 110 layers on CIFAR-10; training error dashed, test error "
              "bold. In the paper, the deeper the ResNet, the lower its errors.",
    "deep": "Fig. 6 (right) analogue: ResNet-110 against ResNet-1202 (where ResNet-1202 has not run, against "
            "plain-110; the title says which); training error dashed, test error bold.",
}


# ----------------------------------------------------------------------------- collect


def references(arch: str) -> dict[str, float]:
    """The published numbers a row of Table 6 stands beside (NaN where a source has no such net)."""
    mean, std = FINAL_REPRO.get(arch, (math.nan, math.nan))
    return dict(paper_test_err_pct=PAPER_TABLE6.get(arch, math.nan),
                public_repro_test_err_pct=PUBLIC_REPRO.get(arch, math.nan),
                final_repro_test_err_pct=mean, final_repro_std_pct=std)


def table6(runs: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for arch, g in runs.groupby("arch"):
        e = g["final_test_err"] * 100
        rows.append(dict(arch=arch, depth=int(g["depth"].iloc[0]), residual=bool(g["residual"].iloc[0]),
                         params=int(g["params"].iloc[0]), n=len(g), mean_test_err_pct=e.mean(),
                         std_test_err_pct=e.std(ddof=1) if len(g) > 1 else math.nan,
                         min_test_err_pct=e.min(), max_test_err_pct=e.max(),
                         mean_train_err_pct=(g["final_train_err"] * 100).mean(), **references(arch)))
    df = pd.DataFrame(rows, columns=TABLE6_COLUMNS)
    return df.iloc[sorted(range(len(df)), key=lambda i: arch_order(df.arch.iloc[i]))].reset_index(drop=True)


def test_wrong(dirs) -> pd.DataFrame:
    """One row per run with a test_wrong.json: arch, seed, n_test and the wrong images' indices."""
    rows = []
    for rd in dirs:
        if (rd / "test_wrong.json").is_file():
            w = json.loads((rd / "test_wrong.json").read_text())
            rows.append(dict(arch=rd.parent.name, seed=int(rd.name[4:]), n_test=w["n_test"],
                             wrong=" ".join(map(str, w["wrong"]))))
    return pd.DataFrame(rows, columns=TEST_WRONG_COLUMNS)


def collect(rs) -> dict[str, pd.DataFrame]:
    return {"table6": table6(rs.runs), "test_wrong": test_wrong(rs.dirs)}


# ----------------------------------------------------------------------------- figures


def fig1(results: dict[str, pd.DataFrame], preset: str, archs: list[str] = FIG1_ARCHS) -> Figure:
    """Fig. 1: plain-20 vs plain-56, training error (left) and test error (right) vs iterations."""
    curves = results["curves"]
    fig, axes = new_figure(1, 2, figsize=(9, 3.9))
    xmax = max_iteration(curves, archs, preset)
    unit, unit_label = iteration_unit(xmax)
    top, ynote = error_ylim(preset, curve_values(curves, archs, ("train_err", "test_err")))
    drawn = []
    for ax, metric, ylabel in ((axes[0, 0], "train_err", "training error (%)"),
                               (axes[0, 1], "test_err", "test error (%)")):
        drawn = plot_curves(ax, curves, archs, metrics=(metric,), unit=unit, outside=False)
        error_axis(ax, top, unit_label, ylabel, xmax / unit)
        if not drawn:
            empty_axis_note(ax)
    notes = [missing_note(archs, drawn, preset), partial_note(archs, results.get("status")), ynote]
    notes += off_scale_notes(curves, drawn, top)
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
    xmax = max_iteration(curves, archs, preset)
    unit, unit_label = iteration_unit(xmax)
    top, ynote = error_ylim(preset, curve_values(curves, archs, ("train_err", "test_err")))
    drawn = plot_curves(ax, curves, archs, unit=unit)
    error_axis(ax, top, unit_label, "error (%)", xmax / unit)
    if not drawn:
        empty_axis_note(ax)
    notes = [missing_note(archs, drawn, preset), partial_note(archs, results.get("status")), ynote]
    notes += off_scale_notes(curves, drawn, top)
    return annotate(fig, title, preset, results["runs"], notes)



def draw(t: dict, preset: str) -> list[tuple[Figure, str]]:
    return [(fig1(t, preset), FIGURES["fig1"])] + [(fig6(t, preset, w), name) for w, name in FIG6_NAMES.items()]


# ----------------------------------------------------------------------------- Table 6


def _params_of(arch: str) -> float:
    try:
        return float(count_params(build_model(arch)))
    except ValueError:  # not a net of this code: only a label, a missing count prints as a dash
        return float("nan")


def table6_frame(t: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Rows of Table 6: table6.csv (or runs.csv), plus a paper-only row for every paper net not run.

    ResNets first, then plain nets, each by depth."""
    df = t["table6"]
    df = (df if not df.empty else table6(t["runs"].dropna(subset=["final_test_err"]))).copy()  # collect's own rows
    extra = [dict(arch=a, depth=arch_depth(a), params=_params_of(a), n=0, **references(a))
             for a in dict.fromkeys([*PAPER_TABLE6, *FINAL_REPRO]) if a not in set(df["arch"])]
    if extra:
        df = pd.concat([df, pd.DataFrame(extra, columns=TABLE6_COLUMNS)], ignore_index=True)
    df["n"] = pd.to_numeric(df["n"], errors="coerce").fillna(0).astype(int)
    df["depth"] = [d if pd.notna(d) else arch_depth(a) for a, d in zip(df["arch"], df["depth"])]
    refs = [references(a) for a in df["arch"]]
    for col in refs[0] if refs else ():
        df[col] = [v if pd.notna(v) else ref[col] for ref, v in zip(refs, df[col])]
    df["_plain"] = df["arch"].str.startswith("plain")
    return df.sort_values(["_plain", "depth", "arch"]).drop(columns="_plain").reset_index(drop=True)


def _ours(r) -> str:
    if r["n"] == 0 or pd.isna(r["mean_test_err_pct"]):
        return "not run"
    if r["n"] > 1 and pd.notna(r["std_test_err_pct"]):
        return f"{r['mean_test_err_pct']:.2f} ± {r['std_test_err_pct']:.2f} (n={r['n']})"
    return f"{r['mean_test_err_pct']:.2f} (n={r['n']})"


TABLE6_HEADER = ["net", "depth", "# params", "ours [c]: mean ± std (n seeds)", "ours: min", "paper",
                 "best epoch [b]", f"final iterate [d] (n={FINAL_REPRO_N})"]


def table6_cells(df: pd.DataFrame) -> list[list[str]]:
    """The table body as strings, errors in % with 2 decimals; the paper's 110 value carries mark [a]."""
    rows = []
    for _, r in df.iterrows():
        paper = num(r["paper_test_err_pct"])
        if r["arch"] in PAPER_TABLE6_NOTE and paper != "—":
            paper += " [a]"
        rows.append([arch_label(r["arch"]), str(int(r["depth"])) if pd.notna(r["depth"]) else "—",
                     params_m(r["params"]), _ours(r), num(r["min_test_err_pct"]) if r["n"] else "—",
                     paper, num(r["public_repro_test_err_pct"]), _final_repro(r)])
    return rows


def _final_repro(r) -> str:
    if pd.isna(r["final_repro_test_err_pct"]):
        return "—"
    return f"{r['final_repro_test_err_pct']:.2f} ± {r['final_repro_std_pct']:.2f}"


def diverged_note(runs: pd.DataFrame) -> str:
    """'diverged ...' for finished runs whose training loss ended not finite ('' if none): a result, not a crash."""
    d = runs[runs["diverged"] == True] if "diverged" in runs else runs.iloc[:0]  # noqa: E712 (NaN-safe)
    if d.empty:
        return ""
    return ("diverged (training loss not finite at the end; the errors are a constant guess's): "
            + ", ".join(f"{arch_label(r.arch)} seed {int(r.seed)}" for r in d.itertuples()))


def table6_notes(df: pd.DataFrame, preset: str, runs: pd.DataFrame, status: pd.DataFrame | None) -> list[str]:
    """The footnotes [a]-[c], the scale and data, and which of the paper's nets are missing or unfinished."""
    paper_notes = "; ".join(f"{arch_label(a)}: {n}" for a, n in PAPER_TABLE6_NOTE.items())
    label = runs_label(runs)
    status_notes = [missing_note(list(df.loc[df["n"] == 0, "arch"]), [], preset),
                    partial_note(sorted(set(status["arch"])) if status is not None else [], status),
                    diverged_note(runs)]
    return [
        f"[a] paper, {paper_notes}: the best of 5 runs, not a mean; in brackets the mean ± std over the 5.",
        f"[b] public reproduction, {PUBLIC_REPRO_NOTE} (optimistic by construction).",
        "[c] ours: test error of the final iterate (after the last iteration), never selected on the "
        "test set; mean ± sample std over n seeds, min = best seed.",
        f"[d] public reproduction, {FINAL_REPRO_NOTE}: the like-for-like reference for the paper's full schedule.",
        f"Scale: {scale_label(preset)}. {label[0].upper() + label[1:]}.",
    ] + [f"Ours: {n}." for n in status_notes if n]


def final_repro_text(t: dict[str, pd.DataFrame], preset: str) -> str:
    """Ours beside the final-iterate reproduction [d], net by net: a fidelity check at the paper's full schedule only."""
    head = "**Beside the final-iterate reproduction [d]**"
    if preset not in PRESETS or make_config(preset).max_steps < TrainConfig.max_steps:
        return (f"{head}: it trains the paper's full schedule, so at this budget ({scale_label(preset)}) a gap measures "
                "the shorter training, not fidelity; the `paper` preset's report makes that check.")
    df = table6_frame(t)
    rows = df[(df["n"] > 0) & df["final_repro_test_err_pct"].notna()]
    if rows.empty:
        return f"{head}: none of its nets has a finished run at this preset yet."
    parts = []
    for r in rows.itertuples():
        d = r.mean_test_err_pct - r.final_repro_test_err_pct
        parts.append(f"{arch_label(r.arch)} {r.mean_test_err_pct:.2f}% (n={r.n}) against {r.final_repro_test_err_pct:.2f}"
                     f" ± {r.final_repro_std_pct:.2f}%: {d:+.2f} points, {d / r.final_repro_std_pct:+.1f} of its seed std")
    return (f"{head}, ours − theirs: " + "; ".join(parts) + ". The two differ in more than seeds: ours is the "
            f"{data_name(t['runs'])}, all {PAPER_CIFAR['train_images'] // 1000}k training images, {trained_label(t['runs'])}; theirs "
            f"the official CIFAR-10 with {PAPER_CIFAR['split'][1] // 1000}k training images held out, trained in fp32. "
            "A gap mixes those differences with seed noise; this check does not separate them.")


def write_tables(t: dict, preset: str, out_dir: str | Path) -> list[Path]:
    """<out_dir>/table6.md and table6.tex."""
    df = table6_frame(t)
    return write_table(out_dir, "table6", f"Table 6 (CIFAR-10 test error, %), {scale_label(preset)}", TABLE6_HEADER,
                       table6_cells(df), table6_notes(df, preset, t["runs"], t.get("status")),
                       tex_title=f"Table 6 (CIFAR-10 test error, %): {scale_label(preset)}; {runs_label(t['runs'])}",
                       align="lrrlrrrr")


# ----------------------------------------------------------------------------- report


def protocol_text(preset: str) -> str:
    c: TrainConfig = make_config(preset) if preset in PRESETS else make_config("paper")
    n50k = f"{PAPER_CIFAR['train_images'] // 1000}k"
    return (f"- Schedule: {scale_text(preset)}. Batch {c.batch_size}, SGD with momentum {c.momentum}, "
            f"weight decay {c.weight_decay:g} on all parameters, lr {c.lr} divided by 10 at iterations "
            f"{', '.join(f'{m:,}' for m in c.milestones)}, stop at {c.max_steps:,}.\n"
            f"- Warm-up (110+ layers): lr {c.warmup_lr} until the mean training error over "
            f"{c.warmup_check_every} iterations drops below {c.warmup_until_err:.0%}, then lr {c.lr}.\n"
            f"- Data: per-pixel mean of the training images subtracted; training images zero-padded by 4, "
            f"randomly cropped to 32×32 and flipped; test on the original 32×32 view. "
            f"Train on {f'all {n50k}' if not c.train_subset else f'a {c.train_subset:,}-image subset of the'} training "
            f"images; test error on {'the full 10k test set' if not c.test_subset else f'{c.test_subset:,} test images'} "
            f"every {c.eval_every:,} iterations.\n"
            f"- Reported errors are the **final iterate's**; the test set selects nothing (no best epoch).\n"
            f"- He (MSRA) init, BN after every conv, option-A (parameter-free) shortcuts; plain nets are the "
            f"same stacks without the additions.")


def deviations_text(runs: pd.DataFrame, preset: str) -> str:
    p = PAPER_CIFAR
    lines = [f"- **Data:** {data_text(runs)}."]
    if preset in PRESETS and make_config(preset).max_steps < TrainConfig.max_steps:
        factor = TrainConfig.max_steps / make_config(preset).max_steps
        lines.append(f"- **Schedule:** {scale_text(preset)}; the paper trains {factor:.0f}× longer.")
    lines += [
        f"- **BN statistics:** one device, BN over the whole batch of {p['batch']}; the paper used {p['gpus']} GPUs "
        f"with BN over {p['batch'] // p['gpus']} images each (available here as `--bn-groups {p['gpus']}`, or "
        f"`--devices {p['gpus']}`).",
        f"- **Train/val split:** final runs train on all {p['train_images'] // 1000}k images, as the paper's final "
        f"runs do; the paper chose its schedule on a {p['split'][0] // 1000}k/{p['split'][1] // 1000}k split, which "
        "this study takes from the paper rather than re-deriving it.",
        "- **Training error** is the running mean over each evaluation interval, on augmented images with "
        "train-mode BN (the dashed curves of Fig. 6).",
    ]
    if not runs.empty:
        lines.append(f"- **Hardware:** {devices_text(runs.device)}.")
    precs = sorted(set(runs.precision.dropna().astype(str)) - {"32-true"}) if "precision" in runs else []
    if precs:
        lines.append(f"- **Precision:** {', '.join(precs)} autocast ({PAPER_PRECISION}); `make precision-check` "
                     "measures bf16 against fp32 on the `short` nets.")
    warm = runs.dropna(subset=["warmup_switched_at"]) if "warmup_switched_at" in runs else runs.iloc[:0]
    if len(warm):
        first_step = first_lr_step(preset)
        where = ", ".join(f"{r.arch} seed {int(r.seed)} at iteration {int(r.warmup_switched_at):,}"
                          + (" (the first lr step: its training error never fell below 80%)"
                             if int(r.warmup_switched_at) == first_step else "") for r in warm.itertuples())
        lines.append(f"- **Warm-up (110 layers):** lr 0.01 until the training error, averaged over the last checks, "
                     f"falls below 80%, then the schedule's lr; it ended for {where}. The paper reports "
                     f"that its error fell below 80% after \"about {WARMUP_ABOUT_ITERATIONS} iterations\"; the "
                     "rule, not the iteration count, is its specification, and why a run crossed 80% at a "
                     "different point is not investigated here.")
    return "\n".join(lines)


def report_fields(t: dict, preset: str, figures_dir: Path) -> dict[str, str]:
    table_md = Path(figures_dir) / "table6.md"
    return dict(protocol=protocol_text(preset), deviations=deviations_text(t["runs"], preset),
                table6=(table_md.read_text() if table_md.is_file() else "_Table 6 not drawn yet (`make figures`)._")
                + "\n\n" + final_repro_text(t, preset),
                degradation=claims_text(t, preset))


# ----------------------------------------------------------------------------- notebooks 01 and 02

NOTEBOOKS = {
    "01_degradation": [
        new_markdown_cell(
            "# The degradation problem (Fig. 1 and Fig. 6)\n\n"
            "He et al. observe that a deeper *plain* net (plain-56) has a **higher training error** than a "
            "shallower one (plain-20): not overfitting, but an optimisation difficulty. With identity "
            "shortcuts the order flips: ResNet-56 trains and tests better than ResNet-20. This notebook reads "
            "the collected runs and checks both claims on the final iterates."),
        new_markdown_cell("## Fig. 1: plain-20 vs plain-56\nTraining error dashed, test error bold."),
        new_code_cell('show("fig1_degradation_plain20_vs_plain56")'),
        new_markdown_cell("## What the numbers show"),
        new_code_cell("display(Markdown(claims.claims_text(t, PRESET)))"),
        new_markdown_cell("## Fig. 6: plain nets (left) and ResNets (middle), and the deepest nets (right)"),
        new_code_cell('show("fig6_plain"); show("fig6_resnet"); show("fig6_deep")'),
        new_markdown_cell("## Final errors of every run (%)"),
        new_code_cell("r = t['runs'][['arch', 'seed', 'final_train_err', 'final_test_err', 'iterations', 'device', 'precision']].copy()\n"
                      "r[['final_train_err', 'final_test_err']] *= 100\nr.round(2)"),
    ],
    "02_table6_depth_vs_error": [
        new_markdown_cell(
            "# Depth vs error on CIFAR-10 (Table 6)\n\n"
            "Our final-iterate test errors beside the paper's and two public reproductions': one reports best "
            "epochs picked on the test set (optimistic by construction), the other final iterates over 5 seeds, "
            "like ours, which are never selected on the test set."),
        new_code_cell('f = fig_dir / "table6.md"\n'
                      'display(Markdown(f.read_text() if f.is_file() else "_table6.md not written yet (`make figures`)._"))'),
        new_markdown_cell("## The collected table (`results/<preset>/table6.csv`)"),
        new_code_cell("t['table6'].round(2)"),
        new_markdown_cell("## Beside the final-iterate reproduction (a fidelity check at the paper's schedule only)"),
        new_code_cell("from resnet_repro.studies import degradation\n"
                      "display(Markdown(degradation.final_repro_text(t, PRESET)))"),
        new_markdown_cell("## What has not been run yet"),
        new_code_cell("display(Markdown(wording.missing_text(t['status'])))"),
        new_markdown_cell("## Provenance"),
        new_code_cell("display(Markdown(wording.provenance_table(t['runs'])))"),
    ],
}
