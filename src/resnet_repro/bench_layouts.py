"""How to spend a CPU's cores on training (issue 15, part 3): one process with every core's thread, or one
1-thread process per core, in fp32 or bf16 autocast, and what oversubscription (more torch threads than cores)
costs; and whether torch.compile (inductor) speeds up the campaign's layout.

`python -m resnet_repro bench-layouts` runs each layout as concurrent processes of this project's training path
(`bench.time_project`: the real LightningModule and data module, batch 128), started together after their set-up,
each pinned to its own cores unless the layout oversubscribes. images/s is per process; the total is what the
machine trains. Writes results/bench/<device>-layouts.csv.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COLUMNS = ["layout", "processes", "threads_per_process", "precision", "compile", "pinned", "arch", "images_per_s_each",
           "images_per_s_total", "device", "torch", "commit", "timed_iters", "timestamp"]


def layouts(ncpu: int) -> list[tuple[int, int, str, bool]]:
    """(processes, threads each, precision, torch.compile): all cores in one process (eager and compiled), one
    process per core, and oversubscribed."""
    return [(1, ncpu, "32-true", False), (1, ncpu, "bf16-mixed", False), (1, ncpu, "bf16-mixed", True),
            (ncpu, 1, "32-true", False), (ncpu, 1, "bf16-mixed", False), (ncpu, ncpu, "bf16-mixed", False)]


def worker(arch: str, threads: int, precision: str, warmup: int, iters: int, sync_dir: str, index: int,
           compile: bool = False) -> None:
    """One process of a layout: set up, wait for the others, time the training path, print {"s_per_iter": ...}."""
    import torch

    torch.set_num_threads(threads)
    from . import bench as B

    arrays, _ = B.bench_data(None)
    ready, go = Path(sync_dir) / f"ready{index}", Path(sync_dir) / "go"
    ready.touch()
    while not go.exists():
        time.sleep(0.05)
    # With compile, the first warm-up iteration compiles the net (about a minute here): untimed.
    s = B.time_project(arch, arrays, torch.device("cpu"), max(warmup, 1 if compile else 0), iters, compile=compile,
                       precision=precision)
    print(json.dumps({"s_per_iter": s}), flush=True)


def run_layout(arch: str, procs: int, threads: int, precision: str, warmup: int, iters: int,
               compile: bool = False) -> list[float]:
    ncpu = os.cpu_count() or 1
    pinned = procs * threads <= ncpu
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    with tempfile.TemporaryDirectory() as d:
        ps = []
        for i in range(procs):
            cores = set(range(i * threads, (i + 1) * threads)) if pinned else set(range(ncpu))
            ps.append(subprocess.Popen(
                [sys.executable, "-m", "resnet_repro", "bench-layouts", "--worker", str(i), "--arch", arch,
                 "--threads", str(threads), "--precision", precision, "--warmup", str(warmup), "--iters", str(iters),
                 "--sync-dir", d] + (["--compile"] if compile else []), stdout=subprocess.PIPE, text=True, env=env,
                preexec_fn=lambda c=cores: os.sched_setaffinity(0, c)))
        while not all((Path(d) / f"ready{i}").exists() for i in range(procs)):
            if any(p.poll() not in (None, 0) for p in ps):
                raise RuntimeError("a layout worker failed during set-up")
            time.sleep(0.05)
        (Path(d) / "go").touch()
        outs = [p.communicate()[0] for p in ps]
    if any(p.returncode for p in ps):
        raise RuntimeError(f"a layout worker failed: {[p.returncode for p in ps]}")
    return [json.loads(o.strip().splitlines()[-1])["s_per_iter"] for o in outs]


def run_layouts(arch: str = "resnet20", warmup: int = 5, iters: int = 30, out: str | Path = "results/bench") -> list[dict]:
    import torch

    from .bench import BATCH
    from .hardware import device_info
    from .runfolder import git_commit

    name, slug, *_ = device_info(torch.device("cpu"))
    rows = []
    for procs, threads, precision, compile in layouts(os.cpu_count() or 1):
        secs = run_layout(arch, procs, threads, precision, warmup, iters, compile)
        each = [BATCH / s for s in secs]
        pinned = procs * threads <= (os.cpu_count() or 1)
        label = (f"{procs} x {threads} thread{'s' * (threads > 1)}, {precision}" + (", torch.compile" if compile else "")
                 + ("" if pinned else " (oversubscribed)"))
        rows.append(dict(layout=label, processes=procs, threads_per_process=threads, precision=precision,
                         compile=compile, pinned=pinned, arch=arch,
                         images_per_s_each=" ".join(f"{v:.1f}" for v in each),
                         images_per_s_total=round(sum(each), 1), device=name, torch=torch.__version__,
                         commit=git_commit(), timed_iters=iters, timestamp=time.strftime("%Y-%m-%dT%H:%M:%S%z")))
        print(f"[bench-layouts] {label:<40} {rows[-1]['images_per_s_total']:8.1f} images/s in total "
              f"({rows[-1]['images_per_s_each']} each)", flush=True)
    Path(out).mkdir(parents=True, exist_ok=True)
    path = Path(out) / f"{slug}-layouts.csv"
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, COLUMNS)
        w.writeheader()
        w.writerows(rows)
    print(f"[bench-layouts] wrote {path}")
    return rows
