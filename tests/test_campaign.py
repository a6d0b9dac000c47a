"""Issue 15, parts 3-5: the campaign queue, its supervisor, and its controls.

The supervisor is run for real on a toy queue (smoke runs of a generated CIFAR-10 copy, in subprocesses pinned
to their cores); start/stop/pause are checked in test_campaign_control.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from resnet_repro import campaign as C
from resnet_repro import campaign_status as CS
from resnet_repro import cli
from resnet_repro.config import PRESETS, config_from_args, make_config
from resnet_repro.experiments import CAMPAIGNS, IMAGENET_NETS, IMAGENETTE_CPU_SECOND_SEED, grid_runs

FAST = {"max_steps": 2, "eval_every": 1, "milestones": (1,), "batch_size": 32, "test_subset": 200}


@pytest.mark.parametrize("name", list(CAMPAIGNS))
def test_every_queued_run_is_a_valid_configuration_and_the_train_args_say_so(name):
    jobs = C.queue(name)
    assert len({j.name for j in jobs}) == len(jobs), "a run is queued twice"
    for j in jobs:
        want = make_config(j.preset, arch=j.arch, seed=j.seed, **j.overrides)  # validates
        args = cli.build_parser().parse_args(j.train_args("/cifar", "/imagenette"))
        got = config_from_args(args)
        data = "/cifar" if j.cifar else "/imagenette"  # each family reads its own data folder
        assert got.to_dict() == {**want.to_dict(), "accelerator": "cpu", "data_dir": data}, j.name


def test_the_quarter_campaign_follows_the_issue_order():
    jobs = C.queue("quarter")
    first = [(j.preset, j.arch) for j in jobs[:8]]
    assert first[:4] == [("short-bf16", a) for a in ("resnet20", "plain20")] * 2  # the bf16 check first
    assert first[4:] == [("quarter", a) for a in ("resnet20", "resnet56", "plain20", "plain56")]
    # then the ImageNet-style 18 vs 34 runs (issue 16), right after the first four CIFAR runs
    assert [(j.preset, j.arch) for j in jobs[8:14]] == [("imagenette-cpu", a) for a in IMAGENET_NETS]
    # and the second seed of the closest claimed pair (issue 16), before the long paper-preset runs
    second = [(j.arch, j.seed) for j in jobs if j.preset == "imagenette-cpu" and j.seed == 1]
    assert second == [(a, 1) for a in IMAGENETTE_CPU_SECOND_SEED] and "resnet34" in IMAGENETTE_CPU_SECOND_SEED
    assert all(j.preset == "imagenette-cpu" for j in jobs[8:14 + len(second)])
    assert ("resnet34c", 0) in grid_runs("imagenette-cpu") and ("resnet34", 1) in grid_runs("imagenette-cpu")
    assert not jobs[8].cifar and jobs[0].cifar
    assert PRESETS["quarter"]["max_steps"] == 16_000 and PRESETS["quarter"]["milestones"] == (8_000, 12_000)
    assert PRESETS["quarter"]["eval_every"] == 400
    paper = [j for j in jobs if j.preset == "paper"]
    assert [j.arch for j in paper] == ["resnet20", "plain20", "resnet56", "plain56"]
    # the second seed of the 1/4 degradation nets (each fits in a session) before the multi-session 56-layer runs
    names = [(j.preset, j.arch, j.seed) for j in jobs]
    seed1 = [names.index(("quarter", a, 1)) for a in ("resnet20", "resnet56", "plain20", "plain56")]
    assert names.index(("paper", "plain20", 0)) < min(seed1) and max(seed1) < names.index(("paper", "resnet56", 0))
    # every run that lands within one session (32/44 layers, seed 2) before the multi-session ones (56 at paper, 110)
    one_session = [names.index(("quarter", a, s)) for a, s in [(a, 0) for a in ("resnet32", "plain32", "resnet44",
                   "plain44")] + [(a, 2) for a in ("resnet20", "resnet56", "plain20", "plain56")]]
    several = [names.index(n) for n in [("paper", "plain56", 0)] + [("quarter", "resnet110", s) for s in (0, 1, 2)]
               + [("quarter", "plain110", 0)]]
    assert max(one_session) < min(several)
    assert all(j.overrides["precision"] == PRESETS["quarter"]["precision"] for j in paper)  # the CPU's precision


@pytest.fixture
def toy(monkeypatch, tmp_path, full_cifar_dir):
    """A campaign folder in tmp_path with a three-run queue: one to train, one already done, one that cannot run."""
    monkeypatch.chdir(tmp_path)
    queue = [("smoke", "resnet20", 0, FAST), ("smoke", "plain20", 0, FAST),
             ("smoke", "resnet20", 1, {**FAST, "lr": -1.0})]
    monkeypatch.setitem(CAMPAIGNS, "toy", queue)
    done = tmp_path / "results" / "smoke" / "runs" / "plain20" / "seed0"
    done.mkdir(parents=True)
    (done / "final.json").write_text("{}")  # finished, no checkpoint here: nothing left to do
    return tmp_path


def test_the_supervisor_trains_analyses_skips_and_reports(toy, full_cifar_dir, capsys):
    assert C.supervise("toy", workers=2, threads=1, data_dir=str(full_cifar_dir), poll_s=0.2) == 0
    rd = toy / "results" / "smoke" / "runs" / "resnet20" / "seed0"
    final = json.loads((rd / "final.json").read_text())
    assert final["iterations"] == 2 and final["arch"] == "resnet20"
    for f in C.ANALYSIS_FILES + (C.WEIGHTS_FILE,):  # weights, Fig. 7 layer stds, gradient flow, lesions
        assert (rd / f).is_file(), f
    assert len(final["weights_sha256"]) == 64
    state = json.loads((toy / ".campaign" / "state.json").read_text())
    assert state["failed"] == ["smoke/resnet20/seed1"] and state["slots"] == [None, None]
    log = (toy / ".campaign" / "logs" / "smoke_resnet20_seed0.log").read_text()
    assert "[done]" in log and "[lesion]" in log
    assert "lr must be > 0" in (toy / ".campaign" / "logs" / "smoke_resnet20_seed1.log").read_text()
    assert not (toy / "results" / "smoke" / "runs" / "resnet20" / "seed1").exists()
    assert C.job_state(C.queue("toy")[0], toy / "results") == "done"

    capsys.readouterr()
    assert CS.status("toy") == 0
    out = capsys.readouterr().out
    assert "campaign toy: not running" in out
    lines = {ln.split()[0]: ln for ln in out.splitlines() if ln.startswith("  ")}
    assert "done" in lines["smoke/resnet20/seed0"] and "waiting" in lines["smoke/resnet20/seed1"]


def test_oversubscribing_the_cores_is_refused(toy):
    with pytest.raises(ValueError, match="oversubscribes"):
        C.supervise("toy", workers=(os.cpu_count() or 1) + 1, threads=1, data_dir=None)


def test_a_partial_run_is_resumable_and_a_finished_one_needs_its_analysis(tmp_path):
    job = C.Job("smoke", "resnet20", 0)
    rd = job.run_dir(tmp_path)
    assert C.job_state(job, tmp_path) == "waiting"
    (rd / "checkpoints").mkdir(parents=True)
    (rd / "checkpoints" / "last.ckpt").write_bytes(b"")
    (rd / "metrics.csv").write_text("iteration,elapsed_s\n10,5.0\n20,9.0\n")
    assert C.job_state(job, tmp_path) == "partial"
    assert C.last_logged(rd) == (20, 9.0, pytest.approx(0.4))
    # An interval that spanned a pause (make test holds the campaign) does not set the speed: the median does.
    (rd / "metrics.csv").write_text("iteration,elapsed_s\n10,5.0\n20,9.0\n30,13.0\n40,200.0\n50,204.0\n")
    assert C.last_logged(rd) == (50, 204.0, pytest.approx(0.4))
    (rd / "final.json").write_text("{}")
    (rd / "checkpoints" / "final.ckpt").write_bytes(b"")
    assert C.job_state(job, tmp_path) == "analysis"
    for f in C.ANALYSIS_FILES:
        (rd / f).write_text("")
    assert C.job_state(job, tmp_path) == "analysis"  # the weights are not published yet
    (rd / C.WEIGHTS_FILE).write_text("")
    assert C.job_state(job, tmp_path) == "done"


def test_the_deadline_note_says_whether_the_run_in_training_lands_or_where_it_stops():
    import time

    t0 = time.mktime((2026, 12, 7, 23, 40, 0, 0, 0, -1))  # its last log; 0.44 s/it, 14,800 iterations left: 6,512 s
    note = lambda until, analysis_s=830.0: CS.deadline_note("quarter/resnet110/seed2", 1200, 16000, 0.44,
                                                            analysis_s, t0, t0 + until * 60)
    assert note(150) == "by the deadline 02:10: quarter/resnet110/seed2 finishes, analysis included, at about 01:42"
    assert note(110) == ("by the deadline 01:30: quarter/resnet110/seed2 finishes training at about 01:28, but its "
                         "analysis (about 14 min) is cut and runs at the next start")
    assert note(60) == ("by the deadline 00:40: quarter/resnet110/seed2 stops at about iteration 9,382 of 16,000, and "
                        "resumes from its last checkpoint at the next start")
    assert note(108.6, 0.0).endswith("finishes, analysis included, at about 01:28")  # nothing to analyse after


def test_a_held_lock_means_running(tmp_path):
    from resnet_repro.runfolder import lock_run

    job = C.Job("smoke", "resnet20", 0)
    fh = lock_run(job.run_dir(tmp_path))
    p = subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; from resnet_repro import campaign "
                        "as C; print(C.job_state(C.Job('smoke', 'resnet20', 0), Path(sys.argv[1])))", str(tmp_path)],
                       capture_output=True, text=True, check=True)
    assert p.stdout.strip() == "running"
    fh.close()
    assert C.job_state(job, tmp_path) == "waiting"


def test_speeds_leave_pauses_out_and_an_unmeasured_net_is_scaled_by_its_flops(tmp_path):
    """make campaign-status: a run's speed is the median over its intervals (an interval that spanned a pause does
    not count), and a net with no run yet gets a measured net's speed times the ratio of their FLOPs per step."""
    jobs = [C.Job("quarter", "resnet20", 0), C.Job("quarter", "resnet56", 0)]
    rd = jobs[0].run_dir(tmp_path)
    rd.mkdir(parents=True)
    (rd / "config.json").write_text(json.dumps(dict(precision="bf16-mixed")))
    elapsed = [100.0, 200.0, 300.0, 4000.0, 4100.0, 4200.0]  # 400 iterations each; one interval spans an hour's pause
    (rd / "metrics.csv").write_text("iteration,elapsed_s\n" + "".join(f"{400 * (i + 1)},{e}\n"
                                                                    for i, e in enumerate(elapsed)))
    measured = CS.seconds_per_iteration(jobs, tmp_path)
    assert measured == {("resnet20", "bf16-mixed"): 0.25}
    est = CS.estimate(jobs[1], measured, "bf16-mixed", jobs)
    assert est == 0.25 * CS.step_cost(jobs[1]) / CS.step_cost(jobs[0]) and 0.25 * 2.5 < est < 0.25 * 3.5
    assert CS.estimate(jobs[1], measured, "32-true", jobs) is None  # no run in that precision


