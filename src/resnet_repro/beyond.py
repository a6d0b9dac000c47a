"""Beyond the paper (issue #8): four mechanisms that explain residual learning, measured on the nets of this
reproduction as steps of the same pipeline (run folders -> collected CSVs -> figures -> notebook -> report).

1. **Gradient flow.** The norm of the gradient of the loss with respect to each block's input and to each
   layer's weights, for plain and residual nets of 20, 56 and 110 layers: at initialisation (averaged over the
   first batches of a run), at the final weights of finished runs, and during training (`--gradflow-every N`).
2. **Identity-mapping variants** (He et al., ECCV 2016, Tables 1 and 2): the block forms of models.VARIANTS,
   trained like any other net (`make identity`: `grid --experiment identity`, experiments.IDENTITY_GRID),
   tabulated here beside the ECCV paper's medians.
3. **Loss landscapes** (Li et al., NeurIPS 2018): the training loss around the final weights along
   filter-normalised random directions, 1-D and 2-D.
4. **Block lesions** (Veit et al., NeurIPS 2016): the test error of a trained net with one block removed.

Definitions and choices (each also stated in the report section):

* Gradient norms are L2 norms of the whole gradient tensor of the batch's *mean* cross-entropy: for a block,
  dL/dx over the batch (B x C x H x W entries); for a layer, dL/dW. `grad_rms` divides by the square root of
  the number of entries. The net is in training mode (batch-statistics BN, as SGD sees it). Offline, each
  quantity is the mean over `n_batches` batches (its std beside it); the batches are the run's first training
  batches (seeded, augmented; data.TrainStream), and "init" weights are those seed k's run starts from.
* A lesioned block returns its shortcut path alone (identity, or option A's subsample + zero-pad), which for the
  post-activation ResNet equals its output with the residual branch set to zero. A plain block can be removed
  only where its input and output shapes match (it becomes the identity). Test errors use the final weights in
  inference mode (BN running statistics kept, not recomputed, as in Veit et al.).
* Landscape directions: one Gaussian direction per parameter tensor, each filter (slice along the first axis: a
  conv's output channel, a linear layer's row) rescaled to the norm of the same filter of the weights; entries
  of 1-D parameters (BN weights and biases, biases) are zero (Li et al.'s "filter" normalisation with
  "biasbn" ignored). The loss is evaluated in inference mode with the final net's BN running statistics (as Li
  et al.'s code, which calls net.eval(); the statistics are not recomputed for the perturbed weights), on a
  fixed seeded subset of un-augmented training images. The 2-D plane uses two independent directions (nearly
  orthogonal in this dimension; their cosine is recorded).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import platform
import string
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import data as D
from .analyze import (
    arrays_for,
    data_key,
    default_device,
    finished_runs,
    inference_batches,
    load_final_model,
    run_config,
    runs_with_checkpoint,
)
from .hooks import (
    GRADFLOW_COLUMNS,
    arch_info,
    blocks,
    filter_normalized_direction,
    gradient_flow,
    label_rows,
    lesioned,
    removable,
)
from .models import ResNet, build_model, parse_arch, variant_label
from .train import CODE_COMMIT, device_name
from .weights import has_final_weights

GRADFLOW_ARCHS = ["plain20", "plain56", "plain110", "resnet20", "resnet56", "resnet110"]
LANDSCAPE_ARCHS = ["resnet56", "plain56"]
LESION_ARCHS = ["resnet56", "resnet110", "plain56", "plain110"]

LESION_COLUMNS = ["arch", "seed", "depth", "residual", "block", "stage", "block_in_stage", "reshape", "removed",
                  "test_loss", "test_err", "delta_err", "n_test"]
LANDSCAPE_1D_COLUMNS = ["arch", "seed", "alpha", "loss", "err"]
LANDSCAPE_2D_COLUMNS = ["arch", "seed", "alpha", "beta", "loss", "err"]
VARIANT_COLUMNS = ["arch", "variant", "label", "n", "median_test_err_pct", "mean_test_err_pct", "min_test_err_pct",
                   "max_test_err_pct", "median_train_err_pct", "paper_median_test_err_pct"]

# Per run folder: the file each step writes; collect_beyond gathers them into results/<preset>/<key>.csv.
RUN_FILES = {"gradflow_final": "gradflow_final.csv", "gradflow_train": "gradflow.csv", "lesion": "lesion.csv",
             "landscape_1d": "landscape_1d.csv", "landscape_2d": "landscape_2d.csv"}
TABLE_COLUMNS = {"gradflow_init": GRADFLOW_COLUMNS, "gradflow_final": GRADFLOW_COLUMNS,
                 "gradflow_train": GRADFLOW_COLUMNS, "lesion": LESION_COLUMNS,
                 "landscape_1d": LANDSCAPE_1D_COLUMNS, "landscape_2d": LANDSCAPE_2D_COLUMNS,
                 "identity_variants": VARIANT_COLUMNS}
CHANCE_LOSS = math.log(10)  # the cross-entropy of a uniform guess over 10 classes

FIGURE_NAMES = {"gradflow_init": "beyond_gradflow_init", "gradflow_final": "beyond_gradflow_final",
                "gradflow_train": "beyond_gradflow_training", "identity_variants": "beyond_identity_variants",
                "landscape_1d": "beyond_landscape_1d", "landscape_contour": "beyond_landscape_2d_contour",
                "landscape_surface": "beyond_landscape_2d_surface", "lesion": "beyond_lesion"}


# ============================================================================= 1. gradient flow


def _cifar_setup(cfg, arrays: D.CifarArrays, device: torch.device):
    """The run's data as training saw it: (train stream, test batches, train x/y on the device, mean image)."""
    dm = D.CIFARDataModule(dataclasses.replace(cfg, channels_last=False), arrays)
    dm.setup()
    tx, ty, mean = dm.train_x.to(device), dm.train_y.to(device), dm.mean.to(device)
    stream = D.TrainStream(tx, ty, mean, cfg.batch_size, cfg.seed, cfg.eval_every)
    test = inference_batches(dm.test_x.to(device), dm.test_y.to(device), mean, device)
    return stream, test, tx, ty, mean


