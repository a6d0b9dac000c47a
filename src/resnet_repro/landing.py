"""`make land PRESET=quarter`: make a preset's finished campaign runs ready to commit, and say what they measured.

The Makefile first regenerates the preset's outputs under a campaign hold (analyze, which adds what a newer code
measures to older runs; collect, figures, notebooks and report with FINISHED_ONLY=1, as a clone sees them; budget).
Then `stage` here:
- stages (git add) every run folder of the preset that has final.json and its whole analysis (campaign.job_state
  'done'); git ignores checkpoints and locks. A folder without final.json is never staged: a run still training or
  cut off lands when it finishes. A finished run whose analysis is missing is named and left out, for the campaign
  (or `campaign post --run DIR`) to finish;
- stages the preset's collected tables, figures, notebooks and report, the budget files and the README: every
  output that `make land` regenerated;
- prints, for each run that git did not track before, its numbers (final test and training error, iterations,
  warm-up, wall time, device, precision), the start of a commit message.
It never commits: the message, with what the run changes in the claims, is the maintainer's.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from .campaign import Job, job_state
from .paths import preset_dir, runs_root

# What `make land` regenerates besides the preset's own folders (results/<preset>/*.* and
# figures|notebooks|report/<preset>/): the budget across presets and the README's headline and weights tables.
SHARED_OUTPUTS = ("results/budget.csv", "results/budget_claims.csv", "figures/budget.png", "figures/budget.pdf",
                  "notebooks/budget.ipynb", "report/budget.md", "README.md")


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def finished_runs(preset: str, repo: Path) -> list[Path]:
    """The preset's run folders with final.json, relative to `repo`, in arch and seed order."""
    return sorted(p.parent.relative_to(repo) for p in runs_root(repo / "results", preset).glob("*/seed*/final.json"))


def run_summary(run: Path) -> str:
    """One line of a run's final.json: what a commit message starts with."""
    f = json.loads((run / "final.json").read_text())
    warm = f" warm-up ended at iteration {f['warmup_switched_at']:,};" if f.get("warmup_switched_at") else ""
    return (f"{f['preset']}/{f['arch']}/seed{f['seed']}: final test error {100 * f['final_test_err']:.2f}%, train "
            f"{100 * f['final_train_err']:.2f}%; {f['iterations']:,} iterations;{warm} "
            f"{f['wall_time_s'] / 60:.0f} min wall on {f['device']}, {f['precision']}")


def stage(preset: str, repo: Path = Path(".")) -> int:
    """git add the preset's analysed runs and its regenerated outputs; print each new run's numbers. 1 where a
    finished run still lacks its analysis (it is left out), else 0."""
    repo = Path(repo)
    runs = finished_runs(preset, repo)
    ready, waiting = [], []
    for rd in runs:
        seed = int(rd.name[len("seed"):])
        (ready if job_state(Job(preset, rd.parent.name, seed), repo / "results") == "done" else waiting).append(rd)
    untracked = {Path(f).parent for f in _git("ls-files", "--others", "--exclude-standard", "--",
                                              str(runs_root("results", preset)), cwd=repo).splitlines()}
    new = [rd for rd in ready if rd in untracked]  # a run folder's files sit directly in it
    own = [preset_dir(root, preset) for root in ("figures", "notebooks", "report")]
    tables = [p.relative_to(repo) for p in sorted(preset_dir(repo / "results", preset).glob("*.*")) if p.is_file()]
    paths = [str(p) for p in [*ready, *tables, *own, *map(Path, SHARED_OUTPUTS)] if (repo / p).exists()]
    if paths:
        _git("add", "--", *paths, cwd=repo)
    for rd in new:
        print(run_summary(repo / rd))
    for rd in waiting:
        print(f"[land] {rd}: finished, but its analysis is missing (campaign post --run {rd}); not staged")
    print(f"[land] {preset}: {len(new)} new run(s) and {len(ready) - len(new)} committed one(s) staged with the "
          f"preset's outputs; commit with the numbers above")
    return 1 if waiting else 0
