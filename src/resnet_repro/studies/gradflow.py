"""Gradient flow: norms of dL/d(block input) and dL/dW per layer, at initialisation, during training and at the final
weights: does the signal reach the first blocks of a deep plain net, and of a ResNet?
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.ticker import MaxNLocator
from nbformat.v4 import new_code_cell, new_markdown_cell

from .. import data as D
from ..analyze import default_device
from ..hooks import GRADFLOW_COLUMNS, gradient_flow, label_rows
from ..models import build_model, parse_arch
from ..paths import preset_dir
from ..plotting import annotate, arch_label, arch_sort, new_figure, style
from ..runfolder import arrays_for, data_key, load_final_model, provenance, run_config, runs_with_checkpoint
from ..wording import data_text
from .common import (
    RUN_FILES,
    RunSet,
    cifar_setup,
    first_batches,
    fmt,
    run_files,
    runs_frame,
)

GRADFLOW_ARCHS = ["plain20", "plain56", "plain110", "resnet20", "resnet56", "resnet110"]


def gradflow_init(preset: str = "paper", archs=GRADFLOW_ARCHS, seed: int = 0, n_batches: int = 8,
                  data_dir: str | None = None, dest: str | Path | None = None, results: str | Path = "results",
                  arrays: D.CifarArrays | None = None) -> pd.DataFrame:
    """Gradient norms at initialisation for each arch (the initial weights of seed `seed`'s run), averaged over the
    run's first `n_batches` training batches; writes <dest>/gradflow_init.csv and gradflow_init.json (provenance).
    dest defaults to results/<preset>."""
    from ..config import make_config

    cfg = make_config(preset, data_dir=data_dir, seed=seed)
    if cfg.dataset != "cifar10":
        raise ValueError(f"gradflow runs on the CIFAR presets, not {preset!r}")
    device = default_device()
    arrays = arrays or D.load_cifar10(cfg.data_dir)
    stream, *_ = cifar_setup(cfg, arrays, device)
    batches = first_batches(stream, n_batches, seed)
    t0, frames = time.time(), []
    for arch in archs:
        t1 = time.time()
        torch.manual_seed(seed)  # as train(): seed_everything(seed), then the net is the first thing built
        model = build_model(arch, num_classes=cfg.num_classes, bn_groups=cfg.bn_groups).to(device)
        df = label_rows(gradient_flow(model, batches), arch, seed, "init", 0)
        frames.append(df)
        b = df[df.kind == "block_input"].grad_norm.to_numpy()
        print(f"[gradflow] {arch} at init: block-input gradient norm first/last block {b[0] / b[-1]:.3g} "
              f"({time.time() - t1:.0f}s)", flush=True)
    out = pd.concat(frames, ignore_index=True)[GRADFLOW_COLUMNS]
    dest = Path(dest) if dest is not None else preset_dir(results, preset)
    dest.mkdir(parents=True, exist_ok=True)
    out.to_csv(dest / "gradflow_init.csv", index=False)
    meta = provenance(device, arrays, what="gradient norms at initialisation (studies.gradflow.gradflow_init)",
                       preset=preset, seed=seed, archs=list(archs), n_batches=n_batches, batch_size=cfg.batch_size,
                       n_train=len(stream.x), bn_mode="train (batch statistics)",
                       loss="mean cross-entropy of each batch; norms averaged over the batches",
                       batches="the first n_batches training batches of the seed's run (augmented)",
                       wall_time_s=round(time.time() - t0, 1))
    (dest / "gradflow_init.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"[gradflow] wrote {dest / 'gradflow_init.csv'} and gradflow_init.json", flush=True)
    return out


def gradflow_final(preset: str, results: str | Path = "results", data_dir: str | None = None, archs=None,
                   n_batches: int = 8, force: bool = False, seeds=None) -> list[Path]:
    """Gradient norms at the final weights of every finished run with a checkpoint: <run>/gradflow_final.csv."""
    runs = runs_with_checkpoint(preset, results, archs, "gradflow",
                                done=lambda r: not force and (r / RUN_FILES["gradflow_final"]).is_file(), seeds=seeds)
    arrays, device = arrays_for(runs, data_dir), default_device()
    for run in runs:
        cfg = run_config(run)
        a = arrays[data_key(run, data_dir)]
        stream, *_ = cifar_setup(cfg, a, device)
        model = load_final_model(run, device)
        df = label_rows(gradient_flow(model, first_batches(stream, n_batches, cfg.seed)), cfg.arch, cfg.seed,
                         "final", cfg.max_steps)
        df.to_csv(run / RUN_FILES["gradflow_final"], index=False)
        print(f"[gradflow] wrote {run / RUN_FILES['gradflow_final']}", flush=True)
    return runs


def _block_profile(gf: pd.DataFrame, arch: str) -> np.ndarray:
    d = gf[(gf.arch == arch) & (gf.kind == "block_input")]
    return d.groupby("index")["grad_norm"].mean().sort_index().to_numpy(float) if len(d) else np.array([])


def _spread_text(q: float) -> str:
    """The plain net's spread of gradient norms across its blocks as a multiple (q) of the ResNet's, in words."""
    if q >= 1.25:
        uneven = ": far more uneven" if q >= 10 else ""
        return f"The plain net's gradient varies {fmt(q)}× as much across depth as the ResNet's{uneven}."
    if q > 0.8:
        return f"The two nets' gradients vary by a similar factor across depth (ratio {fmt(q)})."
    return f"The ResNet's gradient varies {fmt(1 / q)}× as much across depth as the plain net's."


def gradflow_verdict(b: dict) -> str:
    """Sentences on the block-input gradient norms: first block / last block, and the spread (max / min), plain
    vs residual at each depth, at initialisation and at the final weights."""
    lines = []
    for point, gf in (("at initialisation", b["gradflow_init"]), ("at the final weights", b["gradflow_final"])):
        if gf.empty:
            lines.append(f"- **Gradient flow {point}:** not run yet"
                         + (" (`make gradflow`)." if point.startswith("at init") else
                            " (needs finished runs with checkpoints: `make gradflow`)."))
            continue
        for d in (20, 56, 110):
            got = {k: _block_profile(gf, f"{k}{d}") for k in ("plain", "resnet")}
            if not all(len(v) for v in got.values()):
                continue
            p, r = got["plain"], got["resnet"]
            seeds = sorted(int(x) for x in set(gf[gf.arch.isin([f"plain{d}", f"resnet{d}"])].seed))
            over = f" (mean over seeds {', '.join(map(str, seeds))})" if len(seeds) > 1 else ""
            lines.append(
                f"- **{d} layers, {point}{over}:** the gradient norm at the input of the first block is "
                f"{fmt(p[0] / p[-1])}× that at the last block in plain-{d} and {fmt(r[0] / r[-1])}× in "
                f"ResNet-{d}; across all {len(p)} blocks it spans a factor of {fmt(p.max() / p.min())} (plain) "
                f"against {fmt(r.max() / r.min())} (ResNet). "
                + _spread_text((p.max() / p.min()) / (r.max() / r.min())))
    if lines and any(not b[k].empty for k in ("gradflow_init", "gradflow_final")):
        lines.append("- Norms are of the whole gradient of the batch-mean loss; the first block's input has 4× the "
                     "entries of the last block's (16×32×32 vs 64×8×8), so equal per-entry gradients would give a "
                     "first/last ratio of 2.")
    lines += gradflow_training_lines(b["gradflow_train"])
    return "\n".join(lines)


def gradflow_training_lines(gf: pd.DataFrame) -> list[str]:
    """Per net recorded during training: the first/last block-input gradient ratio at the first, second and last
    recorded iterations (one training batch each; mean over seeds), and whether plain and ResNet end up alike."""
    lines, last = [], {}
    for arch in arch_sort(set(gf.arch)):
        d = gf[(gf.arch == arch) & (gf.kind == "block_input")]
        its = sorted(int(i) for i in set(d.iteration))
        if not its:
            continue
        ratio = {}
        for it in its:
            g = d[d.iteration == it].groupby("index")["grad_norm"].mean().sort_index().to_numpy(float)
            ratio[it] = g[0] / g[-1]
        picks = sorted({its[0], its[min(1, len(its) - 1)], its[-1]})
        seeds = ", ".join(str(int(s)) for s in sorted(set(d.seed)))
        every = f"every {its[1] - its[0]:,} iterations, " if len(its) > 1 else ""
        lines.append(f"- **{arch_label(arch)} during training** (seed {seeds}; one training batch {every}"
                     f"{len(its)} point{'s' if len(its) > 1 else ''}): the first block's input gradient is "
                     + ", ".join(f"{fmt(ratio[it])}× at iteration {it:,}" for it in picks)
                     + " that of the last block.")
        last[arch] = (ratio[its[0]], ratio[its[-1]])
    for depth in (20, 56, 110):
        p, r = last.get(f"plain{depth}"), last.get(f"resnet{depth}")
        if p and r:
            lines.append(f"- **{depth} layers, during training:** from the first to the last recorded iteration the "
                         f"first/last ratio goes from {fmt(p[0])} to {fmt(p[1])} in plain-{depth} and from "
                         f"{fmt(r[0])} to {fmt(r[1])} in ResNet-{depth}"
                         + (": training itself evens out the plain net's gradient across depth (the paper, Sec. "
                            "4.1, likewise finds healthy backward norms with BN and argues that the degradation is "
                            "not caused by vanishing gradients)." if p[1] < 4 * r[1] else
                            ": the plain net's gradient stays far more uneven across depth."))
    if lines:
        lines.append("- Training-time points are single batches, so they are noisier than the 8-batch means above "
                     "(figure `beyond_gradflow_training`).")
    return lines


def init_labels(preset: str, meta: dict) -> tuple[str, str, pd.DataFrame]:
    p = meta.get("preset", preset)
    scale = (f"at initialisation (no training): the initial weights of seed {meta.get('seed', 0)}'s run, "
             f"{meta.get('n_batches', '?')} batches of {meta.get('batch_size', '?')} augmented training images "
             f"(data settings of the {p} preset)")
    return p, scale, pd.DataFrame({"data_source": [meta.get("data_source", "unknown")]})


def fig_gradflow(gf: pd.DataFrame, preset: str, runs: pd.DataFrame, title: str, scale: str | None = None):
    """Block-input gradient norm vs block index (left) and weight-gradient norm vs layer index (right), log y;
    plain dashed, ResNets solid, one colour per depth (mean over seeds)."""
    fig, axes = new_figure(1, 2, figsize=(11, 4.4))
    for ax, kind, xlabel, ylabel in ((axes[0, 0], "block_input", "block index (input side first)",
                                      "‖∂L/∂x‖ at the block input"),
                                     (axes[0, 1], "weight", "layer index (stem 1, ..., fc)", "‖∂L/∂W‖")):
        for arch in arch_sort(set(gf.arch)):
            d = gf[(gf.arch == arch) & (gf.kind == kind)]
            if kind == "weight":
                d = d[d.role.isin(["stem", "conv1", "conv2", "fc"])]
            g = d.groupby("index")["grad_norm"].mean().sort_index()
            if len(g):
                ax.plot(g.index, g.to_numpy(float), label=arch_label(arch), marker="." if len(g) <= 60 else None,
                        markersize=3, **style(arch))
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # blocks and layers are counted: no "2.5"
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.25)
        if ax.lines:
            ax.legend(fontsize=7, loc="best")
    notes = ["L2 norms of the gradient of the batch-mean cross-entropy, training-mode BN; mean over batches "
             "(and seeds); plain nets dashed, ResNets solid"]
    return annotate(fig, title, preset, runs, notes, scale=scale)


def fig_gradflow_training(gf: pd.DataFrame, preset: str, runs: pd.DataFrame):
    """Block-input gradient norm vs block index, one line per recorded iteration, coloured by the iteration (colour
    bar); a row per kind (plain, ResNet) and a column per depth, so each plain net sits above the ResNet of its depth."""
    archs = arch_sort(set(gf.arch))
    kinds = [k for k in ("plain", "resnet") if any(a.startswith(k) for a in archs)]
    depths = sorted({parse_arch(a).depth for a in archs})
    fig, axes = new_figure(len(kinds), len(depths), figsize=(4.2 * len(depths) + 0.8, 3.6 * len(kinds) + 0.6))
    cmap = colormaps["viridis"]
    d_all = gf[gf.kind == "block_input"]
    norm = Normalize(float(d_all.iteration.min()), float(max(d_all.iteration.max(), d_all.iteration.min() + 1)))
    for row, kind in enumerate(kinds):
        for col, depth in enumerate(depths):
            ax, cell = axes[row, col], [a for a in archs if a.startswith(kind) and parse_arch(a).depth == depth]
            if not cell:
                ax.set_axis_off()
                continue
            d = d_all[d_all.arch.isin(cell)]
            for it in sorted(set(d.iteration)):
                g = d[d.iteration == it].groupby("index")["grad_norm"].mean().sort_index()
                ax.plot(g.index, g.to_numpy(float), color=cmap(norm(it)), linewidth=1)
            ax.set_yscale("log")
            ax.set_title(", ".join(arch_label(a) for a in cell), fontsize=10)
            ax.set_xlabel("block index")
            ax.set_ylabel("‖∂L/∂x‖ at the block input")
            ax.grid(True, which="both", alpha=0.25)
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=axes.ravel().tolist(), shrink=0.8, pad=0.02)
    bar.set_label("training iteration")
    bar.ax.yaxis.set_major_formatter(lambda v, _: f"{v:,.0f}")
    return annotate(fig, "Gradient flow during training", preset, runs,
                    ["one training batch per recorded iteration; colour: the iteration (colour bar)"])


# ----------------------------------------------------------------------------- the study's entry in studies.STUDIES

FAMILY, PAGE = "cifar", "beyond"
TABLES = {"gradflow_init": GRADFLOW_COLUMNS, "gradflow_final": GRADFLOW_COLUMNS, "gradflow_train": GRADFLOW_COLUMNS}
FIGURES = {"gradflow_init": "beyond_gradflow_init", "gradflow_final": "beyond_gradflow_final",
           "gradflow_train": "beyond_gradflow_training"}
CAPTIONS = {  # what each figure shows, under it in the report and the notebook
    "gradflow_init": "Gradient flow at initialisation: the norm of the loss gradient at each block's input "
                     "against the block's index (left) and of each layer's weight gradient (right), log scale; "
                     "plain nets dashed, ResNets solid.",
    "gradflow_final": "Gradient flow at the final weights, drawn as at initialisation.",
    "gradflow_train": "Gradient flow during training: the block-input gradient norm against the block index, one "
                      "line per recorded iteration (colour bar), plain nets above the ResNet of the same depth.",
}


def collect(rs: RunSet) -> dict[str, pd.DataFrame]:
    """The final-weight and training-time records of the finished runs (gradflow_init.csv is written by the
    measurement itself into results/<preset>/, not collected)."""
    return {"gradflow_final": run_files(rs, RUN_FILES["gradflow_final"], GRADFLOW_COLUMNS),
            "gradflow_train": run_files(rs, RUN_FILES["gradflow_train"], GRADFLOW_COLUMNS)}


def load_extra(folder: Path) -> dict:
    meta = Path(folder) / "gradflow_init.json"
    return {"init_meta": json.loads(meta.read_text()) if meta.is_file() else {}}


def draw(b: dict, preset: str) -> list[tuple[object, str]]:
    """(figure, file name) for each table of this study that has data."""
    out, runs = [], runs_frame(b)
    if not b["gradflow_init"].empty:
        p, scale, r = init_labels(preset, b["init_meta"])
        out.append((fig_gradflow(b["gradflow_init"], p, r, "Gradient flow at initialisation: plain vs ResNet",
                                 scale=scale), FIGURES["gradflow_init"]))
    if not b["gradflow_final"].empty:
        out.append((fig_gradflow(b["gradflow_final"], preset, runs_frame(b, b["gradflow_final"]),
                                 "Gradient flow at the final weights"),
                    FIGURES["gradflow_final"]))
    if not b["gradflow_train"].empty:
        out.append((fig_gradflow_training(b["gradflow_train"], preset, runs), FIGURES["gradflow_train"]))
    return out


def report_fields(b: dict, preset: str, figures_dir: Path) -> dict[str, str]:
    meta, out = b["init_meta"], {}
    init_txt = ""
    if meta:
        init_txt = (f"Initialisation measurement: `{meta.get('preset')}` preset's data, seed {meta.get('seed')}, "
                    f"{meta.get('n_batches')} batches of {meta.get('batch_size')}, {meta.get('device')}, commit "
                    f"`{str(meta.get('commit'))[:12]}`, torch {meta.get('torch')}, {meta.get('created_at')}.")
        if b["runs"].empty:  # a folder of its own for the measurement at initialisation (no training)
            out = dict(scale=f"measurements at initialisation only (no training), with the data settings of the "
                             f"`{meta.get('preset')}` preset",
                       data=data_text(pd.DataFrame({"data_source": [meta["data_source"]]})))
    return dict(out, gradflow=gradflow_verdict(b), gradflow_provenance=init_txt)


NOTEBOOKS = {"05_beyond_the_paper": [
    new_markdown_cell(
        "# Beyond the paper: why residual learning works\n\n"
        "Four mechanisms, measured on the nets of this reproduction: **gradient flow** (plain vs residual, "
        "at initialisation and after training), the **identity-mapping variants** of He et al. (ECCV 2016), "
        "**loss landscapes** along filter-normalised directions (Li et al. 2018) and **block lesions** "
        "(Veit et al. 2016). Every sentence below is computed from `results/<preset>/` by the studies in "
        "`resnet_repro.studies`; a step that has not run says so."),
    new_markdown_cell("## 1. Gradient flow\nThe norm of the gradient of the loss with respect to each block's "
                      "input (left) and each layer's weights (right), log scale."),
    new_code_cell("from resnet_repro.studies import gradflow\n"
                  "for key in gradflow.FIGURES:\n    show(gradflow.FIGURES[key])"),
    new_code_cell("display(Markdown(gradflow.gradflow_verdict(t)))"),
]}


# ----------------------------------------------------------------------------- its command

COMMANDS = ("gradflow",)


def add_commands(sub, preset_arg) -> None:
    g = sub.add_parser("gradflow", help="gradient norms per block and layer: at init (plain/ResNet 20/56/110) "
                                        "and at the final weights of finished runs")
    preset_arg(g)
    g.add_argument("--data-dir", default=None)
    g.add_argument("--archs", default=",".join(GRADFLOW_ARCHS), help="nets measured at initialisation")
    g.add_argument("--seed", type=int, default=0, help="whose initial weights and first batches (default 0)")
    g.add_argument("--batches", type=int, default=8, help="batches averaged (default 8, of the preset's batch size)")
    g.add_argument("--dest", default=None, help="folder for gradflow_init.csv/.json (default results/<preset>)")
    g.add_argument("--init-only", action="store_true", help="skip the finished runs (final weights)")
    g.add_argument("--final-only", action="store_true", help="skip the measurement at initialisation (keeps "
                   "gradflow_init.csv as it is)")
    g.add_argument("--force", action="store_true", help="recompute gradflow_final.csv where it exists")


def dispatch(args) -> int:
    archs = [a for a in args.archs.split(",") if a]
    for a in archs:
        parse_arch(a)  # a bad name fails before any work
    if args.init_only and args.final_only:
        raise ValueError("--init-only and --final-only exclude each other")
    if not args.final_only:
        gradflow_init(args.preset, archs, args.seed, args.batches, args.data_dir, args.dest, args.results)
    if not args.init_only:
        gradflow_final(args.preset, args.results, args.data_dir, n_batches=args.batches, force=args.force)
    return 0
