"""How much of the paper's training budget does each claim need? (issue 18)

One study, read only from the collected CSVs of the CIFAR presets that have runs (`short` 1/16, `quarter` 1/4,
`paper` 1): the final test error of each net against the fraction of the paper's schedule, with the seed spread,
and for each of the paper's claims (claims.CLAIMS) whether it holds at each budget and the smallest budget at
which it does. Writes results/budget.csv, results/budget_claims.csv, figures/budget.png|pdf, report/budget.md;
`make budget` (after `make collect` of the presets) also executes notebooks/budget.ipynb from them.

A study across presets (studies.ACROSS_PRESETS): it reads what the per-preset studies collected, through the
`load` it is given (collect.load_collected), so it sits above them and imports none of them. At the full schedule
it also reads the bf16 check's table (precision.csv_path), the one measured difference between our `paper` runs and
the public final-iterate reproduction.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure
from nbformat.v4 import new_code_cell, new_markdown_cell
import pandas as pd

from ..claims import CLAIMS, beyond_noise, holds
from ..config import PRESETS, TrainConfig, make_config
from ..experiments import CIFAR_NETS
from ..paper import FINAL_REPRO, FINAL_REPRO_N, FINAL_REPRO_NOTE, PAPER_CIFAR
from ..plotting import arch_color, arch_label
from ..wording import data_name, devices_text
from . import precision  # the other study across presets; it imports no study

COMMAND = "budget"
HELP = ("final error vs fraction of the paper's schedule, and the smallest budget at which each claim holds "
        "(reads collected CSVs of short, quarter, paper)")
PRESETS_BY_BUDGET = ("short", "quarter", "paper")  # the CIFAR presets that differ only in schedule length


def fraction(preset: str) -> float:
    return make_config(preset).max_steps / TrainConfig.max_steps


def frac_label(f: float) -> str:
    return "1" if f == 1 else f"1/{1 / f:.0f}"


def tables(results: str | Path, load) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per net and budget: n, mean/std/min/max test error and precisions; per claim and budget: holds, note)."""
    rows, claim_rows = [], []
    for preset in PRESETS_BY_BUDGET:
        t = load(preset, results)
        runs = t["runs"]
        if runs.empty:
            continue
        f = fraction(preset)
        for arch, g in runs.groupby("arch"):
            e = 100 * g.final_test_err.astype(float)
            rows.append(dict(arch=arch, preset=preset, fraction=f, n=len(g), mean_test_err_pct=e.mean(),
                             std_test_err_pct=e.std(ddof=1) if len(g) > 1 else float("nan"), min_test_err_pct=e.min(),
                             max_test_err_pct=e.max(), precision=",".join(sorted(set(g.precision.dropna().astype(str))))
                             if "precision" in g else "", device=devices_text(g.device),
                             data=data_name(g)))
        clear = beyond_noise(t)
        for claim, (ok, note) in holds(t).items():
            claim_rows.append(dict(claim=claim, preset=preset, fraction=f, holds=ok, beyond_noise=clear[claim], note=note))
    return pd.DataFrame(rows), pd.DataFrame(claim_rows, columns=["claim", "preset", "fraction", "holds", "beyond_noise",
                                                                 "note"])


def _data(per_net: pd.DataFrame) -> str:
    """The training data of every point, as the run folders record it ('lossy JPEG copy of CIFAR-10')."""
    found = sorted(set(per_net["data"].dropna())) if "data" in per_net else []
    return "data: " + ("; ".join(found) if found else "no runs yet")


def figure(per_net: pd.DataFrame):
    fig = Figure(figsize=(10, 3.8))  # no pyplot: importing a study leaves the backend alone
    axes = fig.subplots(1, 2, sharey=True)
    for ax, family in zip(axes, ("plain", "resnet")):
        for arch in (a for a in CIFAR_NETS if a.startswith(family)):
            g = per_net[per_net.arch == arch].sort_values("fraction")
            if g.empty:
                continue
            color = arch_color(arch)  # the colours of every other figure
            ax.plot(g.fraction, g.mean_test_err_pct, "o-", color=color, label=arch_label(arch))
            ax.vlines(g.fraction, g.min_test_err_pct, g.max_test_err_pct, color=color, alpha=0.6)  # seed range
            if arch in FINAL_REPRO:  # where the full schedule lands in a public final-iterate reproduction
                mean, std = FINAL_REPRO[arch]
                ax.errorbar([1.0], [mean], yerr=[std], fmt="D", mfc="none", color=color, ms=7, capsize=3)
        if ax.containers:  # one legend entry for the diamonds; their colour says the net
            ax.plot([], [], "D", mfc="none", color="gray", label=f"public repro, final iterate (n={FINAL_REPRO_N})")
        ax.set_xscale("log", base=2)
        ticks = [fraction(p) for p in PRESETS_BY_BUDGET]
        ax.set_xticks(ticks, [frac_label(x) for x in ticks])
        ax.set(title=f"{'plain' if family == 'plain' else 'ResNet'}: final test error", xlabel="fraction of the paper's schedule")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # a panel with no net drawn gets no empty legend
            ax.legend(fontsize=8, loc="best")
    axes[0].set_ylabel("test error (%), mean over seeds (bar: seed range)")
    fig.suptitle(f"Budget: final iterate vs schedule length; {_data(per_net)}; 1/16 and 1/4 are SCALED-DOWN "
                 "presets (short, quarter)", fontsize=9)
    fig.tight_layout()
    return fig


