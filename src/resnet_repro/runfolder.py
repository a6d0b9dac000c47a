"""The run folder, owned here: where a run lives, what it writes while training (metrics.csv, crash-safe
checkpoints, its lock), the provenance every measurement records (code commit, device), and how later steps find
finished runs and load their final weights.

    <out>/<preset>/runs/<arch>/seed<k>/
        config.json    the resolved TrainConfig
        metrics.csv    one row per eval interval (METRIC_COLUMNS)
        final.json     final-iterate errors, params, wall time, versions, device (and every session's), commit,
                       data source
        sessions.jsonl one line per training session: start time, commit, host, device, the iteration it resumed
                       from
        checkpoints/   last.ckpt while training (resume), final.ckpt at the end (weights only; not in git)
        .lock          held (flock) by the process training the run; a second process on the folder exits 2
"""

from __future__ import annotations

import csv
import fcntl
import json
import os
import platform
import subprocess
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only

from . import data as D
from .config import TrainConfig
from .hardware import NO_NATIVE_BF16, device_name
from .models import ResNet, build_model, parse_arch
from .paths import has_final_weights, run_path, runs_root
from .weights import final_state

METRIC_COLUMNS = ["iteration", "lr", "train_loss", "train_err", "test_loss", "test_err", "val_loss", "val_err",
                  "elapsed_s"]


# ----------------------------------------------------------------------------- logger


class RunCSVLogger(Logger):
    """Writes metrics.csv with fixed columns, one row per iteration that logged something."""

    def __init__(self, path: Path, keep_until: int | None = None):
        super().__init__()
        self.path = Path(path)
        self.rows: dict[int, dict] = {}
        if keep_until is not None and self.path.is_file():  # resuming: keep rows up to the checkpoint
            with open(self.path) as fh:
                for r in csv.DictReader(fh):
                    it = int(float(r["iteration"]))
                    if it <= keep_until:
                        self.rows[it] = {k: float(v) for k, v in r.items() if v != ""} | {"iteration": it}

    @property
    def name(self):
        return "run"

    @property
    def version(self):
        return 0

    @rank_zero_only
    def log_hyperparams(self, params, *args, **kwargs):
        pass

    @rank_zero_only
    def log_metrics(self, metrics: dict, step: int | None = None):
        step = int(metrics.get("iteration", step))  # the module logs the true iteration count
        row = self.rows.setdefault(step, {"iteration": step})
        for k, v in metrics.items():
            col = k.replace("/", "_")
            if col in METRIC_COLUMNS and col != "iteration":
                row[col] = float(v)
        self.save()

    @rank_zero_only
    def save(self):
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, METRIC_COLUMNS, extrasaction="ignore")
            w.writeheader()
            for it in sorted(self.rows):
                w.writerow(self.rows[it])
        tmp.replace(self.path)


# ----------------------------------------------------------------------------- crash-safe checkpoints


class ResumeCheckpoint(Callback):
    """last.ckpt every `every` eval intervals, written atomically: temporary file, fsync, rename.

    (Lightning's ModelCheckpoint with save_top_k=0 writes no last.ckpt before training ends, so an
    interrupted run had nothing to resume from.)"""

    def __init__(self, path: Path, every: int, end: int):
        self.path, self.every, self.end = Path(path), every, end  # end: the run's last iteration (final.ckpt)

    def on_train_epoch_end(self, trainer, pl_module):
        if (trainer.current_epoch + 1) % self.every == 0 and trainer.global_step < self.end:
            save_atomic(trainer, self.path)


def save_atomic(trainer: L.Trainer, path: Path) -> None:
    """trainer.save_checkpoint to `path` through a temporary file: a kill mid-write leaves the old file."""
    tmp = path.with_name(path.name + ".tmp")
    trainer.save_checkpoint(tmp)
    if trainer.is_global_zero:
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    trainer.strategy.barrier("resume-checkpoint")


class RunLocked(ValueError):
    """Another process is training this run folder."""


def lock_run(rd: Path):
    """Hold <rd>/.lock (flock, released by the OS when the process dies, however it dies); the pid is in it.

    Returns the open file, to keep for the process's lifetime; raises RunLocked if another process holds it."""
    rd.mkdir(parents=True, exist_ok=True)
    fh = open(rd / ".lock", "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        holder = fh.read().strip() or "?"
        fh.close()
        raise RunLocked(f"{rd} is being trained by another process (pid {holder}, lock {rd / '.lock'}); "
                        "wait for it or stop it") from None
    fh.seek(0)
    fh.truncate()
    fh.write(f"{os.getpid()}\n")
    fh.flush()
    return fh


# ----------------------------------------------------------------------------- the run


def run_dir(cfg: TrainConfig) -> Path:
    return run_path(cfg.out, cfg.preset, cfg.arch, cfg.seed)


def git_commit() -> str:
    try:
        root = Path(__file__).resolve().parents[2]
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "src"], cwd=root,
                               capture_output=True, text=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except Exception:
        return "unknown"