def first_batches(stream: D.TrainStream, n: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The first n training batches of seed `seed`'s run (the same images and augmentation as its first session)."""
    gen = torch.Generator(device=stream.x.device).manual_seed(D._seed(seed, 0, 0, 0xA06))
    return [stream.batch(i, gen) for i in range(n)]


def _provenance(device: torch.device, arrays: D.CifarArrays, **extra) -> dict:
    return dict(**extra, commit=CODE_COMMIT, device=device_name(device), torch=torch.__version__,
                python=platform.python_version(), threads=torch.get_num_threads(), data_source=arrays.source,
                data_path=str(Path(arrays.path).resolve()), created_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))


def gradflow_init(preset: str = "paper", archs=GRADFLOW_ARCHS, seed: int = 0, n_batches: int = 8,
                  data_dir: str | None = None, dest: str | Path | None = None, results: str | Path = "results",
                  arrays: D.CifarArrays | None = None) -> pd.DataFrame:
    """Gradient norms at initialisation for each arch (the initial weights of seed `seed`'s run), averaged over the
    run's first `n_batches` training batches; writes <dest>/gradflow_init.csv and gradflow_init.json (provenance).
    dest defaults to results/<preset>."""
    from .config import make_config

    cfg = make_config(preset, data_dir=data_dir, seed=seed)
    if cfg.dataset != "cifar10":
        raise ValueError(f"gradflow runs on the CIFAR presets, not {preset!r}")
    device = default_device()
    arrays = arrays or D.load_cifar10(cfg.data_dir)
    stream, *_ = _cifar_setup(cfg, arrays, device)
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
    dest = Path(dest) if dest is not None else Path(results) / preset
    dest.mkdir(parents=True, exist_ok=True)
    out.to_csv(dest / "gradflow_init.csv", index=False)
    meta = _provenance(device, arrays, what="gradient norms at initialisation (beyond.gradflow_init)",
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
        stream, *_ = _cifar_setup(cfg, a, device)
        model = load_final_model(run, device)
        df = label_rows(gradient_flow(model, first_batches(stream, n_batches, cfg.seed)), cfg.arch, cfg.seed,
                         "final", cfg.max_steps)
        df.to_csv(run / RUN_FILES["gradflow_final"], index=False)
        print(f"[gradflow] wrote {run / RUN_FILES['gradflow_final']}", flush=True)
    return runs


# ============================================================================= 4. block lesions (here: used by 3)


@torch.no_grad()
def evaluate(model: nn.Module, batches) -> tuple[float, float, int]:
    """(mean cross-entropy, error, n) over `batches` of (x, y), in inference mode."""
    model.eval()
    loss, err, n = 0.0, 0.0, 0
    for x, y in batches:
        out = model(x)
        loss += float(F.cross_entropy(out.float(), y, reduction="sum"))
        err += float((out.argmax(1) != y).sum())
        n += len(y)
    return loss / n, err / n, n


def lesion_table(model: ResNet, batches) -> pd.DataFrame:
    """Test loss and error with each block removed in turn (block 0: nothing removed). Plain blocks that change
    the shape are listed with removed=False and no error."""
    base_loss, base_err, n = evaluate(model, batches)
    rows = [dict(block=0, stage=0, block_in_stage=0, reshape=False, removed=False, test_loss=base_loss,
                 test_err=base_err, n_test=n)]
    for k, s, b, blk in blocks(model):
        row = dict(block=k, stage=s, block_in_stage=b, reshape=blk.reshape, removed=removable(blk),
                   test_loss=math.nan, test_err=math.nan, n_test=n)
        if row["removed"]:
            with lesioned(model, k):
                row["test_loss"], row["test_err"], _ = evaluate(model, batches)
        rows.append(row)
    df = pd.DataFrame(rows)
    df["delta_err"] = df["test_err"] - base_err
    return df


def lesion_preset(preset: str, results: str | Path = "results", data_dir: str | None = None, archs=None,
                  force: bool = False, seeds=None) -> list[Path]:
    """<run>/lesion.csv for every finished CIFAR run with a checkpoint (the run's test set, final weights)."""
    runs = runs_with_checkpoint(preset, results, archs, "lesion",
                                done=lambda r: not force and (r / RUN_FILES["lesion"]).is_file(), seeds=seeds)
    arrays, device = arrays_for(runs, data_dir), default_device()
    for run in runs:
        cfg = run_config(run)
        a = arrays[data_key(run, data_dir)]
        _, test, *_ = _cifar_setup(cfg, a, device)
        t0 = time.time()
        df = lesion_table(load_final_model(run, device), test)
        for k, v in {**arch_info(cfg.arch), "seed": cfg.seed}.items():
            df[k] = v
        df.reindex(columns=LESION_COLUMNS).to_csv(run / RUN_FILES["lesion"], index=False)
        meta = _provenance(device, a, what="block lesions (beyond.lesion_table)", arch=cfg.arch, seed=cfg.seed,
                           wall_time_s=round(time.time() - t0, 1))
        (run / "lesion.json").write_text(json.dumps(meta, indent=2) + "\n")
        d = df[df.block > 0].delta_err
        print(f"[lesion] {run}: {int(df.removed.sum())} blocks removed one at a time, mean error increase "
              f"{100 * d.mean():.2f} points ({time.time() - t0:.0f}s)", flush=True)
    return runs


# ============================================================================= 3. loss landscapes


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
        run = Path(results) / preset / "runs" / arch / f"seed{seed}"
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
        _, _, tx, ty, mean = _cifar_setup(cfg, a, device)
        idx = torch.from_numpy(D.subset_indices(len(tx), subset, cfg.split_seed)).to(device)
        batches = inference_batches(tx[idx], ty[idx], mean, device)
        t0 = time.time()
        one, two, info = landscape(load_final_model(run, device), batches, grid, grid_1d, dir_seed)
        for df, cols, name in ((one, LANDSCAPE_1D_COLUMNS, "landscape_1d"), (two, LANDSCAPE_2D_COLUMNS, "landscape_2d")):
            df["arch"], df["seed"] = cfg.arch, cfg.seed
            df[cols].to_csv(run / RUN_FILES[name], index=False)
        meta = _provenance(device, a, what="loss landscape (beyond.landscape)", arch=cfg.arch, seed=cfg.seed,
                           subset=len(idx), **info, bn_mode="eval (the final net's running statistics)",
                           directions="filter-normalised Gaussian, zero on BN weights/biases and biases",
                           wall_time_s=round(time.time() - t0, 1))
        (run / "landscape.json").write_text(json.dumps(meta, indent=2) + "\n")
        print(f"[landscape] {run}: {grid}x{grid} + {info['grid_1d']} points on {len(idx)} training images "
              f"({time.time() - t0:.0f}s)", flush=True)
    return runs


# ============================================================================= collect


def collect_beyond(preset: str, results: str | Path = "results") -> dict[str, pd.DataFrame]:
    """Gather the run folders' files into results/<preset>/{gradflow_final,gradflow_train,lesion,landscape_1d,
    landscape_2d,identity_variants}.csv (only the non-empty ones are written)."""
    out = Path(results) / preset
    # Finished runs only: a run still training has a partial gradflow.csv that would read as the whole record.
    run_dirs = finished_runs(preset, results)
    tables = {}
    for key, fname in RUN_FILES.items():
        frames = [pd.read_csv(r / fname) for r in run_dirs if (r / fname).is_file() and (r / fname).stat().st_size]
        tables[key] = (pd.concat(frames, ignore_index=True).reindex(columns=TABLE_COLUMNS[key]) if frames
                       else pd.DataFrame(columns=TABLE_COLUMNS[key]))
    finals = [json.loads((r / "final.json").read_text()) for r in run_dirs]
    tables["identity_variants"] = variants_table(finals)
    for key, df in tables.items():
        if not df.empty:
            df.to_csv(out / f"{key}.csv", index=False)
    written = [k for k, df in tables.items() if not df.empty]
    print(f"[beyond] {out}: wrote {', '.join(k + '.csv' for k in written) or 'nothing (no data yet)'}", flush=True)
    return tables


def variants_table(finals: list[dict]) -> pd.DataFrame:
    """One row per ECCV 2016 variant of ResNet-110 that has finished runs: test error median/mean/min/max (%),
    beside the ECCV paper's median of 5 runs (NaN where the paper's net failed to train)."""
    from .experiments import IDENTITY_VARIANTS, PAPER_ECCV_MEDIANS

    rows = []
    for arch in IDENTITY_VARIANTS:
        f = [r for r in finals if r.get("arch") == arch and r.get("final_test_err") is not None]
        if not f:
            continue
        e = np.asarray([r["final_test_err"] for r in f], float) * 100
        t = np.asarray([r.get("final_train_err") or math.nan for r in f], float) * 100
        v = parse_arch(arch).variant
        paper = PAPER_ECCV_MEDIANS.get(arch)
        rows.append(dict(arch=arch, variant=v, label=variant_label(v), n=len(e), median_test_err_pct=np.median(e),
                         mean_test_err_pct=e.mean(), min_test_err_pct=e.min(), max_test_err_pct=e.max(),
                         median_train_err_pct=np.nanmedian(t) if np.isfinite(t).any() else math.nan,
                         paper_median_test_err_pct=math.nan if paper is None else paper))
    return pd.DataFrame(rows, columns=VARIANT_COLUMNS)


def load_beyond(preset: str, results: str | Path = "results") -> dict:
    """Every table of issue 8 for a preset (empty frames where missing), the gradflow_init provenance ("init_meta",
    {} if none) and the finished runs' final.json contents as a frame ("runs")."""
    d = Path(results) / preset
    out: dict = {}
    for key, cols in TABLE_COLUMNS.items():
        f = d / f"{key}.csv"
        out[key] = pd.read_csv(f) if f.is_file() and f.stat().st_size else pd.DataFrame(columns=cols)
    meta = d / "gradflow_init.json"
    out["init_meta"] = json.loads(meta.read_text()) if meta.is_file() else {}
    finals = [json.loads(p.read_text()) for p in sorted(d.glob("runs/*/seed*/final.json"))]
    out["runs"] = pd.DataFrame(finals)
    out["landscape_meta"] = [json.loads(p.read_text()) for p in sorted(d.glob("runs/*/seed*/landscape.json"))]
    out["lesion_meta"] = [json.loads(p.read_text()) for p in sorted(d.glob("runs/*/seed*/lesion.json"))]
    return out


# ============================================================================= verdicts (report and notebook)


def _fmt(x: float) -> str:
    if not np.isfinite(x):
        return "n/a"
    return f"{x:.3g}" if 1e-3 <= abs(x) < 1e4 else f"{x:.2e}"


def _block_profile(gf: pd.DataFrame, arch: str) -> np.ndarray:
    d = gf[(gf.arch == arch) & (gf.kind == "block_input")]
    return d.groupby("index")["grad_norm"].mean().sort_index().to_numpy(float) if len(d) else np.array([])


def _spread_text(q: float) -> str:
    """How much more the plain net's gradient varies across its blocks than the ResNet's (q: ratio of spreads)."""
    if q >= 10:
        return f"The plain net's gradient varies {_fmt(q)}× more across depth: far more than the ResNet's."
    if q >= 2:
        return f"The plain net's gradient varies {_fmt(q)}× more across depth than the ResNet's."
    return "The two nets' gradients vary by a similar factor across depth."


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
                f"{_fmt(p[0] / p[-1])}× that at the last block in plain-{d} and {_fmt(r[0] / r[-1])}× in "
                f"ResNet-{d}; across all {len(p)} blocks it spans a factor of {_fmt(p.max() / p.min())} (plain) "
                f"against {_fmt(r.max() / r.min())} (ResNet). "
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
    from .figures import arch_label

    lines, last = [], {}
    for arch in _arch_sort(set(gf.arch)):
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
                     + ", ".join(f"{_fmt(ratio[it])}× at iteration {it:,}" for it in picks)
                     + " that of the last block.")
        last[arch] = (ratio[its[0]], ratio[its[-1]])
    for depth in (20, 56, 110):
        p, r = last.get(f"plain{depth}"), last.get(f"resnet{depth}")
        if p and r:
            lines.append(f"- **{depth} layers, during training:** from the first to the last recorded iteration the "
                         f"first/last ratio goes from {_fmt(p[0])} to {_fmt(p[1])} in plain-{depth} and from "
                         f"{_fmt(r[0])} to {_fmt(r[1])} in ResNet-{depth}"
                         + (": training itself evens out the plain net's gradient across depth (the paper, Sec. "
                            "4.1, likewise finds healthy backward norms with BN and argues that the degradation is "
                            "not caused by vanishing gradients)." if p[1] < 4 * r[1] else
                            ": the plain net's gradient stays far more uneven across depth."))
    if lines:
        lines.append("- Training-time points are single batches, so they are noisier than the 8-batch means above "
                     "(figure `beyond_gradflow_training`).")
    return lines


