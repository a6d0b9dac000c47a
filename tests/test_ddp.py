"""Issue 20: multi-device training (DDP). Two CPU processes (gloo) train a smoke run to the end, write one run folder
(one session line, final.json, final checkpoint), and train and evaluate like one process with BN over the same
halves of the batch (--bn-groups 2); a DDP run killed after a checkpoint resumes and ends as an uninterrupted one.

What "like" means, measured: the first evaluation interval agrees to float precision (training loss to 1e-5,
errors exactly, test loss to 1e-4). Later intervals drift apart by float noise that early training amplifies: two
one-process runs that differ only in their thread count (a different summation order) drift as far (test loss
2.984 vs 3.003 after 4 steps), so they are compared within 2%. Two bugs this test caught: the per-rank sums of the
training loss and error were module buffers, which DDP overwrites with rank 0's before each forward (the logged
training error and the warm-up check counted rank 0's half twice); and GroupBatchNorm2d updated its running
statistics once per slice where a DDP run keeps rank 0's.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ARGS = ["train", "--preset", "smoke", "--arch", "resnet20", "--eval-every", "2", "--batch-size", "32",
        "--test-subset", "200", "--accelerator", "cpu"]
SHORT = ["--max-steps", "6", "--milestones", "4,5"]
LONG = ["--max-steps", "40", "--milestones", "20,30", "--ckpt-every", "1"]


def command(data: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "resnet_repro", *ARGS, "--data-dir", str(data), "--out", str(out), *extra]


def env() -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def run(data: Path, out: Path, *extra: str) -> Path:
    p = subprocess.run(command(data, out, *extra), env=env(), capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    return out / "smoke" / "runs" / "resnet20" / "seed0"


def rows(rd: Path) -> list[dict]:
    with open(rd / "metrics.csv") as fh:
        return [{k: float(v) for k, v in r.items() if v and k != "elapsed_s"} for r in csv.DictReader(fh)]


def test_two_processes_train_one_run_like_one_process_with_two_bn_groups(full_cifar_dir, tmp_path):
    ddp = run(full_cifar_dir, tmp_path / "ddp", *SHORT, "--devices", "2")
    one = run(full_cifar_dir, tmp_path / "one", *SHORT, "--bn-groups", "2")
    assert len((ddp / "sessions.jsonl").read_text().splitlines()) == 1  # rank 1 writes nothing of its own
    final = json.loads((ddp / "final.json").read_text())
    assert final["iterations"] == 6 and final["n_devices"] == 2 and (ddp / "checkpoints" / "final.ckpt").is_file()
    a, b = rows(ddp), rows(one)
    assert [r["iteration"] for r in a] == [r["iteration"] for r in b] == [2, 4, 6]
    assert a[0]["train_err"] == b[0]["train_err"] and a[0]["test_err"] == b[0]["test_err"]
    assert a[0]["train_loss"] == pytest.approx(b[0]["train_loss"], rel=1e-5)
    assert a[0]["test_loss"] == pytest.approx(b[0]["test_loss"], rel=1e-4)
    for ra, rb in zip(a[1:], b[1:]):
        for k in ("train_loss", "test_loss"):
            assert ra[k] == pytest.approx(rb[k], rel=0.02), (ra["iteration"], k)


def ckpt_step(path: Path) -> int | None:
    try:
        return torch.load(path, map_location="cpu", weights_only=False)["global_step"]
    except (FileNotFoundError, EOFError, RuntimeError):
        return None


def test_a_ddp_run_killed_after_a_checkpoint_resumes_and_ends_as_an_uninterrupted_one(full_cifar_dir, tmp_path):
    whole = run(full_cifar_dir, tmp_path / "whole", *LONG, "--devices", "2")
    out = tmp_path / "killed"
    rd = out / "smoke" / "runs" / "resnet20" / "seed0"
    p = subprocess.Popen(command(full_cifar_dir, out, *LONG, "--devices", "2"), env=env(), start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while (ckpt_step(rd / "checkpoints" / "last.ckpt") or 0) < 4 and time.time() < deadline and p.poll() is None:
        time.sleep(0.05)
    os.killpg(p.pid, signal.SIGKILL)  # both ranks: the launcher and the process it started
    p.wait()
    assert not (rd / "final.json").is_file(), "the run ended before it could be killed"
    killed_at = ckpt_step(rd / "checkpoints" / "last.ckpt")
    assert killed_at and killed_at >= 4
    run(full_cifar_dir, out, *LONG, "--devices", "2")
    sessions = [json.loads(line) for line in (rd / "sessions.jsonl").read_text().splitlines()]
    assert len(sessions) == 2 and sessions[1]["from_iteration"] == killed_at
    assert rows(rd) == rows(whole)  # every logged number, bit for bit
    a, b = (torch.load(d / "checkpoints" / "final.ckpt", map_location="cpu", weights_only=False)["state_dict"]
            for d in (rd, whole))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