def test_a_nets_speed_pools_its_runs_intervals_and_waits_for_enough_of_them(tmp_path):
    """Quarter ResNet-20 seed 2 read 0.25 s/it over its first 3 intervals against 0.09 once trained on: a net's speed
    is the median over all its runs' intervals, and counts only from MIN_INTERVALS of them (before, the net is
    estimated from another, scaled by FLOPs)."""
    jobs = [C.Job("quarter", "resnet20", s) for s in (0, 1)] + [C.Job("quarter", "resnet32", 0)]

    def run(job, spis):
        rd = job.run_dir(tmp_path)
        rd.mkdir(parents=True, exist_ok=True)
        (rd / "config.json").write_text(json.dumps(dict(precision="bf16-mixed")))
        elapsed = [0.0]
        for spi in spis:
            elapsed.append(elapsed[-1] + 400 * spi)
        (rd / "metrics.csv").write_text("iteration,elapsed_s\n" + "".join(f"{400 * (i + 1)},{e}\n"
                                                                        for i, e in enumerate(elapsed)))

    run(jobs[0], [0.25, 0.25, 0.5])  # a noisy start: 3 intervals
    run(jobs[2], [0.15] * 8)
    measured = CS.seconds_per_iteration(jobs, tmp_path)
    assert measured == {("resnet32", "bf16-mixed"): 0.15}  # ResNet-20's 3 intervals are too few to count
    assert CS.estimate(jobs[0], measured, "bf16-mixed", jobs) == 0.15 * CS.step_cost(jobs[0]) / CS.step_cost(jobs[2])
    run(jobs[1], [0.09] * 10)  # another seed, trained on: pooled, it outweighs the noisy start
    assert CS.seconds_per_iteration(jobs, tmp_path)[("resnet20", "bf16-mixed")] == 0.09
    assert CS.seconds_per_iteration(jobs[:1], tmp_path) == {}  # the noisy start alone: no speed