def variants_verdict(b: dict) -> str:
    from .experiments import IDENTITY_VARIANTS, PAPER_ECCV_MEDIANS

    t = b["identity_variants"]
    if t.empty or not (t.arch != "resnet110").any():
        return ("- **Identity-mapping variants:** not run yet. They are trained like any net "
                "(`make identity PRESET=paper`, the grid `experiments.IDENTITY_GRID`: 10 nets × 5 seeds; one net is "
                "`python -m resnet_repro train --arch resnet110-preact --seed 0 --preset paper`); paper scale needs "
                "a GPU.")
    t = t.set_index("arch")
    orig = t.loc["resnet110", "median_test_err_pct"] if "resnet110" in t.index else math.nan
    lines, agree, n = [], 0, 0
    for arch in IDENTITY_VARIANTS:
        if arch not in t.index or arch == "resnet110":
            continue
        r, paper = t.loc[arch], PAPER_ECCV_MEDIANS.get(arch)
        ours = r["median_test_err_pct"]
        paper_txt = "fails to train (paper)" if paper is None else f"paper {paper:.2f}%"
        diff = ""
        if np.isfinite(orig):
            diff = f", {ours - orig:+.2f} points against our original"
            ref = 20.0 if paper is None else paper  # "fail": above 20 % in the ECCV paper
            n += 1
            agree += (ours > orig) == (ref > PAPER_ECCV_MEDIANS["resnet110"])
        lines.append(f"- **{r['label']}:** median {ours:.2f}% over {int(r['n'])} run(s) ({paper_txt}){diff}.")
    if n:
        lines.append(f"- **Agreement with the ECCV paper:** {agree} of {n} variants fall on the same side of the "
                     f"original block as in the paper (better or worse).")
    return "\n".join(lines)


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
            half = loss[np.argmin(np.abs(np.abs(a) - 0.5 * np.abs(a).max()))]
            parts.append(f"1-D: loss {c:.3g} at the trained weights, {half:.3g} half-way to the edge and {loss[0]:.3g} / "
                         f"{loss[-1]:.3g} at the two ends")
        if len(l2[(l2.arch == arch) & (l2.seed == seed)]):
            s = surface_stats(*_surface(l2, arch, seed))
            parts.append(f"2-D: {100 * s['below_chance']:.0f}% of the plane below chance-level loss (ln 10), "
                         f"{s['local_minima']} strict local minima, {100 * s['concave']:.0f}% of the interior "
                         f"locally concave")
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