NONE_YET = "none of the budgets run so far"


def _is_true(v) -> bool:
    return v is True or (not pd.isna(v) and str(v) == "True")  # read back from a CSV, a bool or NaN becomes text


def smallest(claims: pd.DataFrame, beyond: bool = False) -> dict[str, str]:
    """Each claim's smallest budget at which it holds; with `beyond`, at which it holds beyond the measured noise."""
    out = {}
    for claim in CLAIMS:
        g = claims[claims.claim == claim]
        ok = g.holds.map(_is_true) & (g.beyond_noise.map(_is_true) if beyond else True)
        g = g[ok].sort_values("fraction")
        out[claim] = frac_label(g.fraction.iloc[0]) if len(g) else NONE_YET
    return out


DIAMONDS = (f"Hollow diamonds at 1: a public reproduction's final iterates at the full schedule ({FINAL_REPRO_NOTE}), "
            "where a net's line would end if this code and data matched it.")


GAP_HEAD = "## At the full schedule: ours beside the public final-iterate reproduction"


def read_check(results: str | Path) -> pd.DataFrame:
    """The bf16 check's runs (results/short-bf16/precision_check.csv), empty where `make precision-check` never ran."""
    f = precision.csv_path(results)
    return pd.read_csv(f) if f.is_file() else pd.DataFrame()


def gap_markdown(per_net: pd.DataFrame, check: pd.DataFrame) -> str:
    """Net by net at budget 1: ours − the public final-iterate reproduction, and what is known of each difference
    between the two: precision (measured, at 1/16 only, by the bf16 check), training images and data (not measured)."""
    full = per_net[(per_net.fraction == 1) & per_net.arch.isin(list(FINAL_REPRO))] if len(per_net) else per_net
    if full.empty:
        return "_No net of the public reproduction has a finished run at the full schedule (`paper`) yet._"
    prec = precision.verdict_table(check) if len(check) else pd.DataFrame(columns=["arch"])
    lines = []
    for r in full.sort_values("arch").itertuples():
        mean, std = FINAL_REPRO[r.arch]
        d = r.mean_test_err_pct - mean
        p = prec[prec.arch == r.arch]
        if "bf16" not in str(r.precision):
            ptxt = f"ours trained in {r.precision}, as theirs in fp32: no difference"
        elif p.empty:
            ptxt = "bf16 against fp32 not measured for this net"
        else:
            q, dq = p.iloc[0], float(p.iloc[0]["diff"])  # q.diff would be Series.diff
            spread = ("seed spread unknown" if pd.isna(q.spread) else ("larger than" if abs(dq) > q.spread else "within")
                      + f" the seed spread, up to {100 * q.spread:.2f} points")
            ptxt = (f"bf16 − fp32 = {100 * dq:+.2f} points at 1/16 (`short`, scaled-down; n={q.n_bf16}/{q.n_fp32}; "
                    f"{spread}), not measured at the full schedule")
        lines.append(f"- **{arch_label(r.arch)}:** ours {r.mean_test_err_pct:.2f}% (n={r.n}) against {mean:.2f} ± "
                     f"{std:.2f}% (n={FINAL_REPRO_N}): {d:+.2f} points, {d / std:+.1f} of their seed std. "
                     f"Precision: {ptxt}.")
    data = "; ".join(sorted(set(full["data"].dropna()))) if "data" in full else "unknown"
    data = (f"ours the {data}, theirs the official files: the cost of the compression is not measured, for want of a "
            "lossless copy on this machine" if "lossy" in data else f"ours {data}, theirs the official files")
    lines += ["", "The other differences known are not measured here. Training images: ours all "
              f"{PAPER_CIFAR['train_images'] // 1000}k, theirs {PAPER_CIFAR['split'][0] // 1000}k, "
              f"which if anything favours ours. Data: {data}. Seeds: theirs is a mean of {FINAL_REPRO_N}; ours "
              "need n ≥ 2 at the full schedule to give a spread of their own."]
    return "\n".join(lines)


