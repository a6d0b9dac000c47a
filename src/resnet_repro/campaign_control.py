"""Control of the background campaign (campaign.py): start its supervisor, stop, pause and resume it, and hold it
while another command uses the cores (`make test`, benchmarks). Imports neither torch nor lightning."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .campaign import HOME, LOG, STATE, queue, write_state


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout.strip()


def read_state() -> dict | None:
    try:
        return json.loads(STATE.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def running_pid() -> int | None:
    """The supervisor's pid while it runs, else None."""
    s = read_state()
    if not s or "pid" not in s:
        return None
    try:
        cmd = Path(f"/proc/{s['pid']}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    return s["pid"] if b"campaign" in cmd and b"run" in cmd else None


def start(name: str, workers: int, threads: int, data_dir: str | None, imagenet_dir: str | None = None,
          until: float | None = None, slow_bf16: bool = False) -> int:
    queue(name)  # an unknown campaign fails here
    if (pid := running_pid()) is not None:
        raise ValueError(f"a campaign is already running (supervisor pid {pid}); `make campaign-status`")
    if workers * threads > (os.cpu_count() or 1):
        raise ValueError(f"{workers} workers x {threads} threads > {os.cpu_count()} cores: that oversubscribes the CPU")
    sha = _git("rev-parse", "HEAD")
    if _git("status", "--porcelain", "--untracked-files=no", "src"):
        print(f"[campaign] note: src/ has uncommitted changes; the campaign runs the committed code of {sha[:12]}")
    HOME.mkdir(exist_ok=True)
    code = (HOME / "code" / sha[:12]).resolve()
    for old in (HOME / "code").glob("*") if (HOME / "code").is_dir() else []:
        if old.resolve() != code:
            subprocess.run(["git", "worktree", "remove", "--force", str(old)], capture_output=True)
    subprocess.run(["git", "worktree", "prune"], capture_output=True)
    if not code.is_dir():
        _git("worktree", "add", "--detach", str(code), sha)
    env = dict(os.environ, PYTHONPATH=str(code / "src"), RESNET_REPRO_CAMPAIGN_COMMIT=sha)
    args = [sys.executable, "-m", "resnet_repro", "campaign", "run", "--name", name, "--workers", str(workers),
            "--threads", str(threads)] + (["--data-dir", data_dir] if data_dir else []) + (
                ["--imagenet-dir", imagenet_dir] if imagenet_dir else []) + (["--until", str(until)] if until else []) + (
                    ["--slow-bf16"] if slow_bf16 else [])
    (HOME / "paused").unlink(missing_ok=True)
    with open(LOG, "a") as log:
        p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                             start_new_session=True)
    write_state(dict(pid=p.pid, name=name, workers=workers, threads=threads, commit=sha, slots=[], until=until))
    print(f"[campaign] {name} started: supervisor pid {p.pid}, {workers} workers x {threads} threads, code of "
          f"{sha[:12]} ({code}); log {LOG}" + (f"; stops at {time.strftime('%H:%M', time.localtime(until))}"
                                               if until else ""))
    return 0


def signal_campaign(sig: int) -> int | None:
    """Send `sig` to the supervisor and its workers (one process group); the pid, or None if none runs."""
    pid = running_pid()
    if pid is not None:
        os.killpg(pid, sig)
    return pid


def stop(timeout_s: float = 60) -> int:
    pid = signal_campaign(signal.SIGCONT)
    if pid is None:
        print("[campaign] not running")
        return 0
    (HOME / "paused").unlink(missing_ok=True)
    os.kill(pid, signal.SIGTERM)  # the supervisor passes it on to its workers and waits for them
    deadline = time.time() + timeout_s
    while running_pid() is not None and time.time() < deadline:
        time.sleep(0.5)
    if running_pid() is not None:
        os.killpg(pid, signal.SIGKILL)
    print(f"[campaign] stopped (supervisor pid {pid}); started runs resume from their last checkpoint")
    return 0


def pause(on: bool) -> bool:
    """SIGSTOP (on) or SIGCONT the campaign; True if it was running and changed state."""
    flag = HOME / "paused"
    if running_pid() is None or flag.exists() == on:
        return False
    signal_campaign(signal.SIGSTOP if on else signal.SIGCONT)
    flag.touch() if on else flag.unlink(missing_ok=True)
    return True


def hold(cmd: list[str]) -> int:
    """Run cmd with the campaign paused (if it runs), then resume it: the two never share the cores."""
    paused = pause(True)
    if paused:
        print("[campaign] paused while this command runs", flush=True)
    try:
        return subprocess.call(cmd)
    finally:
        if paused:
            pause(False)
            print("[campaign] resumed", flush=True)
