"""Issue 15: does bf16 autocast train as well as fp32? The `short` runs (fp32) against `short-bf16` (bf16-mixed).

Same nets, seeds, data, schedule and code path; only the precision differs. Per net, bf16 counts as worse when its
mean final test error is above fp32's by more than the seed spread (the largest range over seeds of either
precision). The campaign uses bf16 only if no net is worse in that sense. Writes
    results/short-bf16/precision_check.csv     one row per (net, seed, precision)
    figures/short-bf16/precision_check.png|pdf test error curves, fp32 solid and bf16 dashed
    report/short-bf16/precision_check.md       the verdict, the table, the figure
"""

from __future__ import annotations

import json
from pathlib import Path

from matplotlib.figure import Figure
import pandas as pd

from ..experiments import CIFAR_GRID
from ..paths import run_path
from ..wording import data_name, data_text, trained_label

COMMAND = "precision-check"
HELP = "bf16 vs fp32: the short runs against short-bf16 (issue 15)"
FP32, BF16 = "short", "short-bf16"
COLUMNS = ["arch", "seed", "preset", "precision", "final_test_err", "final_train_err", "iterations", "wall_time_s",
           "iters_per_s", "torch_threads", "device", "commit", "data_source"]


def csv_path(results: str | Path = "results") -> Path:
    """Where the check's table goes: results/short-bf16/precision_check.csv (the budget study reads it too)."""
    return Path(results) / BF16 / "precision_check.csv"


def runs(results: str | Path = "results") -> pd.DataFrame:
    """Every finished run of the check's nets and seeds, in either precision."""
    rows = []
    for preset in (FP32, BF16):
        for arch, seeds in CIFAR_GRID[BF16]:
            for s in seeds:
                f = run_path(results, preset, arch, s) / "final.json"
                if f.is_file():
                    rows.append({c: json.loads(f.read_text()).get(c) for c in COLUMNS} | {"preset": preset})
    return pd.DataFrame(rows, columns=COLUMNS)


