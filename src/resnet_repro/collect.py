"""Run folders -> tidy CSVs in results/<preset>/ (documented in results/README.md).

runs.csv       one row per finished run
table6.csv     one row per arch: n seeds, mean/std/min test error (%), the paper's number beside it
curves.csv     every metrics.csv in long format: arch, seed, iteration, metric, value
layer_std.csv  every run's layer_std.csv, with arch, seed, depth and residual prepended
status.csv     every run of the preset's grid (and any other run found): done, partial or missing

ImageNet-style presets (imagenet, imagenette, ...) write imagenet.csv (one row per arch: val errors, single
view and 10-crop, top-1 and top-5, with the paper's Table 2/3 numbers beside them) instead of table6.csv and
layer_std.csv, and their runs.csv has the val-error columns of IMAGENET_RUN_COLUMNS.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from .config import preset_family
from .experiments import (
    GRIDS,
    PAPER_TABLE2,
    PAPER_TABLE3,
    PAPER_TABLE6,
    PUBLIC_REPRO,
    grid_runs,
)
from .models import parse_arch
from .wording import data_text, scale_text

RUN_COLUMNS = ["arch", "depth", "residual", "shortcut", "seed", "params", "final_test_err", "final_train_err",
               "iterations", "wall_time_s", "iters_per_s", "warmup_switched_at", "device", "precision", "torch_threads", "commit",
               "data_source", "torch", "lightning", "preset", "scaled_down", "n_train", "n_test"]
TABLE6_COLUMNS = ["arch", "depth", "residual", "params", "n", "mean_test_err_pct", "std_test_err_pct",
                  "min_test_err_pct", "max_test_err_pct", "mean_train_err_pct", "paper_test_err_pct",
                  "public_repro_test_err_pct"]
CURVE_COLUMNS = ["arch", "seed", "iteration", "metric", "value"]
LAYER_COLUMNS = ["arch", "seed", "depth", "residual", "layer", "stage", "block", "conv", "std", "std_channel_mean"]
STATUS_COLUMNS = ["arch", "seed", "status", "iterations_logged", "in_grid"]
IMAGENET_RUN_COLUMNS = RUN_COLUMNS + ["final_val_err", "final_val_top5_err", "final_val_10crop_err",
                                      "final_val_10crop_top5_err", "n_val", "image_size"]
IMAGENET_COLUMNS = ["arch", "depth", "residual", "shortcut", "params", "n", "val_10crop_err_pct",
                    "val_10crop_top5_err_pct", "val_err_pct", "val_top5_err_pct", "train_err_pct",
                    "paper_10crop_err_pct", "paper_10crop_top5_err_pct"]


def _arch_order(arch: str) -> tuple:
    cfg = parse_arch(arch)
    return (cfg.family != "cifar", not cfg.residual, cfg.depth, arch)


def read_runs(run_root: Path) -> tuple[list[dict], pd.DataFrame, pd.DataFrame, list[tuple[str, int, int]]]:
    finals, curves, layers, partial = [], [], [], []
    for rd in sorted(run_root.glob("*/seed*")):
        arch, seed = rd.parent.name, int(rd.name[len("seed"):])
        m = rd / "metrics.csv"
        df = pd.read_csv(m) if m.is_file() and m.stat().st_size else pd.DataFrame(columns=["iteration"])
        if len(df):
            long = df.melt(id_vars="iteration", var_name="metric", value_name="value").dropna()
            long = long[long.metric != "elapsed_s"]
            long.insert(0, "seed", seed)
            long.insert(0, "arch", arch)
            curves.append(long)
        if (rd / "final.json").is_file():
            finals.append(json.loads((rd / "final.json").read_text()))
            if (rd / "layer_std.csv").is_file():
                ls = pd.read_csv(rd / "layer_std.csv")
                cfg = parse_arch(arch)
                for col, val in (("residual", cfg.residual), ("depth", cfg.depth), ("seed", seed), ("arch", arch)):
                    ls.insert(0, col, val)
                layers.append(ls)
        else:
            partial.append((arch, seed, int(df["iteration"].max()) if len(df) else 0))
    curves_df = (pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(columns=CURVE_COLUMNS))
    layers_df = (pd.concat(layers, ignore_index=True)[LAYER_COLUMNS] if layers
                 else pd.DataFrame(columns=LAYER_COLUMNS))
    return finals, curves_df, layers_df, partial


def table6(runs: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for arch, g in runs.groupby("arch"):
        e = g["final_test_err"] * 100
        rows.append(dict(arch=arch, depth=int(g["depth"].iloc[0]), residual=bool(g["residual"].iloc[0]),
                         params=int(g["params"].iloc[0]), n=len(g), mean_test_err_pct=e.mean(),
                         std_test_err_pct=e.std(ddof=1) if len(g) > 1 else math.nan,
                         min_test_err_pct=e.min(), max_test_err_pct=e.max(),
                         mean_train_err_pct=(g["final_train_err"] * 100).mean(),
                         paper_test_err_pct=PAPER_TABLE6.get(arch, math.nan),
                         public_repro_test_err_pct=PUBLIC_REPRO.get(arch, math.nan)))
    df = pd.DataFrame(rows, columns=TABLE6_COLUMNS)
    return df.iloc[sorted(range(len(df)), key=lambda i: _arch_order(df.arch.iloc[i]))].reset_index(drop=True)


def imagenet_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per arch, means over seeds (%) of the final val errors (10-crop and single view, top-1 and top-5) and of
    the final training error, beside the paper's 10-crop val errors (Table 2 top-1, Table 3 top-1/top-5)."""
    rows = []
    for arch, g in runs.groupby("arch"):
        def pct(col):
            return float(pd.to_numeric(g[col], errors="coerce").mean() * 100)

        paper1, paper5 = PAPER_TABLE3.get(arch, (PAPER_TABLE2.get(arch, math.nan), math.nan))
        rows.append(dict(arch=arch, depth=int(g["depth"].iloc[0]), residual=bool(g["residual"].iloc[0]),
                         shortcut=g["shortcut"].iloc[0], params=int(g["params"].iloc[0]), n=len(g),
                         val_10crop_err_pct=pct("final_val_10crop_err"),
                         val_10crop_top5_err_pct=pct("final_val_10crop_top5_err"), val_err_pct=pct("final_val_err"),
                         val_top5_err_pct=pct("final_val_top5_err"), train_err_pct=pct("final_train_err"),
                         paper_10crop_err_pct=paper1, paper_10crop_top5_err_pct=paper5))
    df = pd.DataFrame(rows, columns=IMAGENET_COLUMNS)
    return df.iloc[sorted(range(len(df)), key=lambda i: _arch_order(df.arch.iloc[i]))].reset_index(drop=True)