def report_text(per_net: pd.DataFrame, claims: pd.DataFrame, check: pd.DataFrame | None = None) -> str:
    lines = ["# How much of the paper's budget does each claim need?", "",
             "Generated by `make budget` from `results/<preset>/runs.csv`, `curves.csv` and `layer_std.csv` of "
             f"{', '.join(f'`{p}` ({frac_label(fraction(p))})' for p in PRESETS_BY_BUDGET)}; final iterates, "
             f"{_data(per_net)}; `short` and `quarter` are **scaled-down** schedules. A claim holds at a budget "
             "when its inequality holds on the means over seeds; it holds *beyond the noise* when the difference is "
             "also larger than the seed spread (where measured) and, for test errors, than the test set's sampling "
             "noise, paired where the runs' test outcomes exist (Fig. 7's layer stds need two seeds of each net); "
             "the note says n and which.", "", "## Claims by budget", ""]
    if claims.empty:
        return "\n".join(lines + ["_No collected runs yet._"]) + "\n"
    lines += [claims_markdown(claims), "", "## Final test error by budget (%)", "", table_markdown(per_net),
              "", "![budget](../figures/budget.png)", "", DIAMONDS, "", GAP_HEAD, "",
              gap_markdown(per_net, pd.DataFrame() if check is None else check), ""]
    return "\n".join(lines)


def claims_markdown(claims: pd.DataFrame) -> str:
    """Each claim's smallest budget at which it holds, then its verdict at every budget with the note."""
    first, clear, lines = smallest(claims), smallest(claims, beyond=True), []
    for claim in CLAIMS:
        noise = "" if first[claim] == clear[claim] == NONE_YET else f"; beyond the noise: **{clear[claim]}**"
        lines.append(f"- **{claim}:** smallest budget at which it holds: **{first[claim]}**{noise}.")
        for r in claims[claims.claim == claim].itertuples():
            verdict = "n/a" if r.holds is None or pd.isna(r.holds) else ("holds" if r.holds else "does not hold")
            lines.append(f"  - {frac_label(r.fraction)} (`{r.preset}`): {verdict} ({r.note})")
    return "\n".join(lines)


def table_markdown(per_net: pd.DataFrame) -> str:
    lines = ["| net | budget | n | mean | std | min | max | precision | device |",
             "|---|---|---:|---:|---:|---:|---:|---|---|"]
    for r in per_net.sort_values(["arch", "fraction"]).itertuples():
        std = "–" if pd.isna(r.std_test_err_pct) else f"{r.std_test_err_pct:.2f}"
        lines.append(f"| {r.arch} | {frac_label(r.fraction)} | {r.n} | {r.mean_test_err_pct:.2f} | {std} | "
                     f"{r.min_test_err_pct:.2f} | {r.max_test_err_pct:.2f} | {r.precision} | {r.device} |")
    return "\n".join(lines)


# notebooks/budget.ipynb (`make budget`): the same figure, verdicts and table, read back from the CSVs written above
NOTEBOOK = ("budget", [
    new_markdown_cell(
        "# How much of the paper's budget does each claim need?\n\n"
        "The final test error of each net at each fraction of the paper's schedule that a preset trains ("
        + ", ".join(f"{frac_label(fraction(p))}: `{p}`" for p in PRESETS_BY_BUDGET) + "), and for each claim of the "
        "paper the smallest of these budgets at which it holds. Every fraction below 1 is a **scaled-down** "
        "schedule; every number is a final iterate (the test set selects nothing)."),
    new_code_cell("import pandas as pd\n"
                  "from resnet_repro.studies import budget\n"
                  "per_net = pd.read_csv(pathlib.Path(RESULTS) / 'budget.csv')\n"
                  "claims = pd.read_csv(pathlib.Path(RESULTS) / 'budget_claims.csv')\n"
                  "display(Image(filename=str(pathlib.Path(FIGURES) / 'budget.png')))\n"
                  "display(Markdown(budget.DIAMONDS))"),
    new_markdown_cell("## Claims by budget"),
    new_code_cell("display(Markdown(budget.claims_markdown(claims) if len(claims) else '_No collected runs yet._'))"),
    new_markdown_cell("## Final test error by budget (%)"),
    new_code_cell("display(Markdown(budget.table_markdown(per_net)))"),
    new_markdown_cell(GAP_HEAD),
    new_code_cell("display(Markdown(budget.gap_markdown(per_net, budget.read_check(RESULTS))))"),
])


def write(results: str | Path, figures: str | Path, report: str | Path, load) -> None:
    per_net, claims = tables(results, load)
    Path(results).mkdir(parents=True, exist_ok=True)
    per_net.to_csv(Path(results) / "budget.csv", index=False)
    claims.to_csv(Path(results) / "budget_claims.csv", index=False)
    Path(figures).mkdir(parents=True, exist_ok=True)
    fig = figure(per_net)
    for ext in ("png", "pdf"):
        fig.savefig(Path(figures) / f"budget.{ext}", dpi=120, metadata={"CreationDate": None} if ext == "pdf" else {})
    Path(report).mkdir(parents=True, exist_ok=True)
    (Path(report) / "budget.md").write_text(report_text(per_net, claims, read_check(results)))
    print(f"[budget] {len(per_net)} (net, budget) points, {len(claims)} claim checks -> {report}/budget.md")


assert all(p in PRESETS for p in PRESETS_BY_BUDGET)