# Read once, when this module is imported: the commit of the code this process runs, even if the
# checkout moves on while a long grid is training.
CODE_COMMIT = git_commit()


def provenance(device: torch.device, arrays: D.CifarArrays, **extra) -> dict:
    """What a measurement on a finished run's weights records beside its numbers (analyze, lesions, landscapes,
    gradient flow): code commit, device, versions, threads and the data it read."""
    return dict(**extra, commit=CODE_COMMIT, device=device_name(device), torch=torch.__version__,
                python=platform.python_version(), threads=torch.get_num_threads(), data_source=arrays.source,
                data_path=str(Path(arrays.path).resolve()), created_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))


class RunExists(ValueError):
    """The run folder holds a run with a different configuration."""


def check_existing(rd: Path, cfg: TrainConfig) -> str:
    """'new', 'done' or 'resume'; raises RunExists when the folder belongs to another configuration."""
    if not (rd / "config.json").is_file():
        return "new"
    old = json.loads((rd / "config.json").read_text())
    # Settings that change speed or bookkeeping, not the numbers a run computes. Precision is not among them:
    # a run never mixes fp32 and bf16 sessions.
    ignore = {"data_dir", "out", "accelerator", "devices", "num_nodes", "num_workers", "compile", "compile_mode",
              "channels_last", "gradflow_every", "ckpt_every"}
    diff = {k for k in old if k not in ignore and old[k] != cfg.to_dict().get(k)}
    if diff:
        raise RunExists(f"{rd} holds a run with different settings ({', '.join(sorted(diff))}); "
                        f"pick another --out or delete that folder")
    if (rd / "final.json").is_file():
        return "done"
    return "resume" if (rd / "checkpoints" / "last.ckpt").is_file() else "new"


# What training writes beside config.json before final.json: a folder that holds them but no last.ckpt lost its
# checkpoint (a machine whose disk was wiped between sessions) and starts over.
TRAINING_FILES = ("metrics.csv", "sessions.jsonl", "gradflow.csv")


def clear_lost_start(rd: Path) -> list[str]:
    """Delete the files of an earlier start whose checkpoint is gone, so that the restart's sessions.jsonl and
    metrics.csv describe only the run that finishes; returns the names deleted."""
    stale = [name for name in TRAINING_FILES if (rd / name).is_file()]
    for name in stale:
        (rd / name).unlink()
    return stale


# ----------------------------------------------------------------------------- finished runs, for the steps after training


def run_config(run: Path) -> TrainConfig:
    """The resolved configuration a run folder was trained with."""
    return TrainConfig(**json.loads((run / "config.json").read_text()))


def load_final_model(run: Path, device: torch.device) -> ResNet:
    """The run's final weights, channels_last on a CPU (to match inference_batches)."""
    model = build_model(run_config(run).arch)
    model.load_state_dict(final_state(run))
    fmt = torch.channels_last if device.type == "cpu" else torch.contiguous_format
    return model.to(device, memory_format=fmt)


def finished_runs(preset: str, results: str | Path = "results") -> list[Path]:
    root = runs_root(results, preset)
    return sorted(p for p in root.glob("*/seed*") if (p / "final.json").is_file())


def runs_with_checkpoint(preset: str, results: str | Path = "results", archs=None, name: str = "analyze",
                         done=lambda run: False, seeds=None) -> list[Path]:
    """Finished CIFAR runs of `preset` (only `archs` and `seeds`, if given) that still need work and have their
    final checkpoint. `done(run)` drops a run silently; a run that needs work but has no checkpoint is reported."""
    out = []
    for run in finished_runs(preset, results):
        if (archs and run.parent.name not in archs) or (seeds is not None and run.name not in
                                                        {f"seed{k}" for k in seeds}) or done(run):
            continue
        try:
            if parse_arch(run.parent.name).family != "cifar":
                continue
        except ValueError:
            continue
        if not has_final_weights(run):
            print(f"[{name}] {run}: no final weights here (no checkpoint, no published file), skipped", flush=True)
            continue
        out.append(run)
    return out


