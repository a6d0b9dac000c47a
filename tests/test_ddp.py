"""Issue 20: multi-device training (DDP) runs: two CPU processes (gloo) train a smoke run to the end, write one
run folder (one session line, final.json, final checkpoint), and train the same problem as one process with BN
over the same halves of the batch (--bn-groups 2).

Not yet equal within float tolerance (see the issue note): GroupBatchNorm2d updates its running statistics once per
half-batch, DDP's rank 0 once per step, so the evaluations differ; the training losses agree to about 0.1%."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

ARGS = ["train", "--preset", "smoke", "--arch", "resnet20", "--max-steps", "4", "--eval-every", "2",
        "--milestones", "2,3", "--batch-size", "32", "--test-subset", "200", "--accelerator", "cpu"]


def run(data: Path, out: Path, *extra: str) -> Path:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    p = subprocess.run([sys.executable, "-m", "resnet_repro", *ARGS, "--data-dir", str(data), "--out", str(out),
                        *extra], env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    return out / "smoke" / "runs" / "resnet20" / "seed0"


def test_two_processes_train_one_run_like_one_process_with_two_bn_groups(full_cifar_dir, tmp_path):
    ddp = run(full_cifar_dir, tmp_path / "ddp", "--devices", "2")
    one = run(full_cifar_dir, tmp_path / "one", "--bn-groups", "2")
    assert len((ddp / "sessions.jsonl").read_text().splitlines()) == 1  # rank 1 writes nothing of its own
    final = json.loads((ddp / "final.json").read_text())
    assert final["iterations"] == 4 and final["n_devices"] == 2 and (ddp / "checkpoints" / "final.ckpt").is_file()
    rows = [list(csv.DictReader(open(d / "metrics.csv"))) for d in (ddp, one)]
    assert [r["iteration"] for r in rows[0]] == [r["iteration"] for r in rows[1]] == ["2", "4"]
    a, b = float(rows[0][0]["train_loss"]), float(rows[1][0]["train_loss"])
    assert abs(a - b) / b < 0.01, (a, b)
