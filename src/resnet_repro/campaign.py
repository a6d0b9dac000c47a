"""A training campaign on one machine: a priority queue of runs that outlives sessions and interruptions.

`make campaign PRESET=quarter` starts a supervisor in the background (its own session, so it outlives the
command) that trains `experiments.CAMPAIGNS[name]` in order with N workers, each a `train` subprocess pinned
to its own cores with its own thread count, so that the total number of torch threads never exceeds the
cores. After a CIFAR run finishes, the same worker computes its layer stds (Fig. 7), block lesions and
gradient flow at the final weights (and the loss landscape of experiments.LANDSCAPE_NETS, seed 0). Finished runs are skipped; started ones resume from their last
checkpoint (train.py writes one atomically every `ckpt_every` eval intervals), so stopping the campaign at
any moment, by `make campaign-stop`, a kill or a machine stop, loses at most one checkpoint interval.
With a deadline (`make campaign UNTIL=02:10`, the end of a session), a worker starts the first queued run that is
estimated to finish, analysis included, before it (the first in order where none does) and the campaign stops there.
On a CPU without native bf16 (no AVX512_BF16 or AMX: autocast emulates it, many times slower than fp32) the workers
leave the bf16 runs to a CPU that has it and train the queue's fp32 runs.

The campaign runs the code of one commit, checked out as a git worktree under .campaign/code/<commit>, and
writes into this checkout's results/: code edited meanwhile does not change a run halfway, and each
session line of a run (sessions.jsonl) records the commit that trained it.

    .campaign/state.json        the supervisor: pid, commit, workers, threads, what each worker runs
    .campaign/campaign.log      what the supervisor did
    .campaign/logs/<run>.log    each run's training and analysis output

Starting, stopping and pausing the supervisor live in campaign_control.py, `make campaign-status` in
campaign_status.py. This module imports neither torch nor lightning: status, pause and resume answer at once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .experiments import CAMPAIGN_LANDSCAPE, CAMPAIGNS, LANDSCAPE_NETS
from .paths import WEIGHTS as WEIGHTS_FILE, has_final_weights, run_path

HOME = Path(".campaign")
STATE = HOME / "state.json"
LOG = HOME / "campaign.log"
ANALYSIS_FILES = ("layer_std.csv", "lesion.csv", "gradflow_final.csv")  # per finished CIFAR run


@dataclass(frozen=True)
class Job:
    preset: str
    arch: str
    seed: int
    overrides: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def name(self) -> str:
        return f"{self.preset}/{self.arch}/seed{self.seed}"

    def run_dir(self, results: Path) -> Path:
        return run_path(results, self.preset, self.arch, self.seed)

    @property
    def cifar(self) -> bool:
        from .config import preset_family

        return preset_family(self.preset) == "cifar"

    @property
    def landscape(self) -> bool:
        """Whether this run's analysis includes its loss landscape (experiments.LANDSCAPE_NETS, seed 0)."""
        return self.cifar and self.arch in LANDSCAPE_NETS and self.seed == CAMPAIGN_LANDSCAPE["seed"]

    def analysis_files(self) -> tuple[str, ...]:
        """The files a finished run's analysis writes into its folder (none for an ImageNet-style run)."""
        if not self.cifar:
            return ()
        return ANALYSIS_FILES + (() if self.arch.startswith("resnet1202") else (WEIGHTS_FILE,)) + (
            ("landscape.json",) if self.landscape else ())

    def max_steps(self) -> int:
        return self._setting("max_steps")

    @property
    def precision(self) -> str:
        return self._setting("precision")

    def _setting(self, key: str):  # the run's value of a TrainConfig field: its override, its preset's, the default
        from .config import PRESETS, TrainConfig

        return self.overrides.get(key, PRESETS[self.preset].get(key, getattr(TrainConfig, key)))

    def train_args(self, data_dir: str | None, imagenet_dir: str | None = None) -> list[str]:
        """The train command of this run; CIFAR runs read data_dir, ImageNet-style runs imagenet_dir."""
        args = ["train", "--preset", self.preset, "--arch", self.arch, "--seed", str(self.seed), "--accelerator", "cpu"]
        data_dir = data_dir if self.cifar else imagenet_dir
        args += ["--data-dir", data_dir] if data_dir else []
        for k, v in self.overrides.items():
            args += ["--" + k.replace("_", "-"), ",".join(map(str, v)) if isinstance(v, (tuple, list)) else str(v)]
        return args


def queue(name: str) -> list[Job]:
    if name not in CAMPAIGNS:
        raise ValueError(f"no campaign {name!r}; defined in experiments.CAMPAIGNS: {', '.join(CAMPAIGNS)}")
    return [Job(p, a, s, dict(o)) for p, a, s, o in CAMPAIGNS[name]]


# ----------------------------------------------------------------------------- the state of a run