def lesion_setting(t: pd.DataFrame, metas: list[dict]) -> str:
    """One line on how the lesions were measured: test images per net, and device/commit from the runs'
    lesion.json (naming the nets whose lesion.csv predates that file)."""
    n = sorted({int(x) for x in t.n_test.dropna()})
    key = lambda m: (str(m.get("device")), str(m.get("commit"))[:12])
    groups = {k: sorted(f"{m.get('arch')} seed {m.get('seed')}" for m in metas if key(m) == k)
              for k in {key(m) for m in metas}}
    where = "; ".join(f"{', '.join(g)}: {k[0]}, commit `{k[1]}`" for k, g in sorted(groups.items()))
    have = {(str(m.get("arch")), int(m.get("seed", -1))) for m in metas}
    missing = sorted({f"{a} seed {int(s)}" for a, s in zip(t.arch, t.seed) if (str(a), int(s)) not in have})
    parts = [f"each net's final weights on {' or '.join(f'{x:,}' for x in n)} test images of its own data"]
    if where:
        parts.append(where)
    if missing:
        parts.append(f"{', '.join(missing)}: no lesion.json (measured before the code recorded one)")
    return "- **Setting:** " + "; ".join(parts) + "."


def lesion_verdict(b: dict) -> str:
    t = b["lesion"]
    if t.empty:
        return ("- **Block lesions:** not run yet (`make lesion`: needs finished runs with checkpoints, e.g. "
                "ResNet-56/110 and plain-56/110).")
    lines, by_depth = [lesion_setting(t, b.get("lesion_meta", []))], {}
    for arch in sorted(set(t.arch), key=lambda a: (a.startswith("plain"), parse_arch(a).depth)):
        d = t[t.arch == arch]
        seeds = sorted(int(s) for s in set(d.seed))
        over = f"(mean over seeds {', '.join(map(str, seeds))})" if len(seeds) > 1 else f"(seed {seeds[0]})"
        base = d[d.block == 0].test_err.mean()
        rem = d[(d.block > 0) & d.removed.astype(bool)]
        same, down = rem[~rem["reshape"].astype(bool)], rem[rem["reshape"].astype(bool)]
        g = same.groupby("block").delta_err.mean()
        worst = f"; the worst single removal (block {int(g.idxmax())}) adds {100 * g.max():.2f} points" if len(g) else ""
        down_txt = (f"; removing a downsampling block adds {100 * down.delta_err.mean():.2f} points on average"
                    if len(down) else "")
        small = f"; {int((g < 0.01).sum())} of {len(g)} cost less than 1 point" if len(g) else ""
        lines.append(f"- **{arch}** {over}: test error {100 * base:.2f}% intact; removing one block whose shapes match adds "
                     f"{100 * same.delta_err.mean():.2f} points on average ({len(g)} blocks){worst}{small}{down_txt}.")
        net = parse_arch(arch)
        if net.residual and len(g):
            by_depth[net.depth] = same.delta_err.mean()  # the per-net average stated above
    if len(by_depth) > 1:
        depths = sorted(by_depth)
        falls = all(by_depth[a] > by_depth[b] for a, b in zip(depths, depths[1:]))
        lines.append("- **ResNets by depth:** one removed block whose shapes match costs "
                     + ", ".join(f"{100 * by_depth[k]:.2f} (ResNet-{k})" for k in depths) + " points on average"
                     + (": the deeper the net, the less any single block matters, as Veit et al. find for "
                        "ResNet-110 (many blocks contribute little on their own)." if falls else
                        ": not monotone in depth."))
    for d in (56, 110):
        r, p = t[(t.arch == f"resnet{d}") & (t.block > 0)], t[(t.arch == f"plain{d}") & (t.block > 0)]
        r, p = r[r.removed.astype(bool) & ~r["reshape"].astype(bool)], p[p.removed.astype(bool)]
        if len(r) and len(p):
            ensemble = r.delta_err.mean() < 0.25 * p.delta_err.mean()
            lines.append(f"- **ResNet-{d} vs plain-{d}:** one removed block costs {100 * r.delta_err.mean():.2f} "
                         f"against {100 * p.delta_err.mean():.2f} points: "
                         + ("the residual net degrades gracefully, as Veit et al. report (it behaves like an "
                            "ensemble of shallower paths)." if ensemble else
                            "the residual net is **not** clearly more robust here."))
    return "\n".join(lines)


