"""`make campaign-status`: each queued run of a campaign (done, iteration k of n, or waiting), its speed and an ETA.

A net's speed is the median time per iteration over its runs' evaluation intervals, so an interval that spanned a
pause (`campaign hold` during tests) or a restart does not set it; a net with no run yet, or too few intervals, gets
a measured kindred net's speed, scaled by the ratio of their training FLOPs per step. Speeds measured on this host
come first: the campaign moves between hosts, and two of them with native bf16 trained the same net 1.6x apart.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import time
from pathlib import Path

from .campaign import HOME, LOG, Job, job_state, last_logged, layout, queue
from .campaign_control import read_state, running_pid
from .experiments import CAMPAIGNS

def _fmt_s(s: float | None) -> str:
    if s is None:
        return "?"
    return f"{s / 3600:.1f} h" if s >= 5400 else f"{s / 60:.0f} min"


# A net's speed counts once its runs have trained this many evaluation intervals (of the filters' kind): the first
# few of a session are noisy (quarter ResNet-20 seed 2 read 0.25 s/it over its first 3, against 0.09 s/it once
# trained on), and a net not yet measured over that many takes a measured net's speed scaled by FLOPs instead.
MIN_INTERVALS = 5


def seconds_per_iteration(jobs: list[Job], results: Path, threads: int | None = None,
                          native_bf16: bool | None = None, device: str | None = None) -> dict[tuple[str, str], float]:
    """Measured s/iteration (evaluations included) per (arch, precision) from this queue's runs, finished or not:
    the median over the evaluation intervals of all its runs (at least MIN_INTERVALS), so a pause (`campaign hold`)
    or a restart does not count, and a long run outweighs a just-started one; with `threads`, only intervals trained
    with that many torch threads (the campaign's layout now), with `native_bf16` only those on a CPU of that kind
    (this one's), with `device` only those on that device."""
    from .runfolder import interval_speeds  # torch and Lightning: only when speeds are needed

    pooled: dict[tuple[str, str], list[float]] = {}
    for j in jobs:
        rd = j.run_dir(results)
        prec = json.loads((rd / "config.json").read_text()).get("precision") if (rd / "config.json").is_file() else None
        pooled.setdefault((j.arch, prec), []).extend(interval_speeds(rd, threads, native_bf16, device))
    return {k: sorted(v)[len(v) // 2] for k, v in pooled.items() if len(v) >= MIN_INTERVALS}


def measured_speeds(jobs: list[Job], results: Path, threads: int | None, native_bf16: bool | None) -> tuple[dict, dict]:
    """(this CPU's speeds, the speeds of every CPU of its kind), for estimate: a campaign resumes on whichever host a
    session gets, and two native-bf16 hosts have trained the same net 1.6x apart."""
    import torch

    from .hardware import device_name

    here = seconds_per_iteration(jobs, results, threads, native_bf16, device_name(torch.device("cpu")))
    return here, seconds_per_iteration(jobs, results, threads, native_bf16)


def step_cost(job: Job) -> float:
    """A job's training FLOPs per iteration, up to a constant: forward FLOPs of one image x the batch size."""
    return _step_cost(job.arch, job.preset)


@functools.lru_cache(maxsize=None)
def _step_cost(arch: str, preset: str) -> float:
    from .config import make_config
    from .hardware import forward_flops

    c = make_config(preset)
    size = c.image_size if c.dataset == "imagefolder" else 32
    return float(forward_flops(arch, (3, size, size), c.num_classes)) * c.batch_size


def estimate(job: Job, measured: dict, precision: str, jobs: list[Job] | None = None,
             here: dict | None = None) -> float | None:
    """s/iteration of a job: measured for its net, else a measured net's (same precision; a net of the same dataset
    first, as FLOPs translate poorly between 32-px CIFAR and 64-px ImageNet-style steps; then the same family of
    nets, shortcuts alike, nearest in FLOPs) scaled by their training FLOPs per iteration. `here` (this host's
    speeds) comes first where it has the net or a net of the same dataset: FLOPs scale between nets better than one
    CPU's speed predicts another's."""
    if here and (spi := _from(job, here, precision, jobs, same_data=True)) is not None:
        return spi
    return _from(job, measured, precision, jobs, same_data=False)


def _from(job: Job, measured: dict, precision: str, jobs: list[Job] | None, same_data: bool) -> float | None:
    if (job.arch, precision) in measured:
        return measured[(job.arch, precision)]
    from .config import preset_family
    from .models import parse_arch

    first_job = {j.arch: j for j in reversed(jobs or [])}
    fam, data = parse_arch(job.arch).family, preset_family(job.preset)
    refs = [(first_job[a], spi) for (a, prec), spi in measured.items() if prec == precision and a in first_job
            and (not same_data or preset_family(first_job[a].preset) == data)]
    if not refs:
        return None
    # Among the closest kin, shortcuts or none alike (on the bf16 CPU a ResNet-32 step takes 1.3x a plain-32 one of
    # the same FLOPs: the shortcut additions cost), then the nearest in FLOPs (a small net's step costs more per FLOP).
    res = parse_arch(job.arch).residual
    ref, spi = min(refs, key=lambda r: (preset_family(r[0].preset) != data, parse_arch(r[0].arch).family != fam,
                                        parse_arch(r[0].arch).residual != res,
                                        abs(math.log(step_cost(r[0]) / step_cost(job)))))
    return spi * step_cost(job) / step_cost(ref)


# Allowance for a finished CIFAR run's analysis (published weights, layer stds, lesions, gradient flow) where none of
# the queue's analyses is logged yet, and for a loss landscape on top (51x51 points on 500 images: 33-34 min for
# ResNet-56 on the 2-core CPU), when a deadline is set.
ANALYSIS_S, LANDSCAPE_S = 10 * 60, 40 * 60
# A logged analysis is allowed this much more the next time: the hosts differ, and so do the holds that pause it.
ANALYSIS_MARGIN = 1.25
_ANALYSIS_LINE = re.compile(r"worker \d+: analysis (\S+) ended with exit code 0 after (\d+)s")


def logged_analysis_s(jobs: list[Job], log: Path = LOG) -> dict[str, float]:
    """The longest analysis that the campaign log records for each net (arch) of this queue's CIFAR runs, those with a
    loss landscape left out (LANDSCAPE_S counts it apart). The work does not depend on the preset: the same test set,
    one lesion per block."""
    by_name = {j.name: j for j in jobs if j.cifar and not j.landscape}
    out: dict[str, float] = {}
    for name, s in _ANALYSIS_LINE.findall(log.read_text() if log.is_file() else ""):
        if name in by_name:
            arch = by_name[name].arch
            out[arch] = max(out.get(arch, 0.0), float(s))
    return out


def analysis_allowance(job: Job, logged: dict[str, float]) -> float:
    """Seconds to allow for a CIFAR run's analysis: ANALYSIS_MARGIN x the longest logged one of its net; for a net not
    analysed yet, that of the logged net of its kind (shortcuts alike) nearest in depth, scaled by forward FLOPs x
    depth (a lesion evaluates the test set once per block: ResNet-110's analysis is about 4x ResNet-56's); ANALYSIS_S
    when the log has none."""
    from .models import parse_arch

    if job.arch in logged:
        return ANALYSIS_MARGIN * logged[job.arch]
    if not logged:
        return ANALYSIS_S
    cfg = parse_arch(job.arch)
    ref = min(logged, key=lambda a: (parse_arch(a).residual != cfg.residual, abs(math.log(parse_arch(a).depth / cfg.depth))))
    scale = _step_cost(job.arch, job.preset) * cfg.depth / (_step_cost(ref, job.preset) * parse_arch(ref).depth)
    return ANALYSIS_MARGIN * logged[ref] * scale


def seconds_needed(jobs: list[Job], results: Path, threads: int | None, native_bf16: bool | None = None,
                   log: Path = LOG):
    """need_s(job) for campaign.supervise's deadline: the estimated seconds of training left (this queue's speeds at
    `threads` on a CPU of this kind, measured once when need_s is made) plus the analysis allowance (from the campaign
    log's analyses); None where no speed is known."""
    here, measured = measured_speeds(jobs, results, threads, native_bf16)
    logged = logged_analysis_s(jobs, log)

    def need_s(job: Job) -> float | None:
        extra = (analysis_allowance(job, logged) if job.cifar else 0) + (LANDSCAPE_S if job.landscape else 0)
        if job_state(job, results) == "analysis":
            return extra
        spi = estimate(job, measured, job.precision, jobs, here)
        return None if spi is None else (job.max_steps() - last_logged(job.run_dir(results))[0]) * spi + extra

    return need_s


def parse_until(text: str, now: float) -> float:
    """A deadline as epoch seconds: 'HH:MM' (local time, its next occurrence after `now`) or '+MINUTES'."""
    if text.startswith("+"):
        return now + float(text[1:]) * 60
    try:
        h, m = (int(x) for x in text.split(":"))
    except ValueError:
        raise ValueError(f"--until {text!r}: give HH:MM or +MINUTES") from None
    t = time.localtime(now)
    at = time.mktime((t.tm_year, t.tm_mon, t.tm_mday, h, m, 0, 0, 0, -1))
    return at if at > now else at + 24 * 3600


def status(name: str | None = None, results: Path = Path("results")) -> int:
    st = read_state() or {}
    pid = running_pid()
    name = name or st.get("name") or next(iter(CAMPAIGNS))
    jobs = queue(name)
    how = ("paused" if (HOME / "paused").exists() else "running") if pid else "not running"
    until = f", stops at {time.strftime('%H:%M', time.localtime(st['until']))}" if st.get("until") else ""
    print(f"campaign {name}: {how}" + (f" (supervisor pid {pid}, {st.get('workers')} workers x {st.get('threads')} "
                                       f"threads, code {str(st.get('commit', '?'))[:12]}{until})" if pid else ""))
    # Speeds measured at the running campaign's threads per worker (2 threads train about 1.7x as fast as 1);
    # when it is stopped, at the threads of the layout `make campaign` starts by default (one worker, all cores).
    threads = st.get("threads") if pid else layout(None, None, os.cpu_count() or 1)[1]
    from .hardware import native_bf16

    bf16_here = native_bf16()
    here, measured = measured_speeds(jobs, results, threads, bf16_here)  # this CPU's kind: AVX2 trains slower
    logged = logged_analysis_s(jobs)
    total, unknown, analysis, notes = 0.0, 0, 0.0, []
    for j in jobs:
        rd = j.run_dir(results)
        s = job_state(j, results)
        it = last_logged(rd)[0]
        n = j.max_steps()
        prec = j.precision
        spi = estimate(j, measured, prec, jobs, here)
        left = None if spi is None else (n - it) * spi
        if s in ("done", "analysis"):
            line = "done" + (" (analysis to do)" if s == "analysis" else "")
        elif s in ("running", "partial"):
            speed = f", {spi:.2f} s/it" if spi else ""
            line = f"{s}: iteration {it:,} of {n:,}{speed}, about {_fmt_s(left)} left"
        else:
            line = f"waiting ({n:,} iterations, about {_fmt_s(left)})" + (
                "; not on this CPU, which has no native bf16" if prec == "bf16-mixed" and not bf16_here else "")
        if s not in ("done", "analysis"):
            total, unknown = (total + left, unknown) if left is not None else (total, unknown + 1)
        if s != "done" and j.cifar:
            analysis += analysis_allowance(j, logged) + (LANDSCAPE_S if j.landscape else 0)
        print(f"  {j.name:<28} {prec:<10} {line}")
        if s == "running" and pid and st.get("until") and spi and (rd / "metrics.csv").is_file():
            extra = (analysis_allowance(j, logged) if j.cifar else 0) + (LANDSCAPE_S if j.landscape else 0)
            notes.append(deadline_note(j.name, it, n, spi, extra, (rd / "metrics.csv").stat().st_mtime, st["until"]))
    workers = st.get("workers") or 1
    print(f"queue left: about {_fmt_s((total + analysis) / workers)} with {workers} worker(s), of which "
          f"{_fmt_s(analysis / workers)} analysis"
          + (f", plus {unknown} run(s) with no speed measured yet" if unknown else "")
          + " (estimates from this queue's measured speeds and logged analyses, pauses left out; an unmeasured net's "
            "scaled by its FLOPs)")
    for note in notes:
        print(note)
    return 0


def deadline_note(name: str, it: int, n: int, spi: float, analysis_s: float, logged_at: float, until: float) -> str:
    """What a campaign's deadline leaves of a run in training, from its last logged iteration `it` (logged at
    `logged_at`) at `spi` s/iteration, with `analysis_s` of analysis after it: whether it lands by then, or where
    it stops (a session's plan: what to commit before its end). Pauses are not foreseen."""
    def at(t: float) -> str:
        return time.strftime("%H:%M", time.localtime(t))

    end = logged_at + (n - it) * spi
    head = f"by the deadline {at(until)}: {name}"
    if end + analysis_s <= until:
        return f"{head} finishes, analysis included, at about {at(end + analysis_s)}"
    if end <= until:
        return (f"{head} finishes training at about {at(end)}, but its analysis (about {_fmt_s(analysis_s)}) is cut "
                "and runs at the next start")
    return (f"{head} stops at about iteration {min(n, it + (until - logged_at) / spi):,.0f} of {n:,}, and resumes "
            "from its last checkpoint at the next start")
