"""Issue 15, part 1: a run survives real interruptions.

A training process is killed with SIGKILL after its second checkpoint and rerun: it resumes from that checkpoint
and ends bit-identical to an uninterrupted run. A kill in the middle of a checkpoint write leaves the previous
checkpoint usable; a folder whose checkpoint was lost starts over with one session. Two processes on one run
folder: the second exits 2 naming the holder's pid. Settings that cannot train are refused before anything is
written.
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

from resnet_repro import cli, runfolder, train

MAX_STEPS = 40


def cmd(data: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "resnet_repro", "train", "--arch", "resnet20", "--preset", "smoke",
            "--data-dir", str(data), "--out", str(out), "--max-steps", str(MAX_STEPS), "--eval-every", "2",
            "--milestones", "20,30", "--ckpt-every", "1", "--batch-size", "32", "--test-subset", "200",
            "--accelerator", "cpu"]


def env() -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")  # the same threads in every process


def rundir(out: Path) -> Path:
    return out / "smoke" / "runs" / "resnet20" / "seed0"


def rows(rd: Path) -> list[dict]:
    with open(rd / "metrics.csv") as fh:
        return list(csv.DictReader(fh))


def ckpt_step(path: Path) -> int | None:
    try:
        return torch.load(path, map_location="cpu", weights_only=False)["global_step"]
    except (FileNotFoundError, EOFError, RuntimeError):
        return None


@pytest.fixture(scope="module")
def uninterrupted(full_cifar_dir, tmp_path_factory, session_cache):
    out = tmp_path_factory.mktemp("whole")
    e = env() | {"RESNET_REPRO_CACHE": str(session_cache)}
    subprocess.run(cmd(full_cifar_dir, out), env=e, check=True, capture_output=True)
    return rundir(out)


def test_sigkill_after_the_second_checkpoint_resumes_bit_identical(uninterrupted, full_cifar_dir, tmp_path):
    rd = rundir(tmp_path)
    last = rd / "checkpoints" / "last.ckpt"
    p = subprocess.Popen(cmd(full_cifar_dir, tmp_path), env=env(), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while (ckpt_step(last) or 0) < 4:  # the second checkpoint (one per eval interval of 2 iterations)
            assert p.poll() is None, "the run ended before it could be killed"
            assert time.time() < deadline
            time.sleep(0.05)
        p.send_signal(signal.SIGKILL)
        p.wait()
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == -signal.SIGKILL
    assert not (rd / "final.json").exists(), "killed too late: the run had finished"
    killed_at = ckpt_step(last)
    assert killed_at >= 4 and killed_at % 2 == 0
    # A half-written checkpoint of a later kill lies beside it; it must not matter.
    (last.parent / "last.ckpt.tmp").write_bytes(b"\x00" * 1000)

    subprocess.run(cmd(full_cifar_dir, tmp_path), env=env(), check=True, capture_output=True)
    sessions = [json.loads(s) for s in (rd / "sessions.jsonl").read_text().splitlines()]
    assert [s["from_iteration"] for s in sessions] == [0, killed_at]
    a, b = rows(rd), rows(uninterrupted)
    assert len(a) == len(b) == MAX_STEPS // 2
    for ra, rb in zip(a, b):
        for col in ("iteration", "lr", "train_loss", "train_err", "test_loss", "test_err"):
            assert ra[col] == rb[col], (ra["iteration"], col)
    fa, fb = (json.loads((d / "final.json").read_text()) for d in (rd, uninterrupted))
    for k in ("final_test_err", "final_train_err", "iterations", "params"):
        assert fa[k] == fb[k], k
    wa = torch.load(rd / "checkpoints" / "final.ckpt", weights_only=False)["state_dict"]
    wb = torch.load(uninterrupted / "checkpoints" / "final.ckpt", weights_only=False)["state_dict"]
    assert all(torch.equal(wa[k], wb[k]) for k in wb)


def test_a_folder_whose_checkpoint_was_lost_starts_over_with_one_session(uninterrupted, full_cifar_dir, tmp_path):
    # A machine kept the run folder of an earlier start but not its checkpoints (a wiped disk between sessions):
    # the rerun trains from iteration 0 and leaves no trace of the lost start in sessions.jsonl or metrics.csv.
    rd = rundir(tmp_path)
    rd.mkdir(parents=True)
    (rd / "config.json").write_bytes((uninterrupted / "config.json").read_bytes())
    lost = (uninterrupted / "metrics.csv").read_text().splitlines()[:4]
    (rd / "metrics.csv").write_text("\n".join(lost[:1] + [line.replace(",", ",9", 1) for line in lost[1:]]) + "\n")
    (rd / "sessions.jsonl").write_text(json.dumps(dict(from_iteration=0, host="lost")) + "\n")
    r = subprocess.run(cmd(full_cifar_dir, tmp_path), env=env(), check=True, capture_output=True, text=True)
    assert "[restart]" in r.stdout and "metrics.csv, sessions.jsonl" in r.stdout
    sessions = [json.loads(s) for s in (rd / "sessions.jsonl").read_text().splitlines()]
    assert [(s["from_iteration"], s["host"] == "lost") for s in sessions] == [(0, False)]
    a, b = rows(rd), rows(uninterrupted)
    assert [ra["test_err"] for ra in a] == [rb["test_err"] for rb in b] and len(a) == MAX_STEPS // 2


SLOW_WRITER = """
import sys, time
from pathlib import Path
from resnet_repro.runfolder import save_atomic

