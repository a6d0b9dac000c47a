"""The report: report/template.md filled in from the collected CSVs (never by hand).

Every sentence that states a result is computed here from results/<preset>/*.csv, so the notebooks
(which import these helpers) and the report say the same thing. A run that has not happened is listed
as missing; nothing here fails for want of a run.
"""

from __future__ import annotations

import base64
import math
import re
import string
from pathlib import Path

import pandas as pd

from .collect import load_collected
from .config import PRESETS, TrainConfig, make_config

TEMPLATE = Path(__file__).resolve().parents[2] / "report" / "template.md"

SCALE = {
    "paper": "the paper's protocol (64,000 iterations)",
    "short": "**scaled-down**: the `short` preset, 1/16 of the paper's schedule (4,000 iterations, "
             "lr /10 at 2,000 and 3,000)",
    "smoke": "**scaled-down, not a result**: the `smoke` preset (20 iterations on a 2,048-image subset), "
             "which only checks that the pipeline runs",
}


def pct(x: float, digits: int = 2) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.{digits}f}%"


def scale_text(preset: str) -> str:
    return SCALE.get(preset, f"preset `{preset}`")


def data_text(runs: pd.DataFrame) -> str:
    if runs.empty:
        return "no finished runs yet"
    srcs = sorted(set(runs.data_source.astype(str)))
    parts = []
    for s in srcs:
        if "lossy" in s:
            parts.append("the **lossy JPEG copy of CIFAR-10** (quality ≈75, 4:2:0 chroma; `../shared/data/cifar10-jpeg`), "
                         "so errors are expected to sit somewhat above those on the official files")
        elif "official" in s:
            parts.append("the official CIFAR-10 python batches (torchvision download)")
        else:
            parts.append(f"`{s}`")
    return "; ".join(parts)


def _final(runs: pd.DataFrame, arch: str, col: str) -> float | None:
    g = runs[runs.arch == arch]
    return None if g.empty else float(g[col].mean())


def _n(runs: pd.DataFrame, arch: str) -> int:
    return int((runs.arch == arch).sum())


def degradation_verdict(runs: pd.DataFrame) -> str:
    """The Fig. 1 / Sec. 4.2 claims, checked on the final iterates (means over seeds)."""
    lines = []
    tr20, tr56 = _final(runs, "plain20", "final_train_err"), _final(runs, "plain56", "final_train_err")
    te20, te56 = _final(runs, "plain20", "final_test_err"), _final(runs, "plain56", "final_test_err")
    if tr20 is None or tr56 is None:
        lines.append("- **Degradation (plain-56 vs plain-20):** not decidable yet; "
                     f"missing: {', '.join(a for a in ('plain20', 'plain56') if _n(runs, a) == 0)}.")
    else:
        shown = tr56 > tr20
        lines.append(f"- **Degradation:** plain-56 ends with a training error of {pct(tr56)} against plain-20's "
                     f"{pct(tr20)} ({100 * (tr56 - tr20):+.2f} points), and a test error of {pct(te56)} against "
                     f"{pct(te20)} ({100 * (te56 - te20):+.2f} points). "
                     + ("**The degradation problem is reproduced**: the deeper plain net trains worse."
                        if shown else "**The degradation problem is not shown by these runs**: "
                                      "plain-56 does not train worse than plain-20."))
    r20, r56, p56 = (_final(runs, a, "final_test_err") for a in ("resnet20", "resnet56", "plain56"))
    if r20 is None or r56 is None:
        lines.append("- **ResNet-56 vs ResNet-20:** not decidable yet; missing: "
                     f"{', '.join(a for a in ('resnet20', 'resnet56') if _n(runs, a) == 0)}.")
    else:
        lines.append(f"- **Depth helps with shortcuts:** ResNet-56 ends at {pct(r56)} test error against "
                     f"ResNet-20's {pct(r20)} ({100 * (r56 - r20):+.2f} points): "
                     + ("ResNet-56 **beats** ResNet-20." if r56 < r20 else "ResNet-56 does **not** beat ResNet-20."))
    if r56 is not None and p56 is not None:
        rt56 = _final(runs, "resnet56", "final_train_err")
        lines.append(f"- **Shortcuts fix the deep net:** ResNet-56 {pct(r56)} test / {pct(rt56)} train against "
                     f"plain-56's {pct(p56)} / {pct(tr56)}: "
                     + ("ResNet-56 **beats** plain-56." if r56 < p56 else "ResNet-56 does **not** beat plain-56."))
    return "\n".join(lines)