def test_an_unmeasured_net_is_scaled_from_its_nearest_kin_shortcuts_alike_then_nearest_in_flops():
    """On the bf16 EPYC a ResNet-32 step took 1.3x a plain-32 one and plain-20 ran at 0.075 s/it: ResNet-20 takes
    ResNet-32's speed (shortcuts alike, nearest in FLOPs), not plain-20's nor ResNet-110's."""
    jobs = [C.Job("quarter", a, 0) for a in ("resnet20", "plain20", "resnet32", "resnet110", "plain56")]
    measured = {("plain20", "bf16-mixed"): 0.075, ("resnet110", "bf16-mixed"): 0.5, ("resnet32", "bf16-mixed"): 0.15}
    for job, ref in ((jobs[0], jobs[2]), (jobs[4], jobs[1])):
        want = measured[(ref.arch, "bf16-mixed")] * CS.step_cost(job) / CS.step_cost(ref)
        assert CS.estimate(job, measured, "bf16-mixed", jobs) == want, job.arch


def test_an_unmeasured_imagenet_style_net_is_scaled_from_one_of_its_dataset():
    """FLOPs translate poorly between 32-px CIFAR and 64-px ImageNet-style steps: ResNet-34 at imagenette-cpu takes
    its speed from plain-18 there (another family), not from a CIFAR ResNet (its family)."""
    jobs = [C.Job("quarter", "resnet20", 0), C.Job("imagenette-cpu", "plain18", 0), C.Job("imagenette-cpu", "resnet34", 0)]
    measured = {("resnet20", "bf16-mixed"): 0.14, ("plain18", "bf16-mixed"): 1.0}
    est = CS.estimate(jobs[2], measured, "bf16-mixed", jobs)
    assert est == 1.0 * CS.step_cost(jobs[2]) / CS.step_cost(jobs[1])
    cifar = CS.estimate(C.Job("quarter", "resnet56", 0), measured, "bf16-mixed", jobs)
    assert cifar == 0.14 * CS.step_cost(C.Job("quarter", "resnet56", 0)) / CS.step_cost(jobs[0])


