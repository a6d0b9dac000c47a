"""Issue 17: the GPU lease launcher, dry-run on the CPU with the smoke preset: the queue, the data parts that fit
a call, background lanes, and the files that come back (at most 8 of at most 16 MiB) unpacking to the same runs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from conftest import write_imagefolder
from resnet_repro import cli
from resnet_repro import gpu as G

CPU = ["--accelerator", "cpu", "--max-steps", "2", "--eval-every", "1", "--milestones", "1", "--batch-size", "32",
       "--test-subset", "200"]


def test_the_queue_follows_the_issue_and_leaves_the_cpu_campaigns_runs_alone(tmp_path):
    q = G.queue("paper", tmp_path)
    assert q[:10] == [(a, 0) for a in G.GPU_ORDER] and q[10] == ("resnet1202", 0)
    assert q[11:21] == [(a, 1) for a in G.GPU_ORDER] and len(q) == 51
    (tmp_path / "paper" / "runs" / "resnet20" / "seed0").mkdir(parents=True)  # the CPU campaign started it
    q = G.queue("paper", tmp_path)
    assert ("resnet20", 0) not in q and q[0] == ("resnet20", 1)  # the GPU takes the next seed
    assert len(set(q)) == len(q) == 51 and q.count(("resnet20", 2)) == 1
    # An unfinished run of an earlier lease, carried back: the GPU resumes it, at its own seed.
    mine = tmp_path / "paper" / "runs" / "resnet56" / "seed0"
    mine.mkdir(parents=True)
    (mine / "sessions.jsonl").write_text('{"from_iteration": 0, "device_kind": "cuda"}\n')
    assert G.queue("paper", tmp_path)[1] == ("resnet56", 0)
    (mine / "sessions.jsonl").write_text('{"from_iteration": 0, "device_kind": "cpu"}\n')
    assert ("resnet56", 0) not in G.queue("paper", tmp_path)


def test_the_data_goes_in_parts_that_fit_a_call_beside_the_tree(tmp_path):
    src = tmp_path / "cifar10-jpeg"
    write_imagefolder(src, 100, 10)  # 1,100 random PNGs: incompressible, about 3.5 MB
    m = G.plan(src, stage=tmp_path / "stage", tree=G.CALL_LIMIT - G.MARGIN - 2 * G.MiB)
    assert m["calls"] == len(m["parts"]) >= 2
    assert all(p["bytes"] <= 2 * G.MiB for p in m["parts"])
    cmds = G.call_commands(m, "paper", 4)
    assert len(cmds) == m["calls"] and "make gpu-batch" in cmds[-1] and "gpu-batch" not in cmds[0]
    got = G.unpack(tmp_path / "stage", tmp_path / "data")
    files = sorted(p.relative_to(src) for p in src.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(got) for p in got.rglob("*") if p.is_file())
    assert all((src / f).read_bytes() == (got / f).read_bytes() for f in files)
    with pytest.raises(ValueError, match="too little"):
        G.plan(src, stage=tmp_path / "stage", tree=62 * G.MiB)


def _git(root, *args):
    import subprocess
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=root, check=True,
                          capture_output=True, text=True).stdout


def test_a_lease_is_made_from_a_lean_branch_and_restore_brings_everything_back(tmp_path):
    """The tracked tree (figures, notebooks, reports, weights) outgrows the 64 MiB a call sends: the calls are made
    from a branch without them, sized as such by the plan, and restore() returns to the work with nothing lost."""
    root = tmp_path / "repo"
    files = {"src/a.py": 100, "results/quarter/runs/resnet20/seed0/final.json": 50,
             "results/quarter/runs/resnet20/seed0/weights.safetensors": 3000, "figures/quarter/fig1.png": 2000,
             "notebooks/quarter/01.ipynb": 1000, "report/quarter/report.md": 500, ".gitignore": 0}
    for name, n in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x" * n)
    (root / ".gitignore").write_text("/.carry/\n")  # as in this repo: the stage (lean.json) travels only if carried
    files[".gitignore"] = 9
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "work")
    partial = root / "results" / "paper" / "runs" / "resnet56" / "seed0" / "metrics.csv"  # the campaign's, untracked
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"y" * 10)
    assert G.tree_bytes(root) == 6669 and G.tree_bytes(root, lean=True) == 169
    (root / "src" / "a.py").write_text("changed")
    with pytest.raises(ValueError, match="commit or stash"):
        G.lean(root)
    _git(root, "checkout", "--", "src/a.py")
    r = G.lean(root)
    assert r == dict(previous="main", dropped=4, before=6669, after=169)
    assert _git(root, "rev-parse", "--abbrev-ref", "HEAD").strip() == G.LEASE_BRANCH
    assert not (root / "figures").exists() and not (root / "results/quarter/runs/resnet20/seed0/weights.safetensors").exists()
    assert partial.read_bytes() == b"y" * 10 and G.tree_bytes(root) == 169
    with pytest.raises(ValueError, match="already on"):
        G.lean(root)
    assert G.restore(root) == "main"
    assert all((root / name).stat().st_size == n for name, n in files.items()) and partial.is_file()
    assert G.LEASE_BRANCH not in _git(root, "branch") and G.tree_bytes(root) == 6669


def test_a_dry_run_trains_in_background_lanes_and_brings_back_what_fits(full_cifar_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    results = "results"
    pids = G.launch("smoke", 2, str(full_cifar_dir), results, CPU, logs=Path(results) / "gpu-logs", limit=2,
                    analysis=False)
    deadline = time.time() + 600
    while any(G._alive(p) for p in pids):
        assert time.time() < deadline
        time.sleep(0.5)
    status = G.status(Path(results) / "gpu-logs")
    assert "0 of 2 lanes running" in status and status.count("done") == 2
    runs = Path(results) / "smoke" / "runs"
    assert (runs / "resnet20" / "seed0" / "final.json").is_file() and (runs / "resnet56" / "seed0" / "final.json").is_file()
    session = json.loads((runs / "resnet20" / "seed0" / "sessions.jsonl").read_text().splitlines()[0])
    assert session["device_kind"] == "cpu" and not G.gpu_run(runs / "resnet20" / "seed0")  # a dry run is the CPU's
    # An unfinished run: its checkpoint comes back too, so that a later lease resumes it.
    part = runs / "plain20" / "seed0"
    (part / "checkpoints").mkdir(parents=True)
    (part / "checkpoints" / "last.ckpt").write_bytes(b"x" * 1000)
    (part / "config.json").write_text("{}")

    meta = G.collect(tmp_path / "out", "smoke", results)
    files = list((tmp_path / "out").iterdir())
    assert len(files) <= G.OUT_FILES and all(f.stat().st_size <= G.OUT_FILE_MAX for f in files)
    assert len(meta["finished"]) == 2 and meta["partial_included"] == [str(part)]
    assert cli.main(["gpu", "unpack", "--pack-in", str(tmp_path / "out"), "--results", str(tmp_path / "back")]) == 0
    for rd in (runs / "resnet20" / "seed0", runs / "resnet56" / "seed0"):
        back = tmp_path / "back" / rd.relative_to(results)
        assert json.loads((back / "final.json").read_text()) == json.loads((rd / "final.json").read_text())
        assert not (back / "checkpoints").exists()  # finished runs come back without checkpoints
    assert (tmp_path / "back" / "smoke" / "runs" / "plain20" / "seed0" / "checkpoints" / "last.ckpt").is_file()


def test_a_corrupt_part_is_refused(tmp_path):
    (tmp_path / "results" / "smoke" / "runs").mkdir(parents=True)
    G.collect(tmp_path / "out", "smoke", tmp_path / "results")
    part = tmp_path / "out" / "data.tar.part-00"
    part.write_bytes(part.read_bytes() + b"x")
    with pytest.raises(ValueError, match="sha256"):
        G.unpack_collected(tmp_path / "out", tmp_path / "back")