def fig7_findings(layer_std: pd.DataFrame) -> str:
    """Compare the mean layer-response std of residual and plain nets, and across ResNet depths."""
    if layer_std.empty:
        return "- No layer-response stds yet (they need finished runs with checkpoints: `make analyze`)."
    m = layer_std.groupby("arch")["std"].mean()
    lines = []
    for d in (20, 56, 110):
        r, p = m.get(f"resnet{d}"), m.get(f"plain{d}")
        if r is not None and p is not None:
            lines.append(f"- **{d} layers:** mean response std {r:.3f} (ResNet) vs {p:.3f} (plain): residual "
                         f"responses are {'**smaller**' if r < p else '**not smaller**'} "
                         f"(ratio {r / p:.2f}).")
    res = [(d, m[f"resnet{d}"]) for d in (20, 32, 44, 56, 110, 1202) if f"resnet{d}" in m]
    if len(res) >= 2:
        decreasing = all(a[1] > b[1] for a, b in zip(res, res[1:]))
        lines.append("- **Across ResNet depths:** mean std " + ", ".join(f"ResNet-{d} {v:.3f}" for d, v in res)
                     + (": deeper ResNets have **smaller** responses, as the paper reports." if decreasing
                        else ": the paper's ordering (smaller for deeper nets) is **not** strictly followed."))
    return "\n".join(lines) if lines else "- Not enough runs with layer stds to compare plain and residual nets."


def missing_text(status: pd.DataFrame) -> str:
    if status.empty:
        return "- Nothing has been run for this preset yet."
    miss = status[status.status != "done"]
    if miss.empty:
        return "- Every run of this preset's grid has finished."
    return "\n".join(f"- `{r.arch}` seed {r.seed}: {r.status}"
                     + (f" (logged up to iteration {r.iterations_logged})" if r.status == "partial" else "")
                     for r in miss.itertuples())


def protocol_text(preset: str) -> str:
    c: TrainConfig = make_config(preset) if preset in PRESETS else make_config("paper")
    return (f"- Schedule: {scale_text(preset)}. Batch {c.batch_size}, SGD with momentum {c.momentum}, "
            f"weight decay {c.weight_decay:g} on all parameters, lr {c.lr} divided by 10 at iterations "
            f"{', '.join(f'{m:,}' for m in c.milestones)}, stop at {c.max_steps:,}.\n"
            f"- Warm-up (110+ layers): lr {c.warmup_lr} until the mean training error over "
            f"{c.warmup_check_every} iterations drops below {c.warmup_until_err:.0%}, then lr {c.lr}.\n"
            f"- Data: per-pixel mean of the training images subtracted; training images zero-padded by 4, "
            f"randomly cropped to 32×32 and flipped; test on the original 32×32 view. "
            f"Train on {'all 50k' if not c.train_subset else f'a {c.train_subset:,}-image subset of the'} training "
            f"images; test error on {'the full 10k test set' if not c.test_subset else f'{c.test_subset:,} test images'} "
            f"every {c.eval_every:,} iterations.\n"
            f"- Reported errors are the **final iterate's**; the test set selects nothing (no best epoch).\n"
            f"- He (MSRA) init, BN after every conv, option-A (parameter-free) shortcuts; plain nets are the "
            f"same stacks without the additions.")


def deviations_text(runs: pd.DataFrame, preset: str) -> str:
    lines = [f"- **Data:** {data_text(runs)}."]
    if preset != "paper":
        lines.append(f"- **Schedule:** {scale_text(preset)}; the paper trains 16× longer (or more).")
    lines += [
        "- **BN statistics:** one device, BN over the whole batch of 128; the paper used 2 GPUs with BN over "
        "64 images each (available here as `--bn-groups 2`).",
        "- **Train/val split:** final runs train on all 50k images, as the paper's final runs do; the paper "
        "chose its schedule on a 45k/5k split, which this study takes from the paper rather than re-deriving it.",
        "- **Training error** is the running mean over each evaluation interval, on augmented images with "
        "train-mode BN (the dashed curves of Fig. 6).",
    ]
    if not runs.empty:
        devs = ", ".join(sorted(set(runs.device.astype(str))))
        lines.append(f"- **Hardware:** {devs}.")
    return "\n".join(lines)