def test_this_hosts_speeds_come_first_where_they_cover_the_dataset():
    """Two native-bf16 hosts trained the same nets 1.6x apart: a net unmeasured here takes a net measured here,
    scaled by FLOPs, before its own speed on another host; an ImageNet-style net, with no net of its dataset measured
    here, keeps the other hosts' estimate."""
    jobs = [C.Job("quarter", "resnet32", 0), C.Job("quarter", "plain32", 0), C.Job("imagenette-cpu", "plain18", 0)]
    anywhere = {("resnet32", "bf16-mixed"): 0.24, ("plain32", "bf16-mixed"): 0.25, ("plain18", "bf16-mixed"): 1.0}
    here = {("resnet32", "bf16-mixed"): 0.15}
    assert CS.estimate(jobs[0], anywhere, "bf16-mixed", jobs, here) == 0.15
    scaled = 0.15 * CS.step_cost(jobs[1]) / CS.step_cost(jobs[0])
    assert CS.estimate(jobs[1], anywhere, "bf16-mixed", jobs, here) == scaled
    assert CS.estimate(jobs[1], anywhere, "bf16-mixed", jobs) == 0.25  # no measurement here: the other hosts'
    assert CS.estimate(jobs[2], anywhere, "bf16-mixed", jobs, here) == 1.0


