"""Run folders -> tidy CSVs in results/<preset>/ (documented in results/README.md).

Every preset gets three tables of its own:

runs.csv       one row per finished run (ImageNet-style presets add the val-error columns of IMAGENET_RUN_COLUMNS)
curves.csv     every metrics.csv in long format: arch, seed, iteration, metric, value
status.csv     every run of the preset's grid (and any other run found): done, partial or missing

and each study of the preset's family (resnet_repro.studies) adds its own: table6.csv, layer_std.csv,
imagenet.csv, lesion.csv, ... (`collect(rs)` of each study, written when not empty). `load_collected` reads them
all back, with the right columns even where a file is missing.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from . import studies as S
from .config import preset_family
from .experiments import GRIDS, grid_runs
from .models import arch_order
from .paths import preset_dir, runs_root
from .runfolder import final_device
from .studies.common import RunSet
from .wording import data_text, devices_text, scale_text

RUN_COLUMNS = ["arch", "depth", "residual", "shortcut", "seed", "params", "final_test_err", "final_train_err",
               "iterations", "wall_time_s", "iters_per_s", "warmup_switched_at", "device", "precision", "torch_threads", "commit",
               "data_source", "torch", "lightning", "preset", "scaled_down", "n_train", "n_test", "diverged"]
CURVE_COLUMNS = ["arch", "seed", "iteration", "metric", "value"]
STATUS_COLUMNS = ["arch", "seed", "status", "iterations_logged", "in_grid"]
IMAGENET_RUN_COLUMNS = RUN_COLUMNS + ["final_val_err", "final_val_top5_err", "final_val_10crop_err",
                                      "final_val_10crop_top5_err", "n_val", "image_size"]


def read_curves(run_root: Path) -> tuple[pd.DataFrame, list[tuple[str, int, int]]]:
    """Every finished run's metrics.csv in long format, and (arch, seed, last iteration) of the runs not finished.

    Unfinished runs add no curve: every collected number comes from a run folder that can be committed (one with
    final.json), so what results/ holds can always be traced to its run. Their progress is in status.csv."""
    curves, partial = [], []
    for rd in sorted(run_root.glob("*/seed*")):
        arch, seed = rd.parent.name, int(rd.name[len("seed"):])
        m = rd / "metrics.csv"
        df = pd.read_csv(m) if m.is_file() and m.stat().st_size else pd.DataFrame(columns=["iteration"])
        if len(df) and (rd / "final.json").is_file():
            long = df.melt(id_vars="iteration", var_name="metric", value_name="value").dropna()
            long = long[long.metric != "elapsed_s"]
            long.insert(0, "seed", seed)
            long.insert(0, "arch", arch)
            curves.append(long)
        if not (rd / "final.json").is_file():
            partial.append((arch, seed, int(df["iteration"].max()) if len(df) else 0))
    return (pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(columns=CURVE_COLUMNS)), partial


def diverged(rd: Path) -> bool:
    """A finished run whose training loss was not finite at its last evaluation: its weights hold inf or NaN, its
    errors are those of a constant guess, and its layer stds and lesions mean nothing. Reported as such."""
    m = rd / "metrics.csv"
    df = pd.read_csv(m) if m.is_file() and m.stat().st_size else pd.DataFrame()
    if df.empty or "train_loss" not in df:
        return False
    return not math.isfinite(float(pd.to_numeric(df["train_loss"], errors="coerce").iloc[-1]))


def status_table(preset: str, finals: list[dict], partial: list[tuple[str, int, int]]) -> pd.DataFrame:
    grid = set(grid_runs(preset)) if preset in GRIDS else set()
    done = {(f["arch"], int(f["seed"])): f for f in finals}
    part = {(a, s): n for a, s, n in partial}
    keys = sorted(grid | set(done) | set(part), key=lambda k: (arch_order(k[0]), k[1]))
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


def collect(preset: str, results: str | Path = "results", finished_only: bool = False) -> dict[str, pd.DataFrame]:
    """`finished_only` leaves the unfinished run folders out of status.csv too (they add no number either way), so
    the tables read as a clone of the repository reads them: for committing results while a campaign trains, as an
    unfinished folder is never committed."""
    out = preset_dir(results, preset)
    curves, partial = read_curves(runs_root(results, preset))
    partial = [] if finished_only else partial
    columns = IMAGENET_RUN_COLUMNS if preset_family(preset) == "imagenet" else RUN_COLUMNS
    rs = RunSet.of(preset, runs_root(results, preset), pd.DataFrame())
    runs = pd.DataFrame([{c: f.get(c) for c in columns} | {"diverged": diverged(rd), "device": final_device(rd, f)}
                         for f, rd in zip(rs.finals, rs.dirs)], columns=columns)
    if len(runs):
        runs = runs.iloc[sorted(range(len(runs)), key=lambda i: (arch_order(runs.arch.iloc[i]),
                                                                  runs.seed.iloc[i]))].reset_index(drop=True)
    rs.runs = runs
    tables = dict(runs=runs, curves=curves, status=status_table(preset, rs.finals, partial))
    out.mkdir(parents=True, exist_ok=True)
    written = list(tables)
    for study in S.of_family(preset_family(preset)):
        for name, df in study.collect(rs).items():
            tables[name] = df
            if not df.empty:
                written.append(name)
    for name in written:
        tables[name].to_csv(out / f"{name}.csv", index=False)
    write_label(out, preset, runs)
    s = tables["status"].status.value_counts().to_dict()
    print(f"[collect] {out}: {len(runs)} finished runs ({s}); wrote {', '.join(t + '.csv' for t in written)}",
          flush=True)
    return tables


def write_label(out: Path, preset: str, runs: pd.DataFrame) -> None:
    """LABEL.md beside the CSVs: the scale and the data of these numbers, so the folder says it on its own."""

    (out / "LABEL.md").write_text(
        f"# results/{preset}\n\n- Scale: {scale_text(preset)}.\n- Data: {data_text(runs)}.\n"
        f"- Finished runs: {len(runs)}; devices: {(devices_text(runs.device) if len(runs) else '') or 'none'}.\n"
        f"- Written by `python -m resnet_repro collect --preset {preset}` from the run folders in `runs/`; "
        f"the columns are documented in `results/README.md`.\n")


# Columns read as text or as booleans; every other collected column is a number.
TEXT_COLUMNS = {"arch", "shortcut", "device", "commit", "data_source", "torch", "lightning", "preset", "metric",
                "status", "precision",
                "wrong", "images"}  # lists of image indices, space-separated: one index alone is still a list
BOOL_COLUMNS = {"residual", "scaled_down", "in_grid", "diverged"}


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
            num = pd.to_numeric(df[c], errors="coerce")
            if num.isna().sum() == df[c].isna().sum():  # a study's text column (a layer's name...) stays text
                df[c] = num
    if "arch" in df:
        df["arch"] = df["arch"].astype(str).str.strip()
    return df


def load_collected(preset: str, results: str | Path = "results") -> dict:
    """Read what collect wrote, one frame per table (see read_table for missing files), plus each study's extra
    files (load_extra)."""
    d = preset_dir(results, preset)
    cols = dict(runs=IMAGENET_RUN_COLUMNS if preset_family(preset) == "imagenet" else RUN_COLUMNS,
                curves=CURVE_COLUMNS, status=STATUS_COLUMNS)
    for study in S.STUDIES:
        cols.update(study.TABLES)
    t: dict = {name: read_table(d / f"{name}.csv", c) for name, c in cols.items()}
    for study in S.STUDIES:
        if hasattr(study, "load_extra"):
            t.update(study.load_extra(d))
    return t
