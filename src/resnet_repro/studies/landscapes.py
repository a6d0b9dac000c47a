"""Loss landscapes (Li et al. 2018): the loss along filter-normalised random directions around the final weights, in
1-D and 2-D: is the residual surface smoother than the plain one?
"""

from __future__ import annotations

import itertools
import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
from matplotlib.ticker import MaxNLocator
from nbformat.v4 import new_code_cell, new_markdown_cell

from .. import batches as B
from ..analyze import default_device, inference_batches
from ..experiments import LANDSCAPE_NETS
from ..hooks import filter_normalized_direction
from ..models import parse_arch
from ..paths import has_final_weights, run_path
from ..plotting import annotate, arch_label, arch_sort, new_figure, style
from ..runfolder import arrays_for, data_key, load_final_model, provenance, run_config
from .common import RUN_FILES, RunSet, cifar_setup, run_files, run_jsons, runs_frame
from .lesions import evaluate

LANDSCAPE_ARCHS = list(LANDSCAPE_NETS)


LANDSCAPE_1D_COLUMNS = ["arch", "seed", "alpha", "loss", "err"]


LANDSCAPE_2D_COLUMNS = ["arch", "seed", "alpha", "beta", "loss", "err"]


CHANCE_LOSS = math.log(10)  # the cross-entropy of a uniform guess over 10 classes


@torch.no_grad()
def loss_grid(model: nn.Module, batches, d1: list[torch.Tensor], alphas, d2: list[torch.Tensor] | None = None,
              betas=None) -> pd.DataFrame:
    """Loss and error of the weights theta + alpha d1 (+ beta d2) for every alpha (x every beta), in inference
    mode; the weights are restored afterwards. Columns alpha, [beta,] loss, err."""
    params = list(model.parameters())
    theta = [p.detach().clone() for p in params]
    rows = []
    try:
        for a in alphas:
            for b in (betas if d2 is not None else [None]):
                for p, t, u in zip(params, theta, d1):
                    p.copy_(t).add_(u, alpha=float(a))
                if b is not None:
                    for p, v in zip(params, d2):
                        p.add_(v, alpha=float(b))
                loss, err, _ = evaluate(model, batches)
                rows.append(dict(alpha=float(a), loss=loss, err=err) if b is None
                            else dict(alpha=float(a), beta=float(b), loss=loss, err=err))
    finally:
        for p, t in zip(params, theta):
            p.copy_(t)
    return pd.DataFrame(rows)


def landscape(model: nn.Module, batches, grid: int = 51, grid_1d: int | None = None, dir_seed: int = 0,
              span: float = 1.0) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """1-D curve (grid_1d points along d1) and 2-D surface (grid x grid over [-span, span]^2 along d1, d2)."""
    gen = torch.Generator().manual_seed(dir_seed)
    d1 = filter_normalized_direction(model, gen)
    d2 = filter_normalized_direction(model, gen)
    flat1, flat2 = torch.cat([d.flatten() for d in d1]), torch.cat([d.flatten() for d in d2])
    cos = float(flat1 @ flat2 / (flat1.norm() * flat2.norm()))
    coords = np.linspace(-span, span, grid)
    one = loss_grid(model, batches, d1, np.linspace(-span, span, grid_1d or grid))
    two = loss_grid(model, batches, d1, coords, d2, coords)
    return one, two, dict(cos_d1_d2=cos, grid=grid, grid_1d=grid_1d or grid, span=span, dir_seed=dir_seed)