def test_layout_defaults_to_one_worker_on_all_cores():
    from resnet_repro.campaign import layout

    assert layout(None, None, 2) == (1, 2)
    assert layout(2, None, 2) == (2, 1)
    assert layout(None, 1, 2) == (2, 1)
    assert layout(1, 1, 2) == (1, 1)
    with pytest.raises(ValueError, match="at least 1"):
        layout(0, None, 2)


def test_the_landscape_nets_are_done_only_with_their_landscape(tmp_path):
    """Issue 18: ResNet-56 and plain-56 (seed 0) get their loss landscape after training, as in `short`."""
    job = C.Job("quarter", "resnet56", 0)
    assert job.landscape and C.Job("paper", "plain56", 0).landscape
    assert not C.Job("quarter", "resnet56", 1).landscape and not C.Job("quarter", "resnet20", 0).landscape
    assert not C.Job("imagenette-cpu", "resnet34", 0).landscape
    rd = job.run_dir(tmp_path)
    (rd / "checkpoints").mkdir(parents=True)
    (rd / "checkpoints" / "final.ckpt").write_bytes(b"")
    (rd / "final.json").write_text("{}")
    for f in C.ANALYSIS_FILES + (C.WEIGHTS_FILE,):
        (rd / f).write_text("")
    assert C.job_state(job, tmp_path) == "analysis"
    (rd / "landscape.json").write_text(json.dumps(dict(grid=51, subset=2000)))  # measured by hand, another subset
    assert C.job_state(job, tmp_path) == "analysis"
    (rd / "landscape.json").write_text(json.dumps(dict(grid=51, subset=500)))
    assert C.job_state(job, tmp_path) == "done"
    # Landed: the checkpoints are deleted and the published weights stay; a missing landscape is still to do.
    (rd / "checkpoints" / "final.ckpt").unlink()
    assert C.job_state(job, tmp_path) == "done"
    (rd / "landscape.json").unlink()
    assert C.job_state(job, tmp_path) == "analysis"
    (rd / C.WEIGHTS_FILE).unlink()  # no final weights at all: nothing can measure it, so it is not queued
    assert C.job_state(job, tmp_path) == "done"


def test_post_analysis_measures_the_landscape_on_the_grid_of_the_short_landscapes(tmp_path, monkeypatch):
    import resnet_repro.analyze as A
    import resnet_repro.studies.gradflow as G
    import resnet_repro.studies.landscapes as LS
    import resnet_repro.studies.lesions as LE
    import resnet_repro.weights as W

    calls = []
    for mod, name in ((W, "export"), (A, "analyze_preset"), (G, "gradflow_final"), (LE, "lesion_preset"),
                      (LS, "landscape_preset")):
        monkeypatch.setattr(mod, name, lambda *a, _n=name, **k: calls.append((_n, a, k)))
    for arch, seed, with_landscape in (("resnet56", 0, True), ("resnet56", 1, False), ("resnet20", 0, False)):
        calls.clear()
        C.post_analysis(C.Job("quarter", arch, seed).run_dir(tmp_path), "data")
        names = [c[0] for c in calls]
        assert names[:4] == ["export", "analyze_preset", "gradflow_final", "lesion_preset"]
        assert ("landscape_preset" in names) == with_landscape
    C.post_analysis(C.Job("quarter", "plain56", 0).run_dir(tmp_path), "data")
    _, args, kw = calls[-1]
    assert args[:4] == ("quarter", ["plain56"], 0, 51) and kw["subset"] == 500 and kw["data_dir"] == "data"
    # the committed short landscape used the same grid and subset, so the two budgets compare
    meta = json.loads((Path(__file__).resolve().parents[1] / "results" / "short" / "runs" / "plain56" / "seed0"
                       / "landscape.json").read_text())
    assert (meta["grid"], meta["subset"]) == (51, 500)