def status_table(preset: str, finals: list[dict], partial: list[tuple[str, int, int]]) -> pd.DataFrame:
    grid = set(grid_runs(preset)) if preset in GRIDS else set()
    done = {(f["arch"], int(f["seed"])): f for f in finals}
    part = {(a, s): n for a, s, n in partial}
    keys = sorted(grid | set(done) | set(part), key=lambda k: (_arch_order(k[0]), k[1]))
    rows = []
    for k in keys:
        if k in done:
            status, n = "done", done[k]["iterations"]
        elif k in part:
            status, n = "partial", part[k]
        else:
            status, n = "missing", 0
        rows.append(dict(arch=k[0], seed=k[1], status=status, iterations_logged=n, in_grid=k in grid))
    return pd.DataFrame(rows, columns=STATUS_COLUMNS)


def collect(preset: str, results: str | Path = "results") -> dict[str, pd.DataFrame]:
    out = Path(results) / preset
    finals, curves, layers, partial = read_runs(out / "runs")
    imagenet = preset_family(preset) == "imagenet"
    columns = IMAGENET_RUN_COLUMNS if imagenet else RUN_COLUMNS
    runs = pd.DataFrame([{c: f.get(c) for c in columns} for f in finals], columns=columns)
    if len(runs):
        runs = runs.iloc[sorted(range(len(runs)), key=lambda i: (_arch_order(runs.arch.iloc[i]),
                                                                  runs.seed.iloc[i]))].reset_index(drop=True)
    tables = (dict(runs=runs, imagenet=imagenet_table(runs), curves=curves) if imagenet else
              dict(runs=runs, table6=table6(runs), curves=curves, layer_std=layers))
    tables["status"] = status_table(preset, finals, partial)
    out.mkdir(parents=True, exist_ok=True)
    for name, df in tables.items():
        df.to_csv(out / f"{name}.csv", index=False)
    write_label(out, preset, runs)
    s = tables["status"].status.value_counts().to_dict()
    print(f"[collect] {out}: {len(runs)} finished runs ({s}); wrote {', '.join(t + '.csv' for t in tables)}",
          flush=True)
    return tables


def write_label(out: Path, preset: str, runs: pd.DataFrame) -> None:
    """LABEL.md beside the CSVs: the scale and the data of these numbers, so the folder says it on its own."""

    n_dev = sorted(set(runs.device.astype(str))) if len(runs) else []
    (out / "LABEL.md").write_text(
        f"# results/{preset}\n\n- Scale: {scale_text(preset)}.\n- Data: {data_text(runs)}.\n"
        f"- Finished runs: {len(runs)}; devices: {', '.join(n_dev) or 'none'}.\n"
        f"- Written by `python -m resnet_repro collect --preset {preset}` from the run folders in `runs/`; "
        f"the columns are documented in `results/README.md`.\n")


# Columns read as text or as booleans; every other collected column is a number.
TEXT_COLUMNS = {"arch", "shortcut", "device", "commit", "data_source", "torch", "lightning", "preset", "metric",
                "status", "precision"}
BOOL_COLUMNS = {"residual", "scaled_down", "in_grid"}


def read_table(path: Path, columns: list[str]) -> pd.DataFrame:
    """One collected CSV. A missing or empty file gives an empty frame; every expected column exists, and the
    numeric ones are numbers even in an empty frame, so callers never special-case what has not run yet."""
    try:
        df = pd.read_csv(path)
    except (FileNotFoundError, pd.errors.EmptyDataError):
        df = pd.DataFrame(columns=columns)
    for c in columns:
        if c not in df:
            df[c] = math.nan
        if c not in TEXT_COLUMNS | BOOL_COLUMNS:
            df[c] = pd.to_numeric(df[c], errors="coerce")
    if "arch" in df:
        df["arch"] = df["arch"].astype(str).str.strip()
    return df


def load_collected(preset: str, results: str | Path = "results") -> dict[str, pd.DataFrame]:
    """Read what collect wrote, one frame per table (see read_table for missing files)."""
    cols = dict(runs=IMAGENET_RUN_COLUMNS if preset_family(preset) == "imagenet" else RUN_COLUMNS,
                table6=TABLE6_COLUMNS, curves=CURVE_COLUMNS, layer_std=LAYER_COLUMNS, status=STATUS_COLUMNS,
                imagenet=IMAGENET_COLUMNS)
    return {name: read_table(Path(results) / preset / f"{name}.csv", c) for name, c in cols.items()}