def landscape_preset(preset: str, archs=LANDSCAPE_ARCHS, seed: int = 0, grid: int = 51, grid_1d: int | None = None,
                     subset: int = 2000, dir_seed: int = 0, results: str | Path = "results",
                     data_dir: str | None = None, force: bool = False) -> list[Path]:
    """landscape_1d.csv, landscape_2d.csv and landscape.json in the run folder of each arch (seed `seed`)."""
    runs = []
    for arch in archs:
        run = run_path(results, preset, arch, seed)
        if not (run / "final.json").is_file() or not has_final_weights(run):
            print(f"[landscape] {run}: no finished run with final weights (checkpoint or published), skipped",
                  flush=True)
            continue
        meta = run / "landscape.json"
        if meta.is_file() and not force:
            m = json.loads(meta.read_text())
            if (m.get("grid"), m.get("subset"), m.get("dir_seed")) == (grid, subset, dir_seed):
                print(f"[landscape] {run}: done already (--force to redo)", flush=True)
                continue
        runs.append(run)
    arrays, device = arrays_for(runs, data_dir), default_device()
    for run in runs:
        cfg = run_config(run)
        a = arrays[data_key(run, data_dir)]
        _, _, tx, ty, mean = cifar_setup(cfg, a, device)
        idx = torch.from_numpy(B.subset_indices(len(tx), subset, cfg.split_seed)).to(device)
        batches = inference_batches(tx[idx], ty[idx], mean, device)
        t0 = time.time()
        one, two, info = landscape(load_final_model(run, device), batches, grid, grid_1d, dir_seed)
        for df, cols, name in ((one, LANDSCAPE_1D_COLUMNS, "landscape_1d"), (two, LANDSCAPE_2D_COLUMNS, "landscape_2d")):
            df["arch"], df["seed"] = cfg.arch, cfg.seed
            df[cols].to_csv(run / RUN_FILES[name], index=False)
        meta = provenance(device, a, what="loss landscape (studies.landscapes.landscape)", arch=cfg.arch, seed=cfg.seed,
                           subset=len(idx), **info, bn_mode="eval (the final net's running statistics)",
                           directions="filter-normalised Gaussian, zero on BN weights/biases and biases",
                           wall_time_s=round(time.time() - t0, 1))
        (run / "landscape.json").write_text(json.dumps(meta, indent=2) + "\n")
        print(f"[landscape] {run}: {grid}x{grid} + {info['grid_1d']} points on {len(idx)} training images "
              f"({time.time() - t0:.0f}s)", flush=True)
    return runs


def _surface(l2: pd.DataFrame, arch: str, seed: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(alphas, betas, loss grid) of one net; of one seed's run if given (a mean of different nets' surfaces
    would smooth away their features)."""
    d = l2[(l2.arch == arch) & ((l2.seed == seed) if seed is not None else True)]
    p = d.groupby(["beta", "alpha"])["loss"].mean().unstack("alpha")
    return p.columns.to_numpy(float), p.index.to_numpy(float), p.to_numpy(float)


def surface_stats(a: np.ndarray, b: np.ndarray, z: np.ndarray) -> dict:
    """Numbers that describe a 2-D loss surface: the centre loss, the fraction of the plane below chance-level
    loss (ln 10), the count of strict local minima (8 neighbours, interior points) and the fraction of interior
    points with negative discrete Laplacian (locally concave)."""
    ic, jc = int(np.argmin(np.abs(b))), int(np.argmin(np.abs(a)))
    inner = z[1:-1, 1:-1]
    neigh = np.stack([z[1 + di:z.shape[0] - 1 + di, 1 + dj:z.shape[1] - 1 + dj]
                      for di in (-1, 0, 1) for dj in (-1, 0, 1) if (di, dj) != (0, 0)])
    lap = z[2:, 1:-1] + z[:-2, 1:-1] + z[1:-1, 2:] + z[1:-1, :-2] - 4 * inner
    return dict(centre=float(z[ic, jc]), below_chance=float((z < CHANCE_LOSS).mean()),
                local_minima=int((inner < neigh.min(0)).sum()) if inner.size else 0,
                concave=float((lap < 0).mean()) if inner.size else math.nan, max=float(np.nanmax(z)))


def landscape_setting(metas: list[dict]) -> str:
    """One line on how the landscapes were measured (grid, subset, device), from the runs' landscape.json, saying
    so where the grid is coarser than Li et al.'s 51x51."""
    if not metas:
        return "- **Setting:** the runs' landscape.json files are missing, so the grid and subset are unknown."
    key = lambda m: (m.get("grid"), m.get("grid_1d"), m.get("subset"), m.get("span", 1.0), m.get("dir_seed"))
    parts = []
    for k in sorted({key(m) for m in metas}, key=str):
        grid, grid_1d, subset, span, dir_seed = k
        ms = [m for m in metas if key(m) == k]
        archs = ", ".join(sorted(f"{m.get('arch')} seed {m.get('seed', 0)}" for m in ms))
        where = "; ".join(sorted({f"{m.get('device')}, commit `{str(m.get('commit'))[:12]}`" for m in ms}))
        secs = sum(float(m.get("wall_time_s") or 0) for m in ms)
        coarse = (" (**scaled down** from Li et al.'s 51×51 to fit the hardware)" if grid and grid < 51 else "")
        parts.append(f"{archs}: a {grid}×{grid} grid over [−{span:g}, {span:g}]²{coarse} and {grid_1d} points in "
                     f"1-D, on {subset} training images, direction seed {dir_seed}; {where}; {secs / 60:.0f} min")
    return "- **Setting:** " + "; ".join(parts) + "."


