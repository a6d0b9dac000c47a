"""Issue 17: the GPU speed options are tested on the CPU for correctness (they stay off until measured on a GPU).
torch.compile (and its "reduce-overhead" mode, CUDA graphs on a GPU, ignored by a CPU) trains the same numbers as
the eager net, to float precision: inductor fuses and reorders the arithmetic, nothing else."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

ARGS = ["train", "--preset", "smoke", "--arch", "resnet8", "--max-steps", "4", "--eval-every", "2",
        "--milestones", "2,3", "--batch-size", "32", "--test-subset", "200", "--accelerator", "cpu"]


def run(data: Path, out: Path, *extra: str) -> list[dict]:
    p = subprocess.run([sys.executable, "-m", "resnet_repro", *ARGS, "--data-dir", str(data), "--out", str(out),
                        *extra], env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True, text=True,
                       timeout=900)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    with open(out / "smoke" / "runs" / "resnet8" / "seed0" / "metrics.csv") as fh:
        return [{k: float(v) for k, v in r.items() if v and k != "elapsed_s"} for r in csv.DictReader(fh)]


def test_compiled_training_matches_the_eager_net(full_cifar_dir, tmp_path):
    eager = run(full_cifar_dir, tmp_path / "eager")
    compiled = run(full_cifar_dir, tmp_path / "compiled", "--compile", "true", "--compile-mode", "reduce-overhead")
    assert [r["iteration"] for r in compiled] == [r["iteration"] for r in eager] == [2, 4]
    first, ref = compiled[0], eager[0]
    assert first["train_loss"] == pytest.approx(ref["train_loss"], rel=1e-4)
    assert first["test_loss"] == pytest.approx(ref["test_loss"], rel=1e-3)
    assert abs(first["test_err"] - ref["test_err"]) <= 2 / 200  # at most two of the 200 test images flip


def test_an_unknown_compile_mode_is_refused_before_anything_is_written(tmp_path, capsys):
    from resnet_repro import cli

    assert cli.main(ARGS + ["--compile", "true", "--compile-mode", "fastest", "--out", str(tmp_path / "o")]) == 2
    assert "compile_mode must be one of default, reduce-overhead, max-autotune" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_compiled_bf16_run_resumes_from_its_checkpoint_like_an_eager_one(full_cifar_dir, tmp_path):
    """The CPU campaign's setting (bf16 autocast, compiled net): stopped after its first checkpoint and resumed,
    it continues as the uninterrupted eager run does (bf16 tolerances), and its checkpoint holds the module's keys."""
    import torch

    from resnet_repro import runfolder, train
    from resnet_repro.config import make_config

    def cfg(out: Path, compile: bool):
        return make_config("smoke", arch="resnet8", seed=0, data_dir=str(full_cifar_dir), out=str(out), max_steps=4,
                           eval_every=2, milestones=(2, 3), batch_size=32, test_subset=200, accelerator="cpu",
                           precision="bf16-mixed", compile=compile)

    eager, compiled = cfg(tmp_path / "eager", False), cfg(tmp_path / "compiled", True)
    train.train(eager)
    assert train.train(compiled, stop_after=2) == {}
    rd = runfolder.run_dir(compiled)
    keys = torch.load(rd / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    assert keys and not any("_orig_mod" in k for k in keys)
    assert train.train(compiled)["iterations"] == 4

    def rows(c):
        with open(runfolder.run_dir(c) / "metrics.csv") as fh:
            return {int(float(r["iteration"])): {k: float(v) for k, v in r.items() if v} for r in csv.DictReader(fh)}

    got, ref = rows(compiled), rows(eager)
    assert sorted(got) == sorted(ref) == [2, 4]
    for it in (2, 4):
        assert got[it]["lr"] == ref[it]["lr"]
        assert got[it]["train_loss"] == pytest.approx(ref[it]["train_loss"], rel=2e-2)
        assert got[it]["test_loss"] == pytest.approx(ref[it]["test_loss"], rel=2e-2)
