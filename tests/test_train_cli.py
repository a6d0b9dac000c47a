"""End to end: `python -m resnet_repro train` on a full-size (random) CIFAR-10 copy, resuming, seeding,
user errors, and the small commands.

The runs are a few iterations of resnet20 on the smoke preset's 2,048-image subset, on the CPU.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import pytest

from resnet_repro import cli, runfolder, train
from resnet_repro.config import make_config

MAX_STEPS = 4


@pytest.fixture(scope="module")
def env(session_cache):
    # Module-scoped runs happen outside the function-scoped autouse fixture: isolate them too.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RESNET_REPRO_CACHE", str(session_cache))
        mp.delenv("DATA_DIR", raising=False)
        yield


def train_args(data_dir: Path, out: Path, seed: int = 0, max_steps: int = MAX_STEPS, arch: str = "resnet20"):
    return ["train", "--arch", arch, "--preset", "smoke", "--data-dir", str(data_dir), "--out", str(out),
            "--max-steps", str(max_steps), "--eval-every", "2", "--milestones", "2,3", "--seed", str(seed),
            "--accelerator", "cpu"]


def run_folder(out: Path, seed: int = 0, arch: str = "resnet20") -> Path:
    return out / "smoke" / "runs" / arch / f"seed{seed}"


def metrics(rd: Path) -> dict[int, dict[str, str]]:
    with open(rd / "metrics.csv") as fh:
        return {int(float(r["iteration"])): r for r in csv.DictReader(fh)}


@pytest.fixture(scope="module")
def run_a(env, full_cifar_dir, tmp_path_factory):
    """An uninterrupted run, seed 0, through the command line."""
    out = tmp_path_factory.mktemp("run_a")
    rc = cli.main(train_args(full_cifar_dir, out))
    return rc, run_folder(out)


def test_train_writes_a_complete_run(run_a):
    rc, rd = run_a
    assert rc == 0
    for f in ("config.json", "metrics.csv", "final.json", "sessions.jsonl"):
        assert (rd / f).is_file(), f
    assert (rd / "checkpoints" / "final.ckpt").is_file()
    assert not (rd / "checkpoints" / "last.ckpt").exists()

    cfg = json.loads((rd / "config.json").read_text())
    assert cfg["arch"] == "resnet20" and cfg["max_steps"] == MAX_STEPS and cfg["milestones"] == [2, 3]
    assert cfg["seed"] == 0 and cfg["preset"] == "smoke" and cfg["eval_every"] == 2

    final = json.loads((rd / "final.json").read_text())
    assert final["iterations"] == MAX_STEPS
    assert final["params"] == 269_722
    assert final["data_source"] == "official-python-batches"
    assert final["arch"] == "resnet20" and final["depth"] == 20 and final["residual"] is True
    assert final["shortcut"] == "A" and final["seed"] == 0 and final["scaled_down"] is True
    assert final["variant"] == "original"
    assert final["n_train"] == 2_048 and final["n_test"] == 1_000  # the smoke preset's subsets
    for k in ("final_test_err", "final_train_err"):
        assert 0.0 <= final[k] <= 1.0, k
    assert final["final_val_err"] is None and final["warmup_switched_at"] is None
    assert final["wall_time_s"] >= 0

    rows = metrics(rd)
    assert sorted(rows) == [2, 4]
    assert final["final_test_err"] == pytest.approx(float(rows[4]["test_err"]))
    for it, r in rows.items():
        assert 0.0 <= float(r["test_err"]) <= 1.0 and 0.0 <= float(r["train_err"]) <= 1.0
        assert float(r["train_loss"]) > 0 and float(r["test_loss"]) > 0
        assert r["val_err"] == ""
    # lr of each interval's last iteration: 0.1 at iteration 1, /100 at iteration 3 (milestones 2, 3).
    assert float(rows[2]["lr"]) == pytest.approx(0.1) and float(rows[4]["lr"]) == pytest.approx(0.001)

    sessions = (rd / "sessions.jsonl").read_text().splitlines()
    assert len(sessions) == 1 and json.loads(sessions[0])["from_iteration"] == 0


def test_rerun_of_a_finished_run_is_skipped(run_a, full_cifar_dir, capsys):
    rc, rd = run_a
    before = (rd / "final.json").read_bytes()
    mtime = (rd / "final.json").stat().st_mtime_ns
    capsys.readouterr()
    assert cli.main(train_args(full_cifar_dir, rd.parents[3])) == 0
    assert "[skip]" in capsys.readouterr().out
    assert (rd / "final.json").read_bytes() == before
    assert (rd / "final.json").stat().st_mtime_ns == mtime
    assert len((rd / "sessions.jsonl").read_text().splitlines()) == 1


def test_interrupted_run_resumes_where_it_stopped(run_a, env, full_cifar_dir, tmp_path, capsys):
    _, rd_a = run_a
    cfg = make_config("smoke", arch="resnet20", seed=0, data_dir=str(full_cifar_dir), out=str(tmp_path),
                      max_steps=MAX_STEPS, eval_every=2, milestones=(2, 3), accelerator="cpu")
    rd = runfolder.run_dir(cfg)
    assert train.train(cfg, stop_after=2) == {}
    assert not (rd / "final.json").exists()
    assert (rd / "checkpoints" / "last.ckpt").is_file()
    assert sorted(metrics(rd)) == [2]

    final = train.train(cfg)
    assert "[resume]" in capsys.readouterr().out
    assert final["iterations"] == MAX_STEPS
    assert json.loads((rd / "final.json").read_text())["iterations"] == MAX_STEPS
    sessions = [json.loads(s) for s in (rd / "sessions.jsonl").read_text().splitlines()]
    assert len(sessions) == 2
    assert sessions[0]["from_iteration"] == 0 and sessions[1]["from_iteration"] == 2
    rows, rows_a = metrics(rd), metrics(rd_a)
    assert sorted(rows) == [2, 4]
    assert not (rd / "checkpoints" / "last.ckpt").exists() and (rd / "checkpoints" / "final.ckpt").is_file()

    # The first session is the uninterrupted run's first interval, bit for bit.
    for col in ("train_loss", "train_err", "test_loss", "test_err"):
        assert rows[2][col] == rows_a[2][col], col
    # The resumed session restores weights, momentum, the schedule and the batch stream at iteration 2,
    # so it continues exactly as the uninterrupted run did.
    for col in ("train_loss", "train_err", "test_loss", "test_err", "lr"):
        assert rows[4][col] == rows_a[4][col], col


def test_same_seed_same_run_and_other_seed_another(run_a, full_cifar_dir, tmp_path):
    _, rd_a = run_a
    assert cli.main(train_args(full_cifar_dir, tmp_path / "same")) == 0
    assert cli.main(train_args(full_cifar_dir, tmp_path / "other", seed=1, max_steps=2)) == 0
    a, same, other = metrics(rd_a), metrics(run_folder(tmp_path / "same")), metrics(run_folder(tmp_path / "other", 1))
    assert [a[i]["train_loss"] for i in sorted(a)] == [same[i]["train_loss"] for i in sorted(same)]
    assert [a[i]["test_err"] for i in sorted(a)] == [same[i]["test_err"] for i in sorted(same)]
    assert float(other[2]["train_loss"]) != float(a[2]["train_loss"])


@pytest.mark.parametrize("change,needle", [
    (("--arch", "vgg16"), "resnet56"),  # the message lists the valid names
    (("--arch", "resnet21"), "6n+2"),
    (("--seed", "-1"), "seed"),
    (("--data-dir", "MISSING"), "does not exist"),
])
def test_bad_input_exits_2_and_writes_nothing(change, needle, full_cifar_dir, tmp_path, capsys):
    out = tmp_path / "out"
    args = train_args(full_cifar_dir, out)
    flag, value = change
    args[args.index(flag) + 1] = str(tmp_path / "no-such-folder") if value == "MISSING" else value
    capsys.readouterr()
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:"), err
    assert needle in err[0]
    assert not out.exists()
    assert not (tmp_path / "no-such-folder").exists()


def test_models_csv(capsys):
    assert cli.main(["models", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "name,depth,residual,shortcut,params"
    rows = {line.split(",")[0]: line.split(",") for line in lines[1:]}
    assert rows["resnet34b"] == ["resnet34b", "34", "True", "B", "21797672"]
    assert rows["resnet20"] == ["resnet20", "20", "True", "A", "269722"]
    assert rows["plain20"] == ["plain20", "20", "False", "none", "269722"]
    assert rows["resnet18b"][4] == "11689512"
    from resnet_repro.models import registered_names

    assert list(rows) == registered_names()


def subcommands() -> list[str]:
    p = cli.build_parser()
    (sub,) = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
    return list(sub.choices)


def test_the_subcommands_are_the_documented_ones():
    assert {"train", "grid", "models", "analyze", "collect", "figures", "report", "bench"} <= set(subcommands())


@pytest.mark.parametrize("cmd", [[]] + [[c] for c in subcommands()])
def test_help_works_everywhere(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(cmd + ["--help"])
    assert e.value.code == 0
    assert "usage:" in capsys.readouterr().out


@pytest.mark.parametrize("arch", ["resnet20-preact", "resnet20-exclgate"])
def test_an_eccv_block_variant_trains_through_the_same_command(arch, env, full_cifar_dir, tmp_path):
    """Issue 8: a variant is an ordinary run: its own folder, the net in config.json, final.json naming the variant."""
    from resnet_repro.models import build_model, count_params

    assert cli.main(train_args(full_cifar_dir, tmp_path, arch=arch, max_steps=2)) == 0
    rd = run_folder(tmp_path, arch=arch)
    final = json.loads((rd / "final.json").read_text())
    assert final["arch"] == arch and final["iterations"] == 2 and final["params"] == count_params(build_model(arch))
    assert json.loads((rd / "config.json").read_text())["arch"] == arch
    assert (rd / "checkpoints" / "final.ckpt").is_file() and 0.0 <= final["final_test_err"] <= 1.0
    assert final["variant"] == arch.split("-")[1] and final["depth"] == 20 and final["residual"] is True


@pytest.mark.parametrize("flag,value,kind", [("--seed", "x", "integer"), ("--lr", "abc", "number"),
                                             ("--compile", "maybe", "true/false"),
                                             ("--milestones", "1,a", "comma-separated integers")])
def test_a_malformed_flag_prints_one_line_naming_it(flag, value, kind, capsys):
    """Issue 20: one line with the flag and what it takes, not a usage dump."""
    with pytest.raises(SystemExit) as e:
        cli.main(["train", flag, value])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: argument {flag}: invalid {kind} value"), err


def test_the_grid_says_its_plan_before_training_and_warns_without_a_gpu(monkeypatch):
    """Issue 20: `make reproduce-cifar` with no arguments must not silently start 31 runs of 64k iterations."""
    from resnet_repro import plan

    monkeypatch.setattr(plan.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(plan, "seconds_per_iteration", lambda precision="32-true": 0.5)
    from resnet_repro.experiments import grid_runs

    text = plan.plan_text("paper", grid_runs("paper"))
    assert "31 runs of 64,000 iterations" in text and "no GPU" in text and "PRESET=quarter" in text
    # 0.5 s/it for ResNet-20 scaled by depth: ResNet-1202 alone is 0.5 x 1200/18 x 64k seconds
    assert "estimated time: at least" in text and float(text.split("at least ")[1].split(" hours")[0]) > 592
    assert "is meant for one" not in plan.plan_text("short", grid_runs("short"), measure=False)