def arrays_for(runs: list[Path], data_dir: str | None = None) -> dict:
    """CIFAR-10 arrays for the runs, loaded once per data folder and keyed by `data_key`."""
    cache: dict = {}
    for run in runs:
        key = data_key(run, data_dir)
        if key not in cache:
            cache[key] = D.load_cifar10(key)
    return cache


def data_key(run: Path, data_dir: str | None = None) -> str | None:
    """The data folder of a run: `data_dir` if given, else the one its config names."""
    return data_dir or run_config(run).data_dir


def session_devices(run: Path) -> list[str]:
    """The devices the run's training sessions ran on (sessions.jsonl), in order of first use: a run resumed on
    another machine trained at two speeds. Sessions from before the device was recorded count as "unrecorded"; a CPU
    without native bf16 is marked so (hardware.device_name)."""
    return list(dict.fromkeys(map(_session_device, read_sessions(run))))


def read_sessions(run: Path) -> list[dict]:
    """The run's sessions.jsonl, one dict per training session in the order they ran ([] without the file)."""
    f = Path(run) / "sessions.jsonl"
    return [json.loads(x) for x in (f.read_text().splitlines() if f.is_file() else []) if x.strip()]


def final_device(run: Path, final: dict) -> str | None:
    """final.json's device (its last session's), marked "no native bf16" where that session's line says so and the
    name does not (runs trained before hardware.device_name named it): what collect records as a run's device."""
    sessions, dev = read_sessions(run), final.get("device")
    return _session_device(dict(sessions[-1], device=dev)) if sessions and isinstance(dev, str) else dev


def _session_device(session: dict) -> str:
    """A session's device, marked "no native bf16" where its line says so and the name does not (sessions from
    before hardware.device_name named it)."""
    dev = session.get("device", "unrecorded")
    if session.get("native_bf16") is False and NO_NATIVE_BF16 not in dev and dev.endswith(")"):
        dev = f"{dev[:-1]}, {NO_NATIVE_BF16})"
    return dev


def seconds_per_iteration(run: Path, threads: int | None = None, native_bf16: bool | None = None,
                          device: str | None = None) -> float | None:
    """The median time per iteration over a run's evaluation intervals (from metrics.csv's elapsed_s): the speed
    the run trained at, which an interval spanning a pause or a restart does not move (None without two rows).
    The filters are interval_speeds'."""
    steps = interval_speeds(run, threads, native_bf16, device)
    return steps[len(steps) // 2] if steps else None


def interval_speeds(run: Path, threads: int | None = None, native_bf16: bool | None = None,
                    device: str | None = None) -> list[float]:
    """The seconds per iteration of each of a run's evaluation intervals (metrics.csv's elapsed_s), sorted.
    With `threads`, only the intervals trained by sessions with that many torch threads (sessions.jsonl); with
    `native_bf16`, only those of CPU sessions on a host with (True) or without (False) native bf16, which train at
    different speeds in fp32 too. Sessions from before that was recorded (2026-12-07) count as native: the CPU hosts
    measured until then (results/bench) had AVX-512. With `device`, only the intervals of sessions on that device
    (as session_devices names it): hosts of one kind still differ, by 1.6x between two native-bf16 CPUs."""
    m = Path(run) / "metrics.csv"
    rows = list(csv.DictReader(open(m))) if m.is_file() else []
    sessions = []
    if threads is not None or native_bf16 is not None or device is not None:
        # In the order they ran: a session cuts metrics.csv back to its from_iteration (a restart from 0 after a
        # lost checkpoint rewrites it all), so the latest session that started at or before an interval wrote it.
        sessions = [(d.get("from_iteration", 0),
                     (d.get("torch_threads"), d.get("native_bf16", True), _session_device(d)))
                    for d in read_sessions(run)]

    def trained_with(it: float):  # (threads, native bf16, device) of the latest session started at or before `it`
        return next((t for start, t in reversed(sessions) if start <= it), (None, None, None))

    def counted(it: float) -> bool:
        t, native, dev = trained_with(it)
        return ((threads is None or t == threads) and (native_bf16 is None or native == native_bf16)
                and (device is None or dev == device))

    steps = sorted((float(b["elapsed_s"]) - float(a["elapsed_s"])) / (float(b["iteration"]) - float(a["iteration"]))
                   for a, b in zip(rows, rows[1:])
                   if a.get("elapsed_s") and b.get("elapsed_s") and float(b["iteration"]) > float(a["iteration"])
                   and float(b["elapsed_s"]) > float(a["elapsed_s"])
                   and counted(float(a["iteration"])))
    return steps
