"""Block lesions (Veit et al. 2016): the test error with one block's residual branch removed (its shortcut kept): do
deep ResNets behave like ensembles of shallower paths?
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F
from nbformat.v4 import new_code_cell, new_markdown_cell

from ..analyze import default_device
from ..hooks import arch_info, blocks, lesioned, removable
from ..models import ResNet, parse_arch
from ..plotting import annotate, arch_label, arch_sort, new_figure, style
from ..runfolder import arrays_for, data_key, load_final_model, provenance, run_config, runs_with_checkpoint
from .common import RUN_FILES, RunSet, cifar_setup, run_files, run_jsons, runs_frame

LESION_ARCHS = ["resnet56", "resnet110", "plain56", "plain110"]


LESION_COLUMNS = ["arch", "seed", "depth", "residual", "block", "stage", "block_in_stage", "reshape", "removed",
                  "test_loss", "test_err", "delta_err", "n_test"]


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
        _, test, *_ = cifar_setup(cfg, a, device)
        t0 = time.time()
        df = lesion_table(load_final_model(run, device), test)
        for k, v in {**arch_info(cfg.arch), "seed": cfg.seed}.items():
            df[k] = v
        df.reindex(columns=LESION_COLUMNS).to_csv(run / RUN_FILES["lesion"], index=False)
        meta = provenance(device, a, what="block lesions (studies.lesions.lesion_table)", arch=cfg.arch, seed=cfg.seed,
                           wall_time_s=round(time.time() - t0, 1))
        (run / "lesion.json").write_text(json.dumps(meta, indent=2) + "\n")
        d = df[df.block > 0].delta_err
        print(f"[lesion] {run}: {int(df.removed.sum())} blocks removed one at a time, mean error increase "
              f"{100 * d.mean():.2f} points ({time.time() - t0:.0f}s)", flush=True)
    return runs


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
    parts = [f"each net's final weights on {' or '.join(f'{x:,}' for x in n)} test images of its own data, in fp32 "
             "(a run trained in bf16 reports its final test error under bf16 autocast, so its intact error here can "
             "differ slightly from Table 6's)"]
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
    lines, by_depth, seeds_by_depth = [lesion_setting(t, b.get("lesion_meta", []))], {}, {}
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
            seeds_by_depth[net.depth] = int(t[t.arch == arch].seed.nunique()) if "seed" in t else 1
    if len(by_depth) > 1:
        depths = sorted(by_depth)
        falls = all(by_depth[a] > by_depth[b] for a, b in zip(depths, depths[1:]))
        single = [f"ResNet-{k}" for k in depths if seeds_by_depth[k] < 2]
        which = "per net" if len(single) == len(depths) else "of " + " and ".join(single)
        caveat = f" — with one seed {which}, a pattern to confirm, not yet a finding." if single else "."
        lines.append("- **ResNets by depth:** one removed block whose shapes match costs "
                     + ", ".join(f"{100 * by_depth[k]:.2f} (ResNet-{k}, n={seeds_by_depth[k]})" for k in depths)
                     + " points on average"
                     + (": falling with depth, as Veit et al. find for ResNet-110 (many blocks contribute little on "
                        "their own)" + caveat if falls else
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


def fig_lesion(t: pd.DataFrame, preset: str, runs: pd.DataFrame):
    """Test error with one block removed vs the block's index; intact error as a dotted line."""
    fig, axes = new_figure(1, 1, figsize=(8, 4.6))
    ax = axes[0, 0]
    for arch in arch_sort(set(t.arch)):
        d = t[t.arch == arch]
        base = d[d.block == 0].test_err.mean() * 100
        g = d[(d.block > 0) & d.removed.astype(bool)].groupby("block").agg(err=("test_err", "mean"),
                                                                           reshape=("reshape", "first"))
        st = style(arch)
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
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)  # inside, it covered a curve
    notes = ["one block removed at a time, its shortcut kept (Veit et al. 2016); x: downsampling blocks; plain "
             "blocks that change the shape cannot be removed; final weights, inference-mode BN"]
    return annotate(fig, "Block lesions: test error with one block removed", preset, runs, notes)


# ----------------------------------------------------------------------------- the study's entry in studies.STUDIES

FAMILY, PAGE = "cifar", "beyond"
TABLES = {"lesion": LESION_COLUMNS}
FIGURES = {"lesion": "beyond_lesion"}
CAPTIONS = {  # what the figure shows, under it in the report and the notebook
    "lesion": "Lesions (Veit et al. 2016): test error of the final weights with one block's residual branch "
              "removed (its shortcut kept), against the block's index; the intact net's error dotted.",
}


def collect(rs: RunSet) -> dict[str, pd.DataFrame]:
    return {"lesion": run_files(rs, RUN_FILES["lesion"], LESION_COLUMNS)}


def load_extra(folder: Path) -> dict:
    return {"lesion_meta": run_jsons(folder, "lesion.json")}


def draw(b: dict, preset: str) -> list[tuple[object, str]]:
    les = b["lesion"]
    return [(fig_lesion(les, preset, runs_frame(b, les)), FIGURES["lesion"])] if not les.empty else []


def report_fields(b: dict, preset: str, figures_dir: Path) -> dict[str, str]:
    return dict(lesion=lesion_verdict(b))


NOTEBOOKS = {"05_beyond_the_paper": [
    new_markdown_cell("## 4. Block lesions (Veit et al. 2016)"),
    new_code_cell("from resnet_repro.studies import lesions\nshow(lesions.FIGURES['lesion'])"),
    new_code_cell("display(Markdown(lesions.lesion_verdict(t)))"),
]}

COMMANDS = ("lesion",)


def add_commands(sub, preset_arg) -> None:
    les = sub.add_parser("lesion", help="test error with one block removed at a time (Veit et al. 2016), per "
                                        "finished run with a checkpoint -> <run>/lesion.csv")
    preset_arg(les)
    les.add_argument("--data-dir", default=None)
    les.add_argument("--archs", default=None, help="comma-separated nets (default: every finished CIFAR run)")
    les.add_argument("--force", action="store_true")


def dispatch(args) -> int:
    archs = [a for a in args.archs.split(",") if a] if args.archs else None
    lesion_preset(args.preset, args.results, args.data_dir, archs, args.force)
    return 0