def landscape_verdict(b: dict) -> str:
    l1, l2 = b["landscape_1d"], b["landscape_2d"]
    if l1.empty and l2.empty:
        return ("- **Loss landscapes:** not run yet (`make landscape`: needs finished ResNet-56 and plain-56 runs "
                "with checkpoints; the 51×51 paper grid needs a GPU).")
    lines = [landscape_setting(b.get("landscape_meta", []))]
    nets = sorted(set(zip(l1.arch, l1.seed.astype(int))) | set(zip(l2.arch, l2.seed.astype(int))))
    for arch, seed in nets:
        parts = []
        d = l1[(l1.arch == arch) & (l1.seed == seed)].sort_values("alpha")
        if len(d):
            a, loss = d.alpha.to_numpy(float), d.loss.to_numpy(float)
            c = loss[np.argmin(np.abs(a))]
            edge = np.abs(a).max()
            lo, hi = (loss[np.argmin(np.abs(a - sign * 0.5 * edge))] for sign in (-1, 1))
            parts.append(f"1-D: loss {c:.3g} at the trained weights, {lo:.3g} / {hi:.3g} half-way to the two edges "
                         f"(α = ∓{0.5 * edge:g}) and {loss[0]:.3g} / {loss[-1]:.3g} at the two ends")
        if len(l2[(l2.arch == arch) & (l2.seed == seed)]):
            s = surface_stats(*_surface(l2, arch, seed))
            minima = "strict local minimum" if s["local_minima"] == 1 else "strict local minima"
            parts.append(f"2-D: {100 * s['below_chance']:.0f}% of the plane below chance-level loss (ln 10), "
                         f"{s['local_minima']} {minima}, {100 * s['concave']:.0f}% of the interior locally concave")
        lines.append(f"- **{arch}** (seed {seed}): " + "; ".join(parts) + ".")
    surfaces = set(zip(l2.arch, l2.seed.astype(int)))
    for r, p, seed in [(f"resnet{d}", f"plain{d}", s) for d in (20, 56, 110) for s in sorted(set(l2.seed.astype(int)))]:
        if (r, seed) in surfaces and (p, seed) in surfaces:
            sr, sp = surface_stats(*_surface(l2, r, seed)), surface_stats(*_surface(l2, p, seed))
            smoother = sr["below_chance"] > sp["below_chance"] and sr["local_minima"] <= sp["local_minima"]
            lines.append(f"- **{r} vs {p}, seed {seed}:** " + ("the residual net's surface is wider and no rougher, as in Li et "
                                                   "al.'s Fig. 5." if smoother else
                                                   "the residual net's surface is **not** clearly wider and smoother "
                                                   "here (Li et al. find it is)."))
    return "\n".join(lines)


