"""landing.py: `make land` stages a preset's finished, analysed runs and its outputs for a commit."""

from __future__ import annotations

import json
import subprocess

from resnet_repro import campaign as C


def test_land_stages_the_analysed_runs_and_the_outputs_never_an_unfinished_run_or_a_checkpoint(tmp_path, capsys):
    from resnet_repro.landing import stage

    def git(*a):
        return subprocess.run(["git", *a], cwd=tmp_path, check=True, capture_output=True, text=True).stdout

    git("init", "-q")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "t")
    (tmp_path / ".gitignore").write_text("checkpoints/\n.lock\n")

    def run(preset, arch, seed, files=(*C.ANALYSIS_FILES, C.WEIGHTS_FILE), final=True):
        rd = C.Job(preset, arch, seed).run_dir(tmp_path / "results")
        (rd / "checkpoints").mkdir(parents=True)
        (rd / "checkpoints" / "last.ckpt").write_text("")
        for f in ("metrics.csv", *files):
            (rd / f).write_text("")
        if final:
            (rd / "final.json").write_text(json.dumps(dict(
                preset=preset, arch=arch, seed=seed, final_test_err=0.1376, final_train_err=0.0635, iterations=16000,
                warmup_switched_at=40 if arch == "resnet110" else None, wall_time_s=7874.0,
                device="cpu (AMD EPYC, x86_64, 2 cores)", precision="bf16-mixed")))
        return rd.relative_to(tmp_path).as_posix()

    old = run("quarter", "resnet20", 0)
    git("add", "-A")
    git("commit", "-qm", "landed before")
    new = run("quarter", "resnet110", 1)
    unanalysed = run("quarter", "plain20", 1, files=("layer_std.csv", C.WEIGHTS_FILE))
    training = run("quarter", "resnet56", 2, final=False)
    other = run("paper", "plain56", 0)
    for out in ("results/quarter/table6.csv", "figures/quarter/fig6_resnet.png", "report/quarter/report.md",
                "report/budget.md", "README.md", "figures/paper/fig1.png"):
        (tmp_path / out).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / out).write_text("x")
    assert stage("quarter", tmp_path) == 1  # a finished run lacks its analysis
    staged = set(git("diff", "--cached", "--name-only").split())
    assert {f"{new}/{f}" for f in ("final.json", "metrics.csv", "lesion.csv", C.WEIGHTS_FILE)} <= staged
    assert {"results/quarter/table6.csv", "figures/quarter/fig6_resnet.png", "report/quarter/report.md",
            "report/budget.md", "README.md"} <= staged
    assert not any(f.startswith((unanalysed, training, other, old, "figures/paper")) or "checkpoints" in f
                   for f in staged)
    out = capsys.readouterr().out
    assert ("quarter/resnet110/seed1: final test error 13.76%, train 6.35%; 16,000 iterations; warm-up ended at "
            "iteration 40; 131 min wall on cpu (AMD EPYC, x86_64, 2 cores), bf16-mixed") in out
    assert "resnet20/seed0:" not in out  # committed before: no summary
    assert f"{unanalysed}: finished, but its analysis is missing" in out
    (tmp_path / unanalysed / "lesion.csv").write_text("")
    (tmp_path / unanalysed / "gradflow_final.csv").write_text("")
    assert stage("quarter", tmp_path) == 0
    assert f"{unanalysed}/final.json" in git("diff", "--cached", "--name-only").split()