# ============================================================================= figures


def _runs_frame(b: dict) -> pd.DataFrame:
    """The finished runs' final.json contents (for figures.data_label), or an empty frame."""
    return b["runs"] if not b["runs"].empty and "data_source" in b["runs"] else pd.DataFrame(columns=["data_source"])


def _init_labels(preset: str, meta: dict) -> tuple[str, str, pd.DataFrame]:
    p = meta.get("preset", preset)
    scale = (f"at initialisation (no training): the initial weights of seed {meta.get('seed', 0)}'s run, "
             f"{meta.get('n_batches', '?')} batches of {meta.get('batch_size', '?')} augmented training images "
             f"(data settings of the {p} preset)")
    return p, scale, pd.DataFrame({"data_source": [meta.get("data_source", "unknown")]})


def _style(arch: str) -> dict:
    from .figures import arch_color

    return dict(color=arch_color(arch), linestyle="--" if arch.startswith("plain") else "-", linewidth=1.4)


def _arch_sort(archs) -> list[str]:
    return sorted(archs, key=lambda a: (a.startswith("plain"), parse_arch(a).depth, a))


def fig_gradflow(gf: pd.DataFrame, preset: str, runs: pd.DataFrame, title: str, scale: str | None = None):
    """Block-input gradient norm vs block index (left) and weight-gradient norm vs layer index (right), log y;
    plain dashed, ResNets solid, one colour per depth (mean over seeds)."""
    from .figures import annotate, arch_label, new_figure

    fig, axes = new_figure(1, 2, figsize=(11, 4.4))
    for ax, kind, xlabel, ylabel in ((axes[0, 0], "block_input", "block index (input side first)",
                                      "‖∂L/∂x‖ at the block input"),
                                     (axes[0, 1], "weight", "layer index (stem 1, ..., fc)", "‖∂L/∂W‖")):
        for arch in _arch_sort(set(gf.arch)):
            d = gf[(gf.arch == arch) & (gf.kind == kind)]
            if kind == "weight":
                d = d[d.role.isin(["stem", "conv1", "conv2", "fc"])]
            g = d.groupby("index")["grad_norm"].mean().sort_index()
            if len(g):
                ax.plot(g.index, g.to_numpy(float), label=arch_label(arch), marker="." if len(g) <= 60 else None,
                        markersize=3, **_style(arch))
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.25)
        if ax.lines:
            ax.legend(fontsize=7, loc="best")
    notes = ["L2 norms of the gradient of the batch-mean cross-entropy, training-mode BN; mean over batches "
             "(and seeds); plain nets dashed, ResNets solid"]
    return annotate(fig, title, preset, runs, notes, scale=scale)


