"""Identity-mapping block variants (He et al., ECCV 2016): the ResNet-110 block forms and their test errors beside
the ECCV paper's medians.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from nbformat.v4 import new_code_cell, new_markdown_cell

from ..experiments import IDENTITY_VARIANTS
from ..models import parse_arch, variant_label
from ..paper import PAPER_ECCV_MEDIANS
from ..plotting import annotate, new_figure
from .common import RunSet, runs_frame

VARIANT_COLUMNS = ["arch", "variant", "label", "n", "median_test_err_pct", "mean_test_err_pct", "min_test_err_pct",
                   "max_test_err_pct", "median_train_err_pct", "paper_median_test_err_pct"]


def variants_table(finals: list[dict]) -> pd.DataFrame:
    """One row per ECCV 2016 variant of ResNet-110 that has finished runs: test error median/mean/min/max (%),
    beside the ECCV paper's median of 5 runs (NaN where the paper's net failed to train)."""
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


def variants_verdict(b: dict) -> str:
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


def fig_variants(t: pd.DataFrame, preset: str, runs: pd.DataFrame):
    fig, axes = new_figure(1, 1, figsize=(8, 1.6 + 0.36 * max(len(t), 3)))  # the height follows the variants
    ax = axes[0, 0]
    y = np.arange(len(t))
    ax.barh(y, t.median_test_err_pct, height=0.6, color="#1f3a93", alpha=0.8, label="ours: median test error")
    ax.set_ylim(len(t) - 0.5 + 0.4, -0.5 - 0.4)  # a lone variant is a bar, not the whole axes
    ax.scatter(t.min_test_err_pct, y, marker="|", color="k", s=60, label="ours: min / max")
    ax.scatter(t.max_test_err_pct, y, marker="|", color="k", s=60)
    paper = t.paper_median_test_err_pct.to_numpy(float)
    ax.scatter(np.where(np.isfinite(paper), paper, np.nan), y, marker="D", color="#d62728", zorder=3,
               label="ECCV 2016: median of 5")
    ax.set_yticks(y, [f"{lab} (n={n})" for lab, n in zip(t.label, t.n)], fontsize=8)
    ax.set_xlabel("test error (%)")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return annotate(fig, "ResNet-110 block variants (He et al., ECCV 2016, Tables 1 and 2)", preset, runs,
                    ["final-iterate test error; the paper's dropout-shortcut net fails to train (no marker)"])


def variants_markdown(t: pd.DataFrame) -> str:

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


# ----------------------------------------------------------------------------- the study's entry in studies.STUDIES

FAMILY, PAGE = "cifar", "beyond"
TABLES = {"identity_variants": VARIANT_COLUMNS}
FIGURES = {"identity_variants": "beyond_identity_variants"}
CAPTIONS = {  # what the figure shows, under it in the report and the notebook
    "identity_variants": "ResNet-110 block variants (He et al., ECCV 2016, Tables 1 and 2): final-iterate test "
                         "error of each variant, median with min and max over seeds, beside the paper's median of 5.",
}


def collect(rs: RunSet) -> dict[str, pd.DataFrame]:
    return {"identity_variants": variants_table(rs.finals)}


def draw(b: dict, preset: str) -> list[tuple[object, str]]:
    t = b["identity_variants"]
    return [(fig_variants(t, preset, runs_frame(b)), FIGURES["identity_variants"])] if not t.empty else []


def write_tables(b: dict, preset: str, out_dir: Path) -> list[Path]:
    if b["identity_variants"].empty:
        return []
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "identity_variants.md").write_text(variants_markdown(b["identity_variants"]), encoding="utf-8")
    return [out / "identity_variants.md"]


def report_fields(b: dict, preset: str, figures_dir: Path) -> dict[str, str]:
    vt = Path(figures_dir) / "identity_variants.md"
    table = vt.read_text() if vt.is_file() else variants_markdown(pd.DataFrame(columns=VARIANT_COLUMNS))
    return dict(variants=variants_verdict(b), variants_table=table)


NOTEBOOKS = {"05_beyond_the_paper": [
    new_markdown_cell("## 2. Identity-mapping variants of ResNet-110 (ECCV 2016, Tables 1 and 2)"),
    new_code_cell("from resnet_repro.studies import identity\n"
                  "show(identity.FIGURES['identity_variants'])\n"
                  "display(Markdown(identity.variants_markdown(t['identity_variants'])))\n"
                  "display(Markdown(identity.variants_verdict(t)))"),
]}