def last_logged(rd: Path) -> tuple[int, float | None, float | None]:
    """(iteration, elapsed_s, seconds per iteration over the last logged interval) from metrics.csv."""
    try:
        lines = (rd / "metrics.csv").read_text().splitlines()
    except FileNotFoundError:
        return 0, None, None
    if len(lines) < 2:
        return 0, None, None
    head = lines[0].split(",")
    rows = [dict(zip(head, ln.split(","))) for ln in lines[1:]]
    it, el = int(float(rows[-1]["iteration"])), float(rows[-1]["elapsed_s"] or "nan")
    # The median over the last (up to) 5 intervals: one interval that spanned a pause does not set the speed.
    steps = []
    tail = rows[-6:]
    for a, b in zip(tail, tail[1:]):
        i0, i1 = int(float(a["iteration"])), int(float(b["iteration"]))
        e0, e1 = float(a["elapsed_s"] or "nan"), float(b["elapsed_s"] or "nan")
        if i1 > i0 and e1 > e0:
            steps.append((e1 - e0) / (i1 - i0))
    spi = sorted(steps)[len(steps) // 2] if steps else None
    return it, el, spi


def is_locked(rd: Path) -> bool:
    """True while a process holds the run's lock (runfolder.lock_run), i.e. it is training now."""
    import fcntl

    if not (rd / ".lock").is_file():
        return False
    with open(rd / ".lock") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
    return False


def _landscape_as_queued(job: Job, rd: Path) -> bool:
    """A landscape run needs one on the campaign's grid and subset (one measured otherwise does not compare)."""
    if not job.landscape:
        return True
    meta = json.loads((rd / "landscape.json").read_text() or "{}")
    return all(meta.get(k) == CAMPAIGN_LANDSCAPE[k] for k in ("grid", "subset"))


def job_state(job: Job, results: Path) -> str:
    """'done' (trained and analysed), 'analysis' (trained, analysis missing), 'running', 'partial' or 'waiting'."""
    rd = job.run_dir(results)
    if (rd / "final.json").is_file():
        # The final weights may be the published file once the run has landed and its checkpoints are gone: an
        # analysis step left undone at landing (a landscape cut off by a session's end) still runs.
        needs = job.cifar and has_final_weights(rd) and not (
            all((rd / f).is_file() for f in job.analysis_files()) and _landscape_as_queued(job, rd))
        return "analysis" if needs else "done"
    if is_locked(rd):
        return "running"
    return "partial" if (rd / "checkpoints" / "last.ckpt").is_file() else "waiting"


# ----------------------------------------------------------------------------- the supervisor


def _log(msg: str) -> None:
    print(time.strftime("%Y-%m-%d %H:%M:%S ") + msg, flush=True)


def write_state(state: dict) -> None:
    tmp = STATE.with_suffix(".tmp")
    HOME.mkdir(exist_ok=True)
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(STATE)


def layout(workers: int | None, threads: int | None, ncpu: int) -> tuple[int, int]:
    """Workers and threads per worker; by default one worker on all cores. Measured on the 2-core EPYC: quarter
    ResNet-56 trains 0.44 s/it alone with 2 threads against 0.76 s/it each as one of two 1-thread workers, so two
    runs at once gain 16% throughput but each takes 1.7x as long, and a machine stop (the checkpoints live on its
    disk) loses both. Finishing one run at a time loses less."""
    if (workers is not None and workers < 1) or (threads is not None and threads < 1):
        raise ValueError(f"workers and threads must be at least 1 (got {workers} workers, {threads} threads)")
    if workers is None and threads is None:
        return 1, ncpu
    if threads is None:
        return workers, max(1, ncpu // workers)
    return workers or max(1, ncpu // threads), threads


def _spawn(args: list[str], cores: list[int], threads: int, logfile: Path) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1")
    logfile.parent.mkdir(parents=True, exist_ok=True)
    out = open(logfile, "a")
    out.write(time.strftime("\n=== %Y-%m-%d %H:%M:%S ") + " ".join(args) + "\n")
    out.flush()
    return subprocess.Popen([sys.executable, "-m", "resnet_repro", *args], stdout=out, stderr=subprocess.STDOUT,
                            env=env, preexec_fn=lambda: os.sched_setaffinity(0, cores))


def pick(todo: list[Job], now: float, until: float | None, need_s) -> Job:
    """The job a free worker starts: the first of `todo` (queue order) that `need_s(job)` seconds from `now` end
    before `until`; without a deadline, or where none fits or none has an estimate, the first (it checkpoints)."""
    if until is not None:
        for job in todo:
            if (need := need_s(job)) is not None and now + need <= until:
                return job
    return todo[0]


def supervise(name: str, workers: int, threads: int, data_dir: str | None, results: Path = Path("results"),
              poll_s: float = 5.0, imagenet_dir: str | None = None, until: float | None = None, needs=None,
              bf16: bool = True) -> int:
    """Train the queue to its end (or until SIGTERM/SIGINT, or the time `until`); return 0. Runs in the foreground of
    its process. needs(): at each choice under `until`, a need_s(job) giving the seconds a job still needs, analysis
    included (None: unknown), from the speeds measured by then.
    bf16=False: train no bf16 run (this CPU emulates bf16); their analysis, in fp32, still runs."""
    jobs = queue(name)
    ncpu = os.cpu_count() or 1
    if workers * threads > ncpu:
        raise ValueError(f"{workers} workers x {threads} threads > {ncpu} cores: that oversubscribes the CPU")
    cores = [list(range(i * threads, (i + 1) * threads)) for i in range(workers)]
    slots: list[dict | None] = [None] * workers
    failed: set[str] = set()
    stopping = []

    def stop(signum, frame):
        stopping.append(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    state = dict(pid=os.getpid(), name=name, workers=workers, threads=threads, data_dir=data_dir, imagenet_dir=imagenet_dir,
                 commit=os.environ.get("RESNET_REPRO_CAMPAIGN_COMMIT", "?"), started_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                 slots=[None] * workers, until=until)
    _log(f"campaign {name}: {len(jobs)} runs, {workers} workers x {threads} threads, commit {state['commit']}")
    if not bf16:
        _log("this CPU has no native bf16 (no AVX512_BF16 or AMX-BF16 flag): its bf16 runs wait for a CPU that has it")
    while not stopping:
        if until is not None and time.time() >= until:
            stopping.append(f"the deadline {time.strftime('%H:%M', time.localtime(until))}")
            break
        for i, slot in enumerate(slots):
            if slot is None or slot["proc"].poll() is None:
                continue
            job, phase, rc = slot["job"], slot["phase"], slot["proc"].returncode
            _log(f"worker {i}: {phase} {job.name} ended with exit code {rc} after {time.time() - slot['t0']:.0f}s")
            slots[i] = None
            if phase == "analysis" and rc == 0 and job_state(job, results) == "analysis":
                _log(f"worker {i}: {job.name} still lacks part of its analysis; not retried in this campaign")
                failed.add(job.name)  # else it would start again at every poll
            if rc != 0 and rc != 2:  # 2: a user error or a lock held elsewhere; either way not ours to retry now
                failed.add(job.name)
            elif rc == 2:
                failed.add(job.name)
        busy = {s["job"].name for s in slots if s}
        for i in range(workers):
            if slots[i] is not None:
                continue
            todo = [j for j in jobs if j.name not in busy and j.name not in failed
                    and (st := job_state(j, results)) not in ("done", "running")
                    and (bf16 or j.precision != "bf16-mixed" or st == "analysis")]
            if todo:
                job = pick(todo, time.time(), until, needs() if until is not None else None)
                st = job_state(job, results)
                logfile = HOME / "logs" / (job.name.replace("/", "_") + ".log")
                if st == "analysis":
                    args, phase = ["campaign", "post", "--run", str(job.run_dir(results))] + (
                        ["--data-dir", data_dir] if data_dir else []), "analysis"
                else:
                    args, phase = job.train_args(data_dir, imagenet_dir), "train"
                slots[i] = dict(job=job, phase=phase, proc=_spawn(args, cores[i], threads, logfile), t0=time.time())
                busy.add(job.name)
                _log(f"worker {i} (cores {cores[i]}): {phase} {job.name} (pid {slots[i]['proc'].pid})"
                     + (f", ahead of {todo[0].name}, which would not finish by the deadline" if job != todo[0] else ""))
        state["slots"] = [dict(job=s["job"].name, phase=s["phase"], pid=s["proc"].pid) if s else None for s in slots]
        state["failed"] = sorted(failed)
        write_state(state)
        if all(s is None for s in slots):
            _log(f"campaign {name}: nothing left to start ({len(failed)} failed: {', '.join(sorted(failed)) or 'none'})")
            break
        time.sleep(poll_s)
    if stopping:
        _log(f"campaign {name}: stopping on " + (f"signal {stopping[0]}" if isinstance(stopping[0], int) else stopping[0]))
        for s in slots:
            if s and s["proc"].poll() is None:
                s["proc"].terminate()
        deadline = time.time() + 30
        for s in slots:
            if s:
                try:
                    s["proc"].wait(max(0.1, deadline - time.time()))
                except subprocess.TimeoutExpired:
                    s["proc"].kill()
    state["slots"], state["ended_at"] = [None] * workers, time.strftime("%Y-%m-%dT%H:%M:%S%z")
    write_state(state)
    return 0


def post_analysis(run: Path, data_dir: str | None = None) -> None:
    """The published weights, layer stds (Fig. 7), block lesions and gradient flow at the final weights of one
    finished CIFAR run, and its loss landscape where Job.landscape says so. Each step skips a file already written."""
    from .analyze import analyze_preset
    from .studies.gradflow import gradflow_final
    from .studies.landscapes import landscape_preset
    from .studies.lesions import lesion_preset
    from .weights import export

    export(run)
    preset, arch, seed = run.parents[2].name, run.parent.name, int(run.name[len("seed"):])
    results = run.parents[3]
    analyze_preset(preset, results, data_dir, archs=[arch], seeds=[seed])
    gradflow_final(preset, results, data_dir, archs=[arch], seeds=[seed])
    lesion_preset(preset, results, data_dir, archs=[arch], seeds=[seed])
    if Job(preset, arch, seed).landscape:
        landscape_preset(preset, [arch], seed, CAMPAIGN_LANDSCAPE["grid"], subset=CAMPAIGN_LANDSCAPE["subset"],
                         results=results, data_dir=data_dir)