def fig_gradflow_training(gf: pd.DataFrame, preset: str, runs: pd.DataFrame):
    """Block-input gradient norm vs block index, one line per recorded iteration; a row per kind (plain, ResNet)
    and a column per depth, so each plain net sits above the ResNet of its depth."""
    from matplotlib import colormaps

    from .figures import annotate, arch_label, new_figure

    archs = _arch_sort(set(gf.arch))
    kinds = [k for k in ("plain", "resnet") if any(a.startswith(k) for a in archs)]
    depths = sorted({parse_arch(a).depth for a in archs})
    fig, axes = new_figure(len(kinds), len(depths), figsize=(4.2 * len(depths), 3.6 * len(kinds) + 0.6))
    cmap = colormaps["viridis"]
    for row, kind in enumerate(kinds):
        for col, depth in enumerate(depths):
            ax, cell = axes[row, col], [a for a in archs if a.startswith(kind) and parse_arch(a).depth == depth]
            if not cell:
                ax.set_axis_off()
                continue
            d = gf[gf.arch.isin(cell) & (gf.kind == "block_input")]
            its = sorted(set(d.iteration))
            for i, it in enumerate(its):
                g = d[d.iteration == it].groupby("index")["grad_norm"].mean().sort_index()
                ax.plot(g.index, g.to_numpy(float), color=cmap(i / max(1, len(its) - 1)), linewidth=1,
                        label=f"iter. {int(it):,}" if i in (0, len(its) - 1) or len(its) <= 6 else None)
            ax.set_yscale("log")
            ax.set_title(", ".join(arch_label(a) for a in cell), fontsize=10)
            ax.set_xlabel("block index")
            ax.set_ylabel("‖∂L/∂x‖ at the block input")
            ax.grid(True, which="both", alpha=0.25)
            ax.legend(fontsize=7)
    return annotate(fig, "Gradient flow during training", preset, runs,
                    ["one training batch per recorded iteration; colour: iteration (dark = early)"])


def fig_lesion(t: pd.DataFrame, preset: str, runs: pd.DataFrame):
    """Test error with one block removed vs the block's index; intact error as a dotted line."""
    from .figures import annotate, arch_label, new_figure

    fig, axes = new_figure(1, 1, figsize=(8, 4.6))
    ax = axes[0, 0]
    for arch in _arch_sort(set(t.arch)):
        d = t[t.arch == arch]
        base = d[d.block == 0].test_err.mean() * 100
        g = d[(d.block > 0) & d.removed.astype(bool)].groupby("block").agg(err=("test_err", "mean"),
                                                                           reshape=("reshape", "first"))
        st = _style(arch)
        ax.plot(g.index, g.err * 100, marker="o", markersize=3, label=f"{arch_label(arch)} (intact {base:.1f}%)", **st)
        ds = g[g["reshape"].astype(bool)]
        if len(ds):
            ax.plot(ds.index, ds.err * 100, linestyle="none", marker="x", markersize=8, color=st["color"])
        ax.axhline(base, color=st["color"], linestyle=":", linewidth=1)
    ax.axhline(90, color="#888888", linestyle="-.", linewidth=0.8, label="chance (90%)")
    ax.set_xlabel("block removed (index, input side first)")
    ax.set_ylabel("test error (%)")
    ax.set_ylim(0, 100)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="center right")
    notes = ["one block removed at a time, its shortcut kept (Veit et al. 2016); x: downsampling blocks; plain "
             "blocks that change the shape cannot be removed; final weights, inference-mode BN"]
    return annotate(fig, "Block lesions: test error with one block removed", preset, runs, notes)


def fig_landscape_1d(l1: pd.DataFrame, preset: str, runs: pd.DataFrame):
    from .figures import annotate, arch_label, new_figure

    fig, axes = new_figure(1, 2, figsize=(10, 4.2))
    for arch in _arch_sort(set(l1.arch)):
        seeds = sorted(set(l1[l1.arch == arch].seed.astype(int)))
        for i, seed in enumerate(seeds):
            d = l1[(l1.arch == arch) & (l1.seed == seed)].set_index("alpha").sort_index()
            label = arch_label(arch) + (f", seed {seed}" if len(seeds) > 1 else "")
            style = {**_style(arch), "alpha": 1.0 if i == 0 else 0.55}
            axes[0, 0].plot(d.index, d.loss, label=label, **style)
            axes[0, 1].plot(d.index, d.err * 100, label=label, **style)
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
    from .figures import annotate, arch_label, new_figure

    archs, seeds = _arch_sort(set(l2.arch)), sorted(set(l2.seed.astype(int)))
    kw = dict(subplot_kw=dict(projection="3d")) if kind == "surface" else {}
    fig, axes = new_figure(len(seeds), len(archs), figsize=(5.2 * len(archs), 4.6 * len(seeds) + 0.4), **kw)
    for (row, seed), (col, arch) in itertools.product(enumerate(seeds), enumerate(archs)):
        ax = axes[row, col]
        if not len(l2[(l2.arch == arch) & (l2.seed == seed)]):
            ax.set_axis_off()
            continue
        a, b, z = _surface(l2, arch, seed)
        A, B = np.meshgrid(a, b)
        if kind == "surface":
            ax.plot_surface(A, B, np.minimum(z, clip), cmap="viridis", linewidth=0, antialiased=True)
            ax.set_zlabel("loss")
            ax.set_zlim(0, clip)
        else:
            lo, hi = max(np.nanmin(z), 1e-4), np.nanmax(z)
            levels = np.geomspace(lo, hi, 25) if hi > lo else None
            cs = ax.contour(A, B, z, levels=levels, cmap="viridis", linewidths=0.8)
            ax.clabel(cs, cs.levels[::4], fontsize=6, fmt="%.2g")
            ax.plot([0], [0], marker="*", color="red", markersize=8)
            ax.set_aspect("equal")
        ax.set_title(arch_label(arch) + (f", seed {seed}" if len(seeds) > 1 else ""), fontsize=10)
        ax.set_xlabel("α")
        ax.set_ylabel("β")
    note = (f"surface clipped at loss {clip:g}" if kind == "surface" else "contour levels log-spaced; star: the "
            "trained weights")
    return annotate(fig, f"Loss landscape, 2-D {'surface' if kind == 'surface' else 'contours'} (Li et al. 2018)",
                    preset, runs, [note, _landscape_note(runs)])


