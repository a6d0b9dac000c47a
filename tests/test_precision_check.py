"""Issue 15: the bf16 check's decision rule, on synthetic run folders."""

from __future__ import annotations

import json
from pathlib import Path

from resnet_repro.studies import precision as P


def write(results: Path, preset: str, arch: str, seed: int, err: float) -> None:
    rd = results / preset / "runs" / arch / f"seed{seed}"
    rd.mkdir(parents=True)
    prec = "bf16-mixed" if preset == P.BF16 else "32-true"
    (rd / "final.json").write_text(json.dumps(dict(
        arch=arch, seed=seed, precision=prec, final_test_err=err, final_train_err=err - 0.01, iterations=4000,
        wall_time_s=600.0, iters_per_s=6.7, torch_threads=1, device="cpu", commit="abc", data_source="x")))
    (rd / "metrics.csv").write_text(f"iteration,test_err\n2000,{err + 0.05}\n4000,{err}\n")


def fill(results: Path, bf16_offset: dict[str, float], seeds=(0, 1)) -> None:
    base = {"resnet20": (0.190, 0.195), "plain20": (0.225, 0.230)}  # seed spread 0.5 points
    for arch, errs in base.items():
        for s in seeds:
            write(results, P.FP32, arch, s, errs[s])
            write(results, P.BF16, arch, s, errs[s] + bf16_offset[arch])


def test_bf16_within_the_seed_spread_is_accepted(tmp_path):
    fill(tmp_path, {"resnet20": 0.004, "plain20": -0.002})
    text, ok = P.verdict(P.runs(tmp_path))
    assert ok is True and "within the seed spread" in text and "trains in bf16-mixed" in text
    assert "+0.40 points" in text


def test_bf16_worse_by_more_than_the_spread_keeps_fp32(tmp_path):
    fill(tmp_path, {"resnet20": 0.0, "plain20": 0.02})
    text, ok = P.verdict(P.runs(tmp_path))
    assert ok is False and "worse by more than the seed spread" in text and "must train in fp32" in text


def test_undecided_until_both_seeds_of_both_nets_exist(tmp_path):
    fill(tmp_path, {"resnet20": 0.0, "plain20": 0.0}, seeds=(0,))
    text, ok = P.verdict(P.runs(tmp_path))
    assert ok is None and "not yet" in text and "no seed spread yet" in text


def test_write_makes_the_table_figure_and_report(tmp_path):
    fill(tmp_path / "results", {"resnet20": 0.001, "plain20": 0.001})
    assert P.write(tmp_path / "results", tmp_path / "figures", tmp_path / "report") is True
    assert (tmp_path / "figures" / P.BF16 / "precision_check.png").stat().st_size > 10_000
    md = (tmp_path / "report" / P.BF16 / "precision_check.md").read_text()
    assert "bf16-mixed" in md and "32-true" in md and "scaled-down" in md
    assert len((tmp_path / "results" / P.BF16 / "precision_check.csv").read_text().splitlines()) == 9


def test_a_net_without_pairs_is_left_out_not_invented(tmp_path):
    write(tmp_path, P.FP32, "resnet20", 0, 0.19)
    write(tmp_path, P.BF16, "resnet20", 0, 0.19)
    v = P.verdict_table(P.runs(tmp_path))
    assert list(v.arch) == ["resnet20"]