def verdict_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per net: fp32 and bf16 means, n, the difference, the seed spread, and whether bf16 is worse beyond it."""
    out = []
    for arch, g in df.groupby("arch", sort=False):
        a, b = (g[g.preset == p].final_test_err.astype(float) for p in (FP32, BF16))
        if a.empty or b.empty:
            continue
        ranges = [float(v.max() - v.min()) for v in (a, b) if len(v) >= 2]
        spread = max(ranges) if ranges else None
        d = float(b.mean() - a.mean())
        out.append(dict(arch=arch, fp32_mean=float(a.mean()), n_fp32=len(a), bf16_mean=float(b.mean()), n_bf16=len(b),
                        diff=d, spread=spread, worse=None if spread is None else d > spread))
    return pd.DataFrame(out)


def verdict(df: pd.DataFrame) -> tuple[str, bool | None]:
    """(markdown lines, True if bf16 is acceptable / False if not / None while undecidable)."""
    v = verdict_table(df)
    if v.empty:
        return "- No pair of fp32 and bf16 runs has finished yet.", None
    lines = []
    for r in v.itertuples():
        spread = "no seed spread yet (one seed per precision)" if r.spread is None else \
            f"seed spread up to {100 * r.spread:.2f} points"
        judged = "" if r.worse is None else (": **worse by more than the seed spread**" if r.worse
                                             else ": within the seed spread")
        lines.append(f"- **{r.arch}:** fp32 {100 * r.fp32_mean:.2f}% (n={r.n_fp32}), bf16 {100 * r.bf16_mean:.2f}% "
                     f"(n={r.n_bf16}); bf16 - fp32 = {100 * r.diff:+.2f} points; {spread}{judged}.")
    want = {a for a, _ in CIFAR_GRID[BF16]}
    complete = set(v.arch) == want and v.worse.notna().all() and (v.n_bf16 >= 2).all()
    if not complete:
        lines.append("- **Decision:** not yet: the check needs both seeds of both nets in both precisions.")
        return "\n".join(lines), None
    ok = not v.worse.any()
    lines.append("- **Decision:** " + ("bf16 trains as well as fp32 here, within the seed spread: the CPU campaign "
                                       "trains in bf16-mixed." if ok else
                                       "bf16 ends worse than fp32 by more than the seed spread: the campaign must "
                                       "train in fp32."))
    return "\n".join(lines), ok


def figure(results: str | Path, df: pd.DataFrame):
    nets = [a for a, _ in CIFAR_GRID[BF16]]
    fig = Figure(figsize=(5 * len(nets), 3.6))  # no pyplot: importing a study leaves the backend alone
    axes = fig.subplots(1, len(nets), sharey=True)
    for ax, arch in zip(axes, nets):
        for preset, style in ((FP32, "-"), (BF16, "--")):
            for s, color in zip((0, 1), ("C0", "C1")):
                m = run_path(results, preset, arch, s) / "metrics.csv"
                if m.is_file() and (Path(m.parent) / "final.json").is_file():
                    c = pd.read_csv(m)
                    prec = "bf16" if preset == BF16 else "fp32"
                    ax.plot(c.iteration, 100 * c.test_err, style, color=color, label=f"{prec} seed {s}")
        ax.set(title=f"{arch}: test error", xlabel="iteration")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("test error (%)")
    fig.suptitle(f"bf16 check, SCALED-DOWN short schedule (4k iterations), {data_name(df)}; "
                 f"{trained_label(df)}", fontsize=9)
    fig.tight_layout()
    return fig


def write(results: str | Path, figures: str | Path, report: str | Path, load=None) -> bool | None:
    df = runs(results)
    csv_path(results).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(csv_path(results), index=False)
    fdir = Path(figures) / BF16
    fdir.mkdir(parents=True, exist_ok=True)
    fig = figure(results, df)
    for ext in ("png", "pdf"):
        fig.savefig(fdir / f"precision_check.{ext}", dpi=120, metadata={"CreationDate": None} if ext == "pdf" else {})
    text, ok = verdict(df)
    rows = ["| net | seed | precision | test err | train err | wall time | it/s | torch threads | device | commit |",
            "|---|---:|---|---:|---:|---:|---:|---:|---|---|"]
    for r in df.itertuples():
        threads = "not recorded" if pd.isna(r.torch_threads) else int(r.torch_threads)
        rows.append(f"| {r.arch} | {r.seed} | {r.precision} | {100 * r.final_test_err:.2f}% | "
                    f"{100 * r.final_train_err:.2f}% | {r.wall_time_s / 60:.1f} min | {r.iters_per_s:.2f} | {threads} | "
                    f"{r.device} | `{str(r.commit)[:12]}` |")
    rdir = Path(report) / BF16
    rdir.mkdir(parents=True, exist_ok=True)
    rel = Path("..") / ".." / fdir
    (rdir / "precision_check.md").write_text(
        "# Does bf16 train as well as fp32? (issue 15)\n\n"
        "Generated by `make precision-check` from the run folders of `results/short` (fp32) and "
        "`results/short-bf16` (bf16 autocast): the **scaled-down** `short` schedule (1/16 of the paper's: 4,000 "
        f"iterations, lr /10 at 2,000 and 3,000), final iterates, on {data_text(df)}; {trained_label(df)}. "
        "Only the precision differs between a pair; both use the same code path, seeds and data order.\n\n"
        f"{text}\n\n{chr(10).join(rows)}\n\n"
        "Speed is not compared like for like here: the fp32 runs were made in earlier sessions, one process at a time "
        "with torch's default thread count (not recorded in their final.json), some while other jobs shared the cores; "
        "the bf16 runs trained as two 1-thread campaign workers side by side, and their wall times include the "
        "campaign's pauses for tests and benchmarks. `make bench-layouts` measures speed. The commit column is the "
        "last training session's; a run resumed across commits lists each in its sessions.jsonl.\n\n"
        f"![bf16 check]({(rel / 'precision_check.png').as_posix()})\n")
    print(f"[precision-check] {len(df)} runs; decision: {'bf16' if ok else 'fp32' if ok is False else 'not yet'}")
    return ok
