"""The campaign's scheduling on the host it finds: a deadline (the end of a session) and a CPU without native bf16."""

from __future__ import annotations

import json
import time

import pytest
import torch

from resnet_repro import campaign as C
from resnet_repro import campaign_status as CS
from resnet_repro.experiments import CAMPAIGNS

FAST = {"max_steps": 2, "eval_every": 1, "milestones": (1,), "batch_size": 32, "test_subset": 200}


@pytest.fixture
def toy(monkeypatch, tmp_path):
    """A campaign folder in tmp_path with a two-run queue, one of them finished; nothing here trains."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(CAMPAIGNS, "toy", [("smoke", "resnet20", 0, FAST), ("smoke", "plain20", 0, FAST)])
    done = tmp_path / "results" / "smoke" / "runs" / "plain20" / "seed0"
    done.mkdir(parents=True)
    (done / "final.json").write_text("{}")
    return tmp_path


def test_with_a_deadline_a_worker_starts_the_first_run_that_finishes_before_it():
    a, b, c = C.Job("quarter", "resnet56", 0), C.Job("quarter", "resnet20", 2), C.Job("quarter", "plain20", 2)
    need = {a: 7000.0, b: 2400.0, c: None}.get
    assert C.pick([a, b, c], now=0.0, until=3000.0, need_s=need) == b  # a would not finish: b goes first
    assert C.pick([a, b, c], now=0.0, until=None, need_s=need) == a  # no deadline: queue order
    assert C.pick([a, c], now=0.0, until=3000.0, need_s=need) == a  # none fits (or is known): the first, it checkpoints
    assert C.pick([b, a], now=1000.0, until=3000.0, need_s=need) == b  # b no longer fits either: the first again


def test_the_time_a_run_needs_is_its_training_left_plus_its_analysis(tmp_path):
    jobs = [C.Job("quarter", "resnet20", 0), C.Job("quarter", "resnet56", 0), C.Job("quarter", "plain20", 0)]
    rd = jobs[0].run_dir(tmp_path)
    rd.mkdir(parents=True)
    (rd / "config.json").write_text(json.dumps(dict(precision="bf16-mixed")))
    rows = CS.MIN_INTERVALS + 1  # 0.25 s/it over enough intervals to count, 2,400 of 16,000 done
    (rd / "metrics.csv").write_text("iteration,elapsed_s\n" + "".join(f"{400 * i},{100.0 * i}\n"
                                                                    for i in range(1, rows + 1)))
    need = CS.seconds_needed(jobs, tmp_path, threads=None, log=tmp_path / "no.log")  # no analysis logged yet
    assert need(jobs[0]) == pytest.approx((16_000 - 400 * rows) * 0.25 + CS.ANALYSIS_S)
    scaled = CS.estimate(jobs[1], {("resnet20", "bf16-mixed"): 0.25}, "bf16-mixed", jobs)
    assert need(jobs[1]) == pytest.approx(16_000 * scaled + CS.ANALYSIS_S + CS.LANDSCAPE_S)  # seed 0 of 56: landscape
    done = jobs[2].run_dir(tmp_path)
    done.mkdir(parents=True)
    (done / "final.json").write_text("{}")
    (done / "checkpoints").mkdir()
    (done / "checkpoints" / "final.ckpt").write_bytes(b"")
    assert need(jobs[2]) == CS.ANALYSIS_S  # trained: only its analysis is left


def test_the_analysis_allowance_comes_from_the_logged_analyses_and_scales_to_an_unanalysed_net(tmp_path):
    jobs = [C.Job("quarter", a, s) for a in ("resnet20", "resnet56", "resnet110", "plain56", "plain110") for s in (0, 2)]
    log = tmp_path / "campaign.log"
    log.write_text(
        "2026-12-07 12:00:00 worker 0: analysis quarter/resnet56/seed2 ended with exit code 0 after 225s\n"
        "2026-12-07 12:00:00 worker 0: analysis quarter/resnet56/seed0 ended with exit code 0 after 2200s\n"  # landscape
        "2026-12-07 12:00:00 worker 0: analysis quarter/plain56/seed2 ended with exit code 1 after 5s\n"  # failed
        "2026-12-07 12:00:00 worker 0: analysis quarter/resnet20/seed2 ended with exit code 0 after 40s\n"
        "2026-12-07 12:00:00 worker 0: analysis quarter/resnet20/seed0 ended with exit code 0 after 30s\n"
        "2026-12-07 12:00:00 worker 0: train quarter/resnet20/seed2 ended with exit code 0 after 1500s\n")
    logged = CS.logged_analysis_s(jobs, log)
    assert logged == {"resnet56": 225.0, "resnet20": 40.0}  # the longest; landscape, failures and training left out
    allow = {j.arch: CS.analysis_allowance(j, logged) for j in jobs}
    assert allow["resnet56"] == pytest.approx(CS.ANALYSIS_MARGIN * 225)
    # ResNet-110 from ResNet-56 (nearest depth): twice the FLOPs per image, twice the blocks to lesion
    ratio = CS.step_cost(jobs[4]) * 110 / (CS.step_cost(jobs[2]) * 56)
    assert 3.5 < ratio < 4.5 and allow["resnet110"] == pytest.approx(CS.ANALYSIS_MARGIN * 225 * ratio)
    assert allow["plain56"] == pytest.approx(CS.ANALYSIS_MARGIN * 225)  # no plain net logged: the ResNet of its depth
    assert CS.analysis_allowance(jobs[0], {}) == CS.ANALYSIS_S  # nothing logged
    need = CS.seconds_needed(jobs, tmp_path, threads=None, log=log)
    done = jobs[3].run_dir(tmp_path)  # ResNet-56 seed 2 trained, its analysis left
    done.mkdir(parents=True)
    (done / "final.json").write_text("{}")
    (done / "checkpoints").mkdir()
    (done / "checkpoints" / "final.ckpt").write_bytes(b"")
    assert need(jobs[3]) == pytest.approx(CS.ANALYSIS_MARGIN * 225)


def test_a_deadline_is_a_time_of_day_or_minutes_from_now():
    now = time.mktime((2026, 12, 7, 1, 30, 0, 0, 0, -1))
    assert CS.parse_until("02:10", now) == now + 40 * 60
    assert CS.parse_until("01:00", now) == now + 23.5 * 3600  # passed today: tomorrow's
    assert CS.parse_until("+90", now) == now + 90 * 60
    with pytest.raises(ValueError, match="HH:MM"):
        CS.parse_until("2h", now)


def test_the_campaign_stops_at_its_deadline(toy, capsys):
    assert C.supervise("toy", workers=1, threads=1, data_dir=None, poll_s=0.1, until=time.time() - 1,
                       needs=lambda: (lambda j: 1.0)) == 0
    assert "stopping on the deadline" in capsys.readouterr().out  # the supervisor's stdout is campaign.log
    assert not (toy / "results" / "smoke" / "runs" / "resnet20").exists()  # nothing was started
    assert json.loads((toy / ".campaign" / "state.json").read_text())["ended_at"]


def test_a_cpu_without_native_bf16_trains_the_fp32_runs_only(toy, monkeypatch, capsys):
    """bf16 autocast is emulated on an AVX2-only CPU (about 12x slower than fp32): the campaign leaves those runs."""
    monkeypatch.setitem(CAMPAIGNS, "toy", [("smoke", "resnet20", 0, {**FAST, "precision": "bf16-mixed"}),
                                           ("smoke", "plain20", 0, FAST)])  # plain20: already finished (fixture)
    assert C.queue("toy")[0].precision == "bf16-mixed" and C.queue("toy")[1].precision == "32-true"
    assert C.supervise("toy", workers=1, threads=1, data_dir=None, poll_s=0.1, bf16=False) == 0
    out = capsys.readouterr().out
    assert "no native bf16" in out and "nothing left to start" in out
    assert not (toy / "results" / "smoke" / "runs" / "resnet20").exists()


@pytest.mark.parametrize("flags,native", [("fpu avx avx2 fma", False), ("avx2 avx512f avx512_bf16", True),
                                          ("avx512f amx_bf16 amx_tile", True), ("fp asimd bf16", True)])
def test_native_bf16_reads_the_cpu_flags(monkeypatch, flags, native):
    from resnet_repro import hardware

    monkeypatch.setattr(hardware, "_cpuinfo", lambda: {"flags": flags, "model name": "AMD EPYC"})
    assert hardware.native_bf16() is native
    # the device a run records says so: one CPU model name covers hosts with and without it
    name = hardware.device_name(torch.device("cpu"))
    assert name.startswith("cpu (AMD EPYC, ") and name.endswith("cores)" if native else "cores, no native bf16)")


def test_status_says_which_runs_this_cpu_leaves(toy, monkeypatch, capsys):
    from resnet_repro import hardware

    monkeypatch.setitem(CAMPAIGNS, "toy", [("smoke", "resnet20", 0, {**FAST, "precision": "bf16-mixed"}),
                                           ("smoke", "resnet20", 1, FAST)])
    for native in (False, True):
        monkeypatch.setattr(hardware, "native_bf16", lambda: native)
        assert CS.status("toy", results=toy / "results") == 0
        out = capsys.readouterr().out.splitlines()
        lines = {ln.split()[0]: ln for ln in out if ln.startswith("  ")}
        assert ("not on this CPU" in lines["smoke/resnet20/seed0"]) is not native
        assert "not on this CPU" not in lines["smoke/resnet20/seed1"]  # fp32
        # the total counts the analyses still to do: two runs, no analysis logged here, ANALYSIS_S each
        assert f"of which {2 * CS.ANALYSIS_S // 60} min analysis" in out[-1]