def fig_landscape_1d(l1: pd.DataFrame, preset: str, runs: pd.DataFrame):
    fig, axes = new_figure(1, 2, figsize=(10, 4.2))
    for arch in arch_sort(set(l1.arch)):
        seeds = sorted(set(l1[l1.arch == arch].seed.astype(int)))
        for i, seed in enumerate(seeds):
            d = l1[(l1.arch == arch) & (l1.seed == seed)].set_index("alpha").sort_index()
            label = arch_label(arch) + (f", seed {seed}" if len(seeds) > 1 else "")
            st = {**style(arch), "alpha": 1.0 if i == 0 else 0.55}
            axes[0, 0].plot(d.index, d.loss, label=label, **st)
            axes[0, 1].plot(d.index, d.err * 100, label=label, **st)
    axes[0, 0].set_yscale("log")
    axes[0, 0].set_ylabel("training loss (subset)")
    axes[0, 1].set_ylabel("training error (%, subset)")
    for ax in axes[0]:
        ax.set_xlabel("α (filter-normalised direction)")
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(fontsize=8)
    return annotate(fig, "Loss landscape, 1-D (Li et al. 2018)", preset, runs, [_landscape_note(runs)])


def _landscape_note(runs) -> str:
    return ("filter-normalised random directions (BN and bias entries zero), final weights, inference-mode BN "
            "with the final running statistics, a fixed subset of un-augmented training images")


def fig_landscape_2d(l2: pd.DataFrame, preset: str, runs: pd.DataFrame, kind: str = "contour", clip: float = 10.0):
    """One panel per net: contour lines of the loss (log-spaced levels), or a 3-D surface of min(loss, clip)."""
    archs, seeds = arch_sort(set(l2.arch)), sorted(set(l2.seed.astype(int)))
    kw = dict(subplot_kw=dict(projection="3d")) if kind == "surface" else {}
    fig, axes = new_figure(len(seeds), len(archs), figsize=(5.2 * len(archs), 4.6 * len(seeds) + 0.4), **kw)
    for (row, seed), (col, arch) in itertools.product(enumerate(seeds), enumerate(archs)):
        ax = axes[row, col]
        if not len(l2[(l2.arch == arch) & (l2.seed == seed)]):
            ax.set_axis_off()
            continue
        a, b, z = _surface(l2, arch, seed)
        grid_a, grid_b = np.meshgrid(a, b)
        if kind == "surface":
            ax.plot_surface(grid_a, grid_b, np.minimum(z, clip), cmap="viridis", linewidth=0, antialiased=True)
            ax.set_zlabel("loss")
            ax.set_zlim(0, clip)
        else:
            lo, hi = max(np.nanmin(z), 1e-4), np.nanmax(z)
            levels = np.geomspace(lo, hi, 25) if hi > lo else None
            cs = ax.contour(grid_a, grid_b, z, levels=levels, cmap="viridis", linewidths=0.8)
            ax.clabel(cs, cs.levels[::4], fontsize=6, fmt="%.2g")
            ax.plot([0], [0], marker="*", color="red", markersize=8)
            ax.set_aspect("equal")
        ax.set_title(arch_label(arch) + (f", seed {seed}" if len(seeds) > 1 else ""), fontsize=10)
        ax.set_xlabel("α")
        ax.set_ylabel("β")
        ax.xaxis.set_major_locator(MaxNLocator(4, steps=[1, 2, 5, 10]))  # 9 ticks ("-0.75") collided
        ax.yaxis.set_major_locator(MaxNLocator(4, steps=[1, 2, 5, 10]))
    note = (f"surface clipped at loss {clip:g}" if kind == "surface" else "contour levels log-spaced; star: the "
            "trained weights")
    return annotate(fig, f"Loss landscape, 2-D {'surface' if kind == 'surface' else 'contours'} (Li et al. 2018)",
                    preset, runs, [note, _landscape_note(runs)])


