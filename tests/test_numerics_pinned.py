"""Issue 19: refactoring must not change training numerics. A smoke run on the generated CIFAR-10 copy gives the
metrics.csv stored in tests/data, bit for bit (regenerate it only for an intended change of numerics, and say so
in the commit: `python tests/test_numerics_pinned.py`)."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import torch

REFERENCE = Path(__file__).parent / "data" / "smoke_resnet20_metrics.csv"
COLUMNS = ["iteration", "lr", "train_loss", "train_err", "test_loss", "test_err"]


def run(data_dir: Path, out: Path) -> list[dict]:
    from resnet_repro import cli

    assert cli.main(["train", "--arch", "resnet20", "--preset", "smoke", "--data-dir", str(data_dir), "--out", str(out),
                     "--max-steps", "4", "--eval-every", "2", "--milestones", "2,3", "--batch-size", "32",
                     "--test-subset", "200", "--accelerator", "cpu"]) == 0
    with open(out / "smoke" / "runs" / "resnet20" / "seed0" / "metrics.csv") as fh:
        return [{k: r[k] for k in COLUMNS} for r in csv.DictReader(fh)]


def test_a_smoke_run_reproduces_the_stored_metrics_bit_for_bit(full_cifar_dir, tmp_path):
    assert torch.get_num_threads() == 1  # conftest: the reference was made with one thread
    with open(REFERENCE) as fh:
        want = list(csv.DictReader(fh))
    assert run(full_cifar_dir, tmp_path) == want


if __name__ == "__main__":  # regenerate the reference (an intended change of numerics only)
    import tempfile

    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import write_official_batches

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as d:
        data = Path(d) / "cifar-10-batches-py"
        write_official_batches(data, n_per_batch=10_000, n_test=10_000, seed=1234)  # as conftest.full_cifar_dir
        rows = run(data, Path(d) / "out")
    with open(REFERENCE, "w", newline="") as fh:
        w = csv.DictWriter(fh, COLUMNS)
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {REFERENCE}")