class Strategy:
    def barrier(self, name): pass

class SlowTrainer:  # writes the first half of a checkpoint, then hangs: the test kills it there
    is_global_zero, strategy = True, Strategy()
    def save_checkpoint(self, path):
        with open(path, "wb") as fh:
            fh.write(b"x" * 500_000)
            fh.flush()
            print("writing", flush=True)
            time.sleep(120)

save_atomic(SlowTrainer(), Path(sys.argv[1]))
"""


def test_a_kill_in_the_middle_of_a_checkpoint_write_leaves_the_previous_one(tmp_path):
    last = tmp_path / "last.ckpt"
    torch.save({"global_step": 6, "w": torch.arange(5)}, last)
    before = last.read_bytes()
    p = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(last)], stdout=subprocess.PIPE, text=True, env=env())
    try:
        assert p.stdout.readline().strip() == "writing"
        p.send_signal(signal.SIGKILL)
        p.wait()
    finally:
        if p.poll() is None:
            p.kill()
    assert (tmp_path / "last.ckpt.tmp").stat().st_size == 500_000  # the write was really under way
    assert last.read_bytes() == before
    assert ckpt_step(last) == 6


HOLDER = """
import sys, time
from pathlib import Path
from resnet_repro.runfolder import lock_run
fh = lock_run(Path(sys.argv[1]))
print("locked", flush=True)
time.sleep(120)
"""


def test_a_second_process_on_the_same_run_exits_2_naming_the_holder(full_cifar_dir, tmp_path, capsys):
    rd = rundir(tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(rd)], stdout=subprocess.PIPE, text=True, env=env())
    try:
        assert holder.stdout.readline().strip() == "locked"
        capsys.readouterr()
        assert cli.main(cmd(full_cifar_dir, tmp_path)[3:] + ["--max-steps", "2", "--milestones", "1"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error:") and f"pid {holder.pid}" in err[0], err
        assert not (rd / "config.json").exists()  # the refused process wrote nothing
    finally:
        holder.kill()
        holder.wait()
    # The lock dies with its holder, however it dies: the same command now trains.
    assert cli.main(cmd(full_cifar_dir, tmp_path)[3:] + ["--max-steps", "2", "--milestones", "1"]) == 0
    assert (rd / "final.json").is_file()


@pytest.mark.parametrize("flag,value,needle", [
    ("--batch-size", "0", "batch_size must be > 0"),
    ("--lr", "-0.1", "lr must be > 0"),
    ("--max-steps", "0", "max_steps must be > 0"),
    ("--ckpt-every", "0", "ckpt_every must be > 0"),
    ("--precision", "16-mixed", "precision must be one of"),
])
def test_settings_that_cannot_train_are_refused_before_any_file(flag, value, needle, full_cifar_dir, tmp_path,
                                                                 capsys):
    out = tmp_path / "out"
    args = cmd(full_cifar_dir, out)[3:] + [flag, value]
    capsys.readouterr()
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    assert not out.exists()
    # The corrected command is not refused (nothing was left behind to conflict with).
    ok = cmd(full_cifar_dir, out)[3:] + ["--max-steps", "2", "--milestones", "1"]
    assert cli.main(ok) == 0 and runfolder.run_dir(train.TrainConfig(preset="smoke", out=str(out))).is_dir()