def provenance_table(runs: pd.DataFrame) -> str:
    if runs.empty:
        return "_No finished runs._"
    rows = ["| run | iterations | test err | train err | wall time | device | commit | data |",
            "|---|---:|---:|---:|---:|---|---|---|"]
    for r in runs.itertuples():
        rows.append(f"| {r.arch} seed {r.seed} | {r.iterations:,} | {pct(r.final_test_err)} | "
                    f"{pct(r.final_train_err)} | {r.wall_time_s / 60:.1f} min | {r.device} | `{str(r.commit)[:12]}` | "
                    f"{r.data_source} |")
    return "\n".join(rows)


def figure_links(preset: str, figures_root: Path, report_dir: Path) -> str:
    fdir = figures_root / preset
    order = ["fig1", "fig4", "fig6_plain", "fig6_resnet", "fig6_deep", "fig7"]  # the paper's order
    pngs = sorted(fdir.glob("*.png") if fdir.is_dir() else [],
                  key=lambda p: (next((i for i, k in enumerate(order) if p.stem.startswith(k)), len(order)), p.stem))
    if not pngs:
        return "_No figures yet (`make figures`)._"
    rel = Path(_relpath(fdir, report_dir))
    return "\n\n".join(f"![{p.stem}]({(rel / p.name).as_posix()})\n\n*{p.stem.replace('_', ' ')}* "
                       f"([PDF]({(rel / p.with_suffix('.pdf').name).as_posix()}))" for p in pngs)


def _relpath(target: Path, start: Path) -> str:
    import os

    return os.path.relpath(target.resolve(), start.resolve())


def build_report(preset: str, results: str | Path = "results", figures: str | Path = "figures",
                 report: str | Path = "report") -> Path:
    results, figures, report = Path(results), Path(figures), Path(report)
    t = load_collected(preset, results)
    out_dir = report / preset
    out_dir.mkdir(parents=True, exist_ok=True)
    table_md = figures / preset / "table6.md"
    fields = dict(
        preset=preset, scale=scale_text(preset), data=data_text(t["runs"]), protocol=protocol_text(preset),
        deviations=deviations_text(t["runs"], preset),
        table6=table_md.read_text() if table_md.is_file() else "_Table 6 not drawn yet (`make figures`)._",
        degradation=degradation_verdict(t["runs"]), fig7=fig7_findings(t["layer_std"]),
        figures=figure_links(preset, figures, out_dir), missing=missing_text(t["status"]),
        provenance=provenance_table(t["runs"]), n_runs=str(len(t["runs"])),
    )
    md = string.Template(TEMPLATE.read_text()).substitute(fields)
    (out_dir / "report.md").write_text(md)
    (out_dir / "report.html").write_text(to_html(md, out_dir, f"ResNet reproduction: {preset}"))
    print(f"[report] wrote {out_dir / 'report.md'} and report.html ({len(t['runs'])} runs)", flush=True)
    return out_dir / "report.md"


def to_html(md: str, base: Path, title: str) -> str:
    """Markdown -> one self-contained HTML page: images are inlined as data URIs."""
    import mistune

    body = mistune.create_markdown(plugins=["table"])(md)

    def inline(m: re.Match) -> str:
        src = m.group(1)
        f = (base / src).resolve()
        if f.is_file():
            return f'src="data:image/png;base64,{base64.b64encode(f.read_bytes()).decode()}"'
        return m.group(0)

    body = re.sub(r'src="([^"]+\.png)"', inline, body)
    css = ("body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em;line-height:1.5}"
           "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em}img{max-width:100%}"
           "code{background:#f4f4f4}")
    return f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title><style>{css}</style>" \
           f"</head><body>{body}</body></html>\n"
