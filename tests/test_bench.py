"""`python -m resnet_repro bench` runs end to end and writes a well-formed CSV (no speed thresholds)."""

import csv
import math

from resnet_repro import bench, hardware
from resnet_repro.cli import main

NUMERIC = ["images_per_s", "ms_per_iter", "ratio_vs_conventional", "train_gflop_per_iter", "achieved_tflops"]


def test_forward_flops_resnet20():
    # ResNet-20 is about 40.6M multiply-adds per 32x32 image (conv + FC), i.e. about 81 MFLOPs.
    assert 80e6 < hardware.forward_flops("resnet20") < 83e6


def test_bench_writes_csv(tmp_path, monkeypatch):
    monkeypatch.delenv("DATA_DIR", raising=False)
    monkeypatch.setattr(bench, "SYNTHETIC_N", 4096)  # fewer random images: the same code, a faster setup
    rc = main(["bench", "--archs", "resnet20", "--warmup", "1", "--iters", "2", "--out", str(tmp_path)])
    assert rc == 0
    files = list(tmp_path.glob("*.csv"))
    assert len(files) == 1
    with open(files[0], newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == bench.COLUMNS
        rows = list(reader)
    assert len(rows) >= 3
    assert {r["path"] for r in rows} >= {"conventional", "project", "bare-model"}
    for r in rows:
        assert r["arch"] == "resnet20"
        for c in NUMERIC:
            v = float(r[c])
            assert math.isfinite(v) and v > 0, (r["path"], c, r[c])
        for c in ("peak_tflops", "pct_of_peak"):  # empty only for a GPU missing from the peak table
            if r[c] != "":
                assert math.isfinite(float(r[c])) and float(r[c]) > 0
        assert r["peak_basis"]
        assert int(r["batch"]) == 128 and int(r["warmup_iters"]) == 1 and int(r["timed_iters"]) == 2
        assert "synthetic" in r["data_source"]
        assert r["commit"] and r["torch"] and r["lightning"] and r["device"] and r["timestamp"]
        assert abs(float(r["ms_per_iter"]) / 1e3 * float(r["images_per_s"]) - 128) < 0.5
    conv = next(r for r in rows if r["path"] == "conventional")
    assert float(conv["ratio_vs_conventional"]) == 1.0
    assert int(conv["workers"]) >= 0


def test_bench_layouts_cover_one_process_per_core_all_threads_and_oversubscription():
    from resnet_repro.bench_layouts import layouts

    got = layouts(4)
    assert (1, 4, "bf16-mixed", False) in got and (4, 1, "bf16-mixed", False) in got and (1, 4, "32-true", False) in got
    assert (1, 4, "bf16-mixed", True) in got  # the campaign's layout, compiled
    assert any(p * t > 4 for p, t, _, _ in got)  # the collapse is measured, not assumed


def test_a_layout_runs_its_processes_through_the_project_training_path():
    from resnet_repro.bench_layouts import run_layout

    secs = run_layout("resnet20", procs=1, threads=1, precision="bf16-mixed", warmup=0, iters=1)
    assert len(secs) == 1 and 0 < secs[0] < 60