def test_speeds_count_only_the_intervals_trained_at_the_campaigns_threads(tmp_path):
    """A run trained first with 1 torch thread, then resumed with 2: campaign-status estimates at the threads the
    campaign runs now."""
    from resnet_repro.runfolder import seconds_per_iteration

    rd = tmp_path / "run"
    rd.mkdir()
    elapsed = [400.0, 800.0, 1200.0, 1400.0, 1600.0, 1800.0]  # 1 s/it until 1,200, then 0.5 s/it
    (rd / "metrics.csv").write_text("iteration,elapsed_s\n" + "".join(f"{400 * (i + 1)},{e}\n"
                                                                    for i, e in enumerate(elapsed)))
    (rd / "sessions.jsonl").write_text(json.dumps(dict(from_iteration=0, torch_threads=1)) + "\n"
                                       + json.dumps(dict(from_iteration=1200, torch_threads=2)) + "\n")
    assert seconds_per_iteration(rd, threads=1) == 1.0
    assert seconds_per_iteration(rd, threads=2) == 0.5
    assert seconds_per_iteration(rd, threads=4) is None
    assert seconds_per_iteration(rd) == 0.5  # all five intervals: 1, 1, 0.5, 0.5, 0.5
    # The sessions of quarter ResNet-56: a lost 1-thread attempt reached 4,400 and was restarted from 0 with 2 threads
    # (metrics.csv rewritten). Sessions count in the order they ran, so the lost one owns none of the new intervals.
    elapsed = [200.0 * i if i <= 11 else 2200.0 + 100 * (i - 11) for i in range(1, 24)]  # 0.5 s/it, 0.25 from 4,400
    (rd / "metrics.csv").write_text("iteration,elapsed_s\n" + "".join(f"{400 * i},{e}\n"
                                                                    for i, e in enumerate(elapsed, 1)))
    (rd / "sessions.jsonl").write_text("".join(json.dumps(dict(from_iteration=f, torch_threads=t)) + "\n" for f, t in
                                               ((0, 1), (4400, 1), (4400, None), (0, 1), (0, 2), (2400, 2), (2800, 2))))
    assert seconds_per_iteration(rd, threads=2) == 0.25  # 10 intervals at 0.5 and 12 at 0.25, all with 2 threads
    assert seconds_per_iteration(rd, threads=1) is None
    # Resumed at 2,800 on an AVX2 host without native bf16 (three times slower): each kind of CPU gets its own speed;
    # sessions that predate the flag count as native.
    elapsed += [elapsed[-1] + 300.0 * i for i in range(1, 6)]
    (rd / "metrics.csv").write_text("iteration,elapsed_s\n" + "".join(f"{400 * i},{e}\n"
                                                                    for i, e in enumerate(elapsed, 1)))
    with open(rd / "sessions.jsonl", "a") as fh:
        fh.write(json.dumps(dict(from_iteration=400 * 23, torch_threads=2, native_bf16=False)) + "\n")
    assert seconds_per_iteration(rd, threads=2, native_bf16=False) == 0.75
    assert seconds_per_iteration(rd, threads=2, native_bf16=True) == 0.25
    # ... and each host its own: the device names the host (marked where it lacks native bf16)
    lines = [json.loads(x) for x in (rd / "sessions.jsonl").read_text().splitlines()]
    lines[-1]["device"], lines[-2]["device"] = "cpu (EPYC, x86_64, 2 cores)", "cpu (Xeon, x86_64, 2 cores)"
    (rd / "sessions.jsonl").write_text("".join(json.dumps(d) + "\n" for d in lines))
    assert seconds_per_iteration(rd, device="cpu (EPYC, x86_64, 2 cores, no native bf16)") == 0.75
    assert seconds_per_iteration(rd, threads=2, device="cpu (Xeon, x86_64, 2 cores)") == 0.25
    assert seconds_per_iteration(rd, device="cpu (EPYC, x86_64, 2 cores)") is None