def fig_variants(t: pd.DataFrame, preset: str, runs: pd.DataFrame):
    from .figures import annotate, new_figure

    fig, axes = new_figure(1, 1, figsize=(8, 4.6))
    ax = axes[0, 0]
    y = np.arange(len(t))
    ax.barh(y, t.median_test_err_pct, color="#1f3a93", alpha=0.8, label="ours: median test error")
    ax.scatter(t.min_test_err_pct, y, marker="|", color="k", s=60, label="ours: min / max")
    ax.scatter(t.max_test_err_pct, y, marker="|", color="k", s=60)
    paper = t.paper_median_test_err_pct.to_numpy(float)
    ax.scatter(np.where(np.isfinite(paper), paper, np.nan), y, marker="D", color="#d62728", zorder=3,
               label="ECCV 2016: median of 5")
    ax.set_yticks(y, [f"{lab} (n={n})" for lab, n in zip(t.label, t.n)], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("test error (%)")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return annotate(fig, "ResNet-110 block variants (He et al., ECCV 2016, Tables 1 and 2)", preset, runs,
                    ["final-iterate test error; the paper's dropout-shortcut net fails to train (no marker)"])


def make_beyond_figures(preset: str, results: str | Path = "results", figures: str | Path = "figures",
                        b: dict | None = None) -> list[Path]:
    """Every issue-8 figure whose data exist, PNG and PDF, into figures/<preset>/ (plus identity_variants.md)."""
    from .figures import save_figure

    b = b or load_beyond(preset, results)
    out = Path(figures) / preset
    runs = _runs_frame(b)
    paths: list[Path] = []
    if not b["gradflow_init"].empty:
        p, scale, r = _init_labels(preset, b["init_meta"])
        paths += save_figure(fig_gradflow(b["gradflow_init"], p, r, "Gradient flow at initialisation: plain vs "
                                          "ResNet", scale=scale), out, FIGURE_NAMES["gradflow_init"])
    if not b["gradflow_final"].empty:
        paths += save_figure(fig_gradflow(b["gradflow_final"], preset, runs, "Gradient flow at the final weights"),
                             out, FIGURE_NAMES["gradflow_final"])
    if not b["gradflow_train"].empty:
        paths += save_figure(fig_gradflow_training(b["gradflow_train"], preset, runs), out,
                             FIGURE_NAMES["gradflow_train"])
    if not b["lesion"].empty:
        paths += save_figure(fig_lesion(b["lesion"], preset, runs), out, FIGURE_NAMES["lesion"])
    if not b["landscape_1d"].empty:
        paths += save_figure(fig_landscape_1d(b["landscape_1d"], preset, runs), out, FIGURE_NAMES["landscape_1d"])
    if not b["landscape_2d"].empty:
        for kind in ("contour", "surface"):
            paths += save_figure(fig_landscape_2d(b["landscape_2d"], preset, runs, kind), out,
                                 FIGURE_NAMES[f"landscape_{kind}"])
    if not b["identity_variants"].empty:
        paths += save_figure(fig_variants(b["identity_variants"], preset, runs), out,
                             FIGURE_NAMES["identity_variants"])
        out.mkdir(parents=True, exist_ok=True)
        (out / "identity_variants.md").write_text(variants_markdown(b["identity_variants"]), encoding="utf-8")
        paths.append(out / "identity_variants.md")
    print(f"[beyond] {out}: {len(paths)} files", flush=True)
    return paths


def variants_markdown(t: pd.DataFrame) -> str:
    from .experiments import IDENTITY_VARIANTS, PAPER_ECCV_MEDIANS

    rows = ["| block form | ours: median (n) | ours: min–max | ECCV 2016: median of 5 |", "|---|---:|---:|---:|"]
    have = set(t.arch)
    for arch in IDENTITY_VARIANTS:
        paper = PAPER_ECCV_MEDIANS.get(arch)
        ptxt = "fail" if paper is None else f"{paper:.2f}"
        if arch in have:
            r = t[t.arch == arch].iloc[0]
            rows.append(f"| {r['label']} | {r['median_test_err_pct']:.2f} ({int(r['n'])}) | "
                        f"{r['min_test_err_pct']:.2f}–{r['max_test_err_pct']:.2f} | {ptxt} |")
        else:
            rows.append(f"| {variant_label(parse_arch(arch).variant)} | not run | — | {ptxt} |")
    return "\n".join(rows) + "\n\nTest error (%) of ResNet-110 on CIFAR-10, final iterate. \"fail\": the ECCV paper's " \
                             "net did not train (error above 20%).\n"


# ============================================================================= report


TEMPLATE = Path(__file__).resolve().parents[2] / "report" / "template_beyond.md"


def build_beyond_report(preset: str, results: str | Path = "results", figures: str | Path = "figures",
                        report: str | Path = "report", b: dict | None = None) -> Path:
    """report/<preset>/beyond.md (and beyond.html) from report/template_beyond.md and the collected tables."""
    from . import report as R
    from . import wording as W

    b = b or load_beyond(preset, results)
    out_dir = Path(report) / preset
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = b["init_meta"]
    runs = b["runs"] if not b["runs"].empty and "data_source" in b["runs"] else pd.DataFrame()
    data = W.data_text(runs) if not runs.empty else (
        W.data_text(pd.DataFrame({"data_source": [meta["data_source"]]})) if meta else "no measurements yet")
    fdir = Path(figures) / preset
    figs = [p for p in sorted(fdir.glob("beyond_*.png"))] if fdir.is_dir() else []
    rel = Path(R.relpath(fdir, out_dir)) if figs else Path(".")
    fig_md = "\n\n".join(f"![{p.stem}]({(rel / p.name).as_posix()})\n\n*{p.stem.replace('_', ' ')}* "
                         f"([PDF]({(rel / p.with_suffix('.pdf').name).as_posix()}))" for p in figs) \
        or "_No figures yet (`python -m resnet_repro beyond --preset ...`)._"
    vt = fdir / "identity_variants.md"
    init_txt = ""
    if meta:
        init_txt = (f"Initialisation measurement: `{meta.get('preset')}` preset's data, seed {meta.get('seed')}, "
                    f"{meta.get('n_batches')} batches of {meta.get('batch_size')}, {meta.get('device')}, commit "
                    f"`{str(meta.get('commit'))[:12]}`, torch {meta.get('torch')}, {meta.get('created_at')}.")
    scale = W.scale_text(preset)
    if runs.empty and meta:  # a folder of its own for the measurement at initialisation (no training)
        scale = (f"measurements at initialisation only (no training), with the data settings of the "
                 f"`{meta.get('preset')}` preset")
    fields = dict(preset=preset, scale=scale, data=data, gradflow=gradflow_verdict(b),
                  gradflow_provenance=init_txt, variants=variants_verdict(b),
                  variants_table=vt.read_text() if vt.is_file() else variants_markdown(
                      pd.DataFrame(columns=VARIANT_COLUMNS)),
                  landscape=landscape_verdict(b), lesion=lesion_verdict(b), figures=fig_md)
    md = string.Template(TEMPLATE.read_text()).substitute(fields)
    (out_dir / "beyond.md").write_text(md)
    (out_dir / "beyond.html").write_text(R.to_html(md, out_dir, f"Beyond the paper: {preset}"))
    print(f"[report] wrote {out_dir / 'beyond.md'} and beyond.html", flush=True)
    return out_dir / "beyond.md"


# ============================================================================= command line

COMMANDS = ("gradflow", "lesion", "landscape", "beyond")


def add_commands(sub, preset_arg) -> None:
    """The issue-8 subcommands of `python -m resnet_repro` (cli.py calls this)."""
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

    les = sub.add_parser("lesion", help="test error with one block removed at a time (Veit et al. 2016), per "
                                        "finished run with a checkpoint -> <run>/lesion.csv")
    preset_arg(les)
    les.add_argument("--data-dir", default=None)
    les.add_argument("--archs", default=None, help="comma-separated nets (default: every finished CIFAR run)")
    les.add_argument("--force", action="store_true")

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

    b = sub.add_parser("beyond", help="issue 8: collect the run folders' gradflow/lesion/landscape files, draw the "
                                      "figures, write report/<preset>/beyond.md [and run notebook 05]")
    preset_arg(b)
    b.add_argument("--figures", default="figures")
    b.add_argument("--report", default="report")
    b.add_argument("--notebook", action="store_true", help="also execute notebooks/<preset>/05_beyond_the_paper")
    b.add_argument("--notebooks", default=None, help="where the executed notebook goes (default notebooks/)")


def _list(s: str | None) -> list[str] | None:
    return [a for a in s.split(",") if a] if s else None


def dispatch(args) -> int:
    cmd = args.command
    if cmd == "gradflow":
        archs = _list(args.archs)
        for a in archs:
            parse_arch(a)  # a bad name fails before any work
        if args.init_only and args.final_only:
            raise ValueError("--init-only and --final-only exclude each other")
        if not args.final_only:
            gradflow_init(args.preset, archs, args.seed, args.batches, args.data_dir, args.dest, args.results)
        if not args.init_only:
            gradflow_final(args.preset, args.results, args.data_dir, n_batches=args.batches, force=args.force)
        return 0
    if cmd == "lesion":
        lesion_preset(args.preset, args.results, args.data_dir, _list(args.archs), args.force)
        return 0
    if cmd == "landscape":
        archs = _list(args.archs)
        for a in archs:
            parse_arch(a)
        if args.grid < 1 or args.subset < 1:
            raise ValueError("--grid and --subset must be positive")
        landscape_preset(args.preset, archs, args.seed, args.grid, args.grid_1d, args.subset, args.dir_seed,
                         args.results, args.data_dir, args.force)
        return 0
    if cmd == "beyond":
        if (Path(args.results) / args.preset / "runs").is_dir():
            collect_beyond(args.preset, args.results)
        b = load_beyond(args.preset, args.results)
        make_beyond_figures(args.preset, args.results, args.figures, b)
        build_beyond_report(args.preset, args.results, args.figures, args.report, b)
        if args.notebook:
            from .notebooks import run_notebooks

            run_notebooks(args.preset, out_root=args.notebooks, results=args.results, figures=args.figures,
                          names=["05_beyond_the_paper"])
        return 0
    raise ValueError(f"unknown command {cmd}")
