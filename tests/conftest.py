"""Shared fixtures and helpers: small generated CIFAR-10 copies in both on-disk formats, and a cache
folder that keeps every test away from ~/.cache/resnet_repro."""

from __future__ import annotations

import functools
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from resnet_repro import data as D
from resnet_repro.models import build_model, count_params, parse_arch

# One intra-op thread: the nets here are tiny per call, and on a shared machine a second OpenMP thread
# spin-waits for a busy core (resnet1202 forward+backward: ~1 s of CPU with 1 thread, ~50 s with 2).
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("resnet_repro_cache")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, session_cache):
    """No test reads or writes the user's cache or follows the user's $DATA_DIR.

    Tests that check the cache itself point RESNET_REPRO_CACHE at their own tmp dir on top of this."""
    monkeypatch.setenv("RESNET_REPRO_CACHE", str(session_cache))
    monkeypatch.delenv("DATA_DIR", raising=False)


# ----------------------------------------------------------------------------- generated data


def balanced_labels(n: int, rng: np.random.Generator) -> np.ndarray:
    """n labels covering all 10 classes (n >= 10), in random order."""
    assert n >= 10
    y = np.arange(n) % 10
    rng.shuffle(y)
    return y.astype(np.int64)


def write_official_batches(d: Path, n_per_batch: int, n_test: int, seed: int = 0) -> D.CifarArrays:
    """Write data_batch_1..5 and test_batch as the official pickles; return what a loader must read.

    The returned arrays are in the loader's layout: (N, 32, 32, 3) HWC uint8, int64 labels."""
    rng = np.random.default_rng(seed)
    d.mkdir(parents=True, exist_ok=True)
    xs, ys = [], []
    for name, n in [(f"data_batch_{i}", n_per_batch) for i in range(1, 6)] + [("test_batch", n_test)]:
        x = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        y = balanced_labels(n, rng) if n >= 10 else rng.integers(0, 10, n)
        with open(d / name, "wb") as fh:
            pickle.dump({"batch_label": name, "data": x, "labels": [int(v) for v in y],
                         "filenames": [f"{name}_{i}.png" for i in range(n)]}, fh, protocol=2)
        xs.append(x.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        ys.append(y.astype(np.int64))
    tx, ty = np.concatenate(xs[:5]), np.concatenate(ys[:5])
    return D.CifarArrays(tx, ty, xs[5], ys[5], "official-python-batches", str(d))


def write_imagefolder(d: Path, n_train_per_class: int, n_test_per_class: int, seed: int = 0,
                      classes=D.CIFAR10_CLASSES) -> dict[str, dict[str, list[np.ndarray]]]:
    """Write {train,test}/<class>/*.png with PIL; return {split: {class: [HWC uint8 image, ...]}}
    in file-name order."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    written: dict[str, dict[str, list[np.ndarray]]] = {}
    for split, n in (("train", n_train_per_class), ("test", n_test_per_class)):
        written[split] = {}
        for c in classes:
            folder = d / split / c
            folder.mkdir(parents=True, exist_ok=True)
            imgs = []
            for i in range(n):
                a = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
                Image.fromarray(a).save(folder / f"{i:05d}.png")
                imgs.append(a)
            written[split][c] = imgs
    return written


@pytest.fixture(scope="session")
def full_cifar_dir(tmp_path_factory) -> Path:
    """A full-size CIFAR-10 copy in the official format: 50,000 train and 10,000 test random images."""
    d = tmp_path_factory.mktemp("cifar_full") / "cifar-10-batches-py"
    write_official_batches(d, n_per_batch=10_000, n_test=10_000, seed=1234)
    return d


# ----------------------------------------------------------------------------- models


@functools.lru_cache(maxsize=None)
def param_count(name: str) -> int:
    """Parameter count of a registered net, built once per test session (1202-layer nets are slow)."""
    return count_params(build_model(name))


# ----------------------------------------------------------------------------- the beyond-the-paper studies' tests


@pytest.fixture
def tiny_cifar() -> D.CifarArrays:
    """256 training and 40 test images of noise, balanced labels: enough for a study's code path, fast."""
    rng = np.random.default_rng(0)
    tx = rng.integers(0, 256, (256, 32, 32, 3), dtype=np.uint8)
    vx = rng.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
    return D.CifarArrays(tx, np.arange(256) % 10, vx, np.arange(40) % 10, "imagefolder-jpeg (lossy)", "synthetic")


def randomize_bn(model: torch.nn.Module) -> torch.nn.Module:
    """Non-trivial BN statistics and affine parameters, as a trained net has."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.3, 0.3)
    return model


def final_json(arch: str) -> str:
    """A finished run's final.json with the fields collect and the report read."""
    return json.dumps(dict(arch=arch, seed=0, depth=parse_arch(arch).depth, residual=parse_arch(arch).residual,
                           params=1, iterations=4000, final_test_err=0.2, final_train_err=0.1, wall_time_s=60.0,
                           device="cpu", commit="0" * 40, data_source="imagefolder-jpeg (lossy)", precision="bf16-mixed"))
