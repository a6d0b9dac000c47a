"""Issue 18: the budget study reads collected CSVs of several presets and finds the smallest budget per claim."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from resnet_repro.collect import load_collected
from resnet_repro.studies import budget as B
from resnet_repro.claims import CLAIMS, holds


def write_preset(results: Path, preset: str, errs: dict[str, list[float]], train: dict[str, float]) -> None:
    d = results / preset
    d.mkdir(parents=True)
    rows, curves = [], []
    for arch, es in errs.items():
        for s, e in enumerate(es):
            rows.append(dict(arch=arch, seed=s, final_test_err=e, final_train_err=train.get(arch, e),
                             precision="bf16-mixed", device="cpu", preset=preset))
            for it in (100, 200):
                curves.append(dict(arch=arch, seed=s, iteration=it, metric="train_err", value=train.get(arch, e)))
    pd.DataFrame(rows).to_csv(d / "runs.csv", index=False)
    pd.DataFrame(curves).to_csv(d / "curves.csv", index=False)


def test_the_smallest_budget_per_claim(tmp_path):
    # 1/16: ResNet-56 worse than ResNet-20 (undertrained); 1/4: better, by more than the seed spread.
    write_preset(tmp_path, "short", {"resnet20": [0.19, 0.192], "resnet56": [0.22, 0.221], "plain20": [0.23],
                                     "plain56": [0.5]}, {"plain20": 0.22, "plain56": 0.55})
    write_preset(tmp_path, "quarter", {"resnet20": [0.12, 0.121], "resnet56": [0.10, 0.102], "plain20": [0.13],
                                       "plain56": [0.2]}, {"plain20": 0.1, "plain56": 0.15})
    per_net, claims = B.tables(tmp_path, load_collected)
    assert set(per_net.preset) == {"short", "quarter"}
    r56 = per_net[(per_net.arch == "resnet56") & (per_net.preset == "quarter")].iloc[0]
    assert r56.n == 2 and abs(r56.mean_test_err_pct - 10.1) < 1e-9 and r56.fraction == 0.25
    first = B.smallest(claims)
    assert first[CLAIMS[1]] == "1/4" and first[CLAIMS[0]] == "1/16" and first[CLAIMS[3]] == "1/16"
    assert first[CLAIMS[2]] == "none of the budgets run so far"  # no ResNet-110 anywhere
    text = B.report_text(per_net, claims)
    assert "does not hold" in text and "beyond the seed spread" in text and "scaled-down" in text


def test_degradation_must_hold_through_the_whole_run_not_only_at_the_end():
    runs = pd.DataFrame([dict(arch="plain20", seed=0, final_test_err=0.2, final_train_err=0.2),
                         dict(arch="plain56", seed=0, final_test_err=0.3, final_train_err=0.3)])
    curves = pd.DataFrame([dict(arch="plain20", seed=0, iteration=100, metric="train_err", value=0.5),
                           dict(arch="plain56", seed=0, iteration=100, metric="train_err", value=0.4),
                           dict(arch="plain20", seed=0, iteration=200, metric="train_err", value=0.2),
                           dict(arch="plain56", seed=0, iteration=200, metric="train_err", value=0.3)])
    ok, note = holds(dict(runs=runs, curves=curves, layer_std=pd.DataFrame()))[CLAIMS[0]]
    assert ok is False and "1 of 2 points" in note


def test_budget_writes_its_files(tmp_path):
    write_preset(tmp_path / "results", "short", {"resnet20": [0.19]}, {})
    B.write(tmp_path / "results", tmp_path / "figures", tmp_path / "report", load_collected)
    assert (tmp_path / "figures" / "budget.png").stat().st_size > 10_000
    assert (tmp_path / "results" / "budget_claims.csv").is_file() and (tmp_path / "report" / "budget.md").is_file()
