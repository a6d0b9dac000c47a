"""Issue 19: refactoring must not change training numerics. A smoke run on the generated CIFAR-10 copy gives the
metrics.csv stored in tests/data, bit for bit on a CPU that has its own reference there (regenerate one only for an
intended change of numerics, and say so in the commit; `python tests/test_numerics_pinned.py` adds this CPU's).

CPU kernels differ by vendor and vector ISA: the same code gives losses that differ in the 7th digit on a 2-core AMD
EPYC and on an AVX-512 Intel Xeon. So each reference is named by the CPU it was made on (`cpu_key`), and a CPU
without one is held to every stored reference within a relative 1e-5 on the losses, exactly on lr and errors."""

from __future__ import annotations

import csv
import math
import re
import sys
from pathlib import Path

import torch

DATA = Path(__file__).parent / "data"
COLUMNS = ["iteration", "lr", "train_loss", "train_err", "test_loss", "test_err"]
LOSSES = ("train_loss", "test_loss")


def cpu_key() -> str:
    """The CPU model, torch's vector ISA for it and the torch version, as a file-name part."""
    from resnet_repro.hardware import cpu_model

    key = f"{cpu_model()}-{torch.backends.cpu.get_cpu_capability()}-torch{torch.__version__}"
    return re.sub(r"[^a-z0-9.]+", "-", key.lower()).strip("-")


def reference(key: str) -> Path:
    return DATA / f"smoke_resnet20_metrics.{key}.csv"


def read(path: Path) -> list[dict]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


def run(data_dir: Path, out: Path) -> list[dict]:
    from resnet_repro import cli

    assert cli.main(["train", "--arch", "resnet20", "--preset", "smoke", "--data-dir", str(data_dir), "--out", str(out),
                     "--max-steps", "4", "--eval-every", "2", "--milestones", "2,3", "--batch-size", "32",
                     "--test-subset", "200", "--accelerator", "cpu"]) == 0
    with open(out / "smoke" / "runs" / "resnet20" / "seed0" / "metrics.csv") as fh:
        return [{k: r[k] for k in COLUMNS} for r in csv.DictReader(fh)]


def close(got: list[dict], want: list[dict], rtol: float = 1e-5) -> bool:
    """Same rows, lr and errors exactly, losses within rtol."""
    return len(got) == len(want) and all(
        all(math.isclose(float(g[k]), float(w[k]), rel_tol=rtol) if k in LOSSES else g[k] == w[k] for k in COLUMNS)
        for g, w in zip(got, want))


def test_a_smoke_run_reproduces_the_stored_metrics(full_cifar_dir, tmp_path):
    assert torch.get_num_threads() == 1  # conftest: the references were made with one thread
    got = run(full_cifar_dir, tmp_path)
    stored = sorted(DATA.glob("smoke_resnet20_metrics.*.csv"))
    assert len(stored) >= 2, "the references of the AMD and the Intel CPU are missing"
    if reference(cpu_key()).is_file():
        assert got == read(reference(cpu_key())), f"not bit for bit on {cpu_key()}"
    for path in stored:  # every CPU's reference, within the tolerance
        assert close(got, read(path)), path.name


def test_the_tolerance_tells_a_numerics_change_from_kernel_noise():
    want = read(reference("amd-epyc"))
    noise = [{**r, "train_loss": str(float(r["train_loss"]) * (1 + 4e-7))} for r in want]
    changed = [{**r, "test_loss": str(float(r["test_loss"]) * (1 + 1e-3))} for r in want]
    flipped = [dict(want[0], test_err="0.5")] + want[1:]
    assert close(noise, want) and not close(changed, want) and not close(flipped, want) and not close(want[:1], want)


if __name__ == "__main__":  # write this CPU's reference (a new CPU, or an intended change of numerics)
    import tempfile

    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import write_official_batches

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as d:
        data = Path(d) / "cifar-10-batches-py"
        write_official_batches(data, n_per_batch=10_000, n_test=10_000, seed=1234)  # as conftest.full_cifar_dir
        rows = run(data, Path(d) / "out")
    with open(reference(cpu_key()), "w", newline="") as fh:
        w = csv.DictWriter(fh, COLUMNS)
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {reference(cpu_key())}")