# ----------------------------------------------------------------------------- the study's entry in studies.STUDIES

FAMILY, PAGE = "cifar", "beyond"
TABLES = {"landscape_1d": LANDSCAPE_1D_COLUMNS, "landscape_2d": LANDSCAPE_2D_COLUMNS}
FIGURES = {"landscape_1d": "beyond_landscape_1d", "landscape_contour": "beyond_landscape_2d_contour",
           "landscape_surface": "beyond_landscape_2d_surface"}
CAPTIONS = {  # what each figure shows, under it in the report and the notebook
    "landscape_1d": "Loss landscape along one filter-normalised random direction through the final weights (Li et "
                    "al. 2018): training loss (left, log scale) and error (right) on a fixed subset of training "
                    "images.",
    "landscape_contour": "Loss landscape on a plane of two filter-normalised random directions through the final "
                         "weights: contour lines of the training loss (log-spaced levels), one panel per net.",
    "landscape_surface": "The same plane as a surface of the training loss, clipped from above, one panel per net.",
}


def collect(rs: RunSet) -> dict[str, pd.DataFrame]:
    return {k: run_files(rs, RUN_FILES[k], cols) for k, cols in TABLES.items()}


def load_extra(folder: Path) -> dict:
    return {"landscape_meta": run_jsons(folder, "landscape.json")}


def draw(b: dict, preset: str) -> list[tuple[object, str]]:
    out = []
    if not b["landscape_1d"].empty:
        runs = runs_frame(b, b["landscape_1d"])
        out.append((fig_landscape_1d(b["landscape_1d"], preset, runs), FIGURES["landscape_1d"]))
    if not b["landscape_2d"].empty:
        runs = runs_frame(b, b["landscape_2d"])
        out += [(fig_landscape_2d(b["landscape_2d"], preset, runs, kind), FIGURES[f"landscape_{kind}"])
                for kind in ("contour", "surface")]
    return out


def report_fields(b: dict, preset: str, figures_dir: Path) -> dict[str, str]:
    return dict(landscape=landscape_verdict(b))


NOTEBOOKS = {"05_beyond_the_paper": [
    new_markdown_cell("## 3. Loss landscapes (Li et al. 2018)"),
    new_code_cell("from resnet_repro.studies import landscapes\n"
                  "for key in landscapes.FIGURES:\n    show(landscapes.FIGURES[key])"),
    new_code_cell("display(Markdown(landscapes.landscape_verdict(t)))"),
]}

COMMANDS = ("landscape",)


def add_commands(sub, preset_arg) -> None:
    ls = sub.add_parser("landscape", help="1-D and 2-D loss landscape around final weights (Li et al. 2018) -> "
                                          "<run>/landscape_1d.csv, landscape_2d.csv")
    preset_arg(ls)
    ls.add_argument("--data-dir", default=None)
    ls.add_argument("--archs", default=",".join(LANDSCAPE_ARCHS))
    ls.add_argument("--seed", type=int, default=0, help="which run of each net (default seed 0)")
    ls.add_argument("--grid", type=int, default=51, help="points per axis of the 2-D grid over [-1, 1]^2")
    ls.add_argument("--grid-1d", type=int, default=None, help="points of the 1-D curve (default: --grid)")
    ls.add_argument("--subset", type=int, default=2000, help="training images the loss is evaluated on")
    ls.add_argument("--dir-seed", type=int, default=0, help="seed of the random directions")
    ls.add_argument("--force", action="store_true")


def dispatch(args) -> int:
    archs = [a for a in args.archs.split(",") if a]
    for a in archs:
        parse_arch(a)
    if args.grid < 1 or args.subset < 1:
        raise ValueError("--grid and --subset must be positive")
    landscape_preset(args.preset, archs, args.seed, args.grid, args.grid_1d, args.subset, args.dir_seed,
                     args.results, args.data_dir, args.force)
    return 0