def test_session_devices_names_each_machine_a_run_trained_on_once_in_order_of_first_use(tmp_path):
    from resnet_repro.runfolder import session_devices

    assert session_devices(tmp_path) == []
    lines = [dict(from_iteration=0), dict(from_iteration=400, device="cpu (AMD EPYC, x86_64, 2 cores)"),
             dict(from_iteration=800, device="cpu (Intel Xeon, x86_64, 2 cores)"),
             dict(from_iteration=1200, device="cpu (AMD EPYC, x86_64, 2 cores)")]
    (tmp_path / "sessions.jsonl").write_text("".join(json.dumps(d) + "\n" for d in lines))
    assert session_devices(tmp_path) == ["unrecorded", "cpu (AMD EPYC, x86_64, 2 cores)",
                                         "cpu (Intel Xeon, x86_64, 2 cores)"]
    # one model name, two hosts: a session on a CPU without native bf16 is named so, whether its line's device says
    # it (hardware.device_name from 2026-12-07) or only its native_bf16 field does
    with open(tmp_path / "sessions.jsonl", "a") as fh:
        for dev in ("cpu (AMD EPYC, x86_64, 2 cores)", "cpu (AMD EPYC, x86_64, 2 cores, no native bf16)"):
            fh.write(json.dumps(dict(from_iteration=1600, device=dev, native_bf16=False)) + "\n")
    assert session_devices(tmp_path)[1:] == ["cpu (AMD EPYC, x86_64, 2 cores)", "cpu (Intel Xeon, x86_64, 2 cores)",
                                             "cpu (AMD EPYC, x86_64, 2 cores, no native bf16)"]


def test_a_runs_collected_device_is_its_last_sessions_marked_where_that_had_no_native_bf16(tmp_path):
    from resnet_repro.runfolder import final_device

    final = {"device": "cpu (AMD EPYC, x86_64, 2 cores)"}
    assert final_device(tmp_path, final) == final["device"]  # no sessions.jsonl: final.json's, as it is
    marked = "cpu (AMD EPYC, x86_64, 2 cores, no native bf16)"
    for native, want in ((True, final["device"]), (False, marked), (True, final["device"])):
        with open(tmp_path / "sessions.jsonl", "a") as fh:
            fh.write(json.dumps(dict(device=final["device"], native_bf16=native)) + "\n")
        assert final_device(tmp_path, final) == want
    assert final_device(tmp_path, {"device": marked}) == marked  # named so already: not twice
    assert final_device(tmp_path, {}) is None


def test_a_stopped_campaigns_estimates_use_the_threads_it_would_start_with(tmp_path, monkeypatch, capsys):
    """Stopped, campaign-status estimates at the default layout's threads (one worker on all cores), not from an
    interval trained with fewer threads."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    from resnet_repro import hardware

    monkeypatch.setattr(hardware, "native_bf16", lambda: True)  # the host kind of these sessions (none recorded)
    monkeypatch.setitem(CAMPAIGNS, "toy", [("smoke", "resnet20", 0, {"max_steps": 12_000}),
                                           ("smoke", "resnet20", 1, {"max_steps": 12_000})])
    rd = tmp_path / "results" / "smoke" / "runs" / "resnet20" / "seed0"
    rd.mkdir(parents=True)
    (rd / "config.json").write_text(json.dumps(dict(precision=PRESETS["smoke"].get("precision", "32-true"))))
    # 1 s/it over six intervals with 1 thread, then 0.5 s/it over five (CS.MIN_INTERVALS) with 2 threads: the
    # 1-thread median wins when every interval counts.
    (rd / "metrics.csv").write_text("iteration,elapsed_s\n" + "".join(
        f"{400 * i},{e}\n" for i, e in enumerate([400.0 * k for k in range(1, 8)] + [2800.0 + 200 * k
                                                                                   for k in range(1, 6)], 1)))
    (rd / "sessions.jsonl").write_text(json.dumps(dict(from_iteration=0, torch_threads=1)) + "\n"
                                       + json.dumps(dict(from_iteration=2800, torch_threads=2)) + "\n")
    assert CS.status("toy", results=tmp_path / "results") == 0
    out = capsys.readouterr().out
    assert "not running" in out
    seed1 = next(ln for ln in out.splitlines() if "smoke/resnet20/seed1" in ln)
    assert "about 1.7 h" in seed1, seed1  # 12,000 iterations at 0.5 s/it, not 3.3 h at 1 s/it

