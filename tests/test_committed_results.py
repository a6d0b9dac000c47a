"""What git holds under results/: finished runs only (a run folder without final.json is never committed), and
never a checkpoint or a lock."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def tracked() -> list[str]:
    out = subprocess.run(["git", "ls-files", "results"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return out.splitlines()


def test_every_committed_run_folder_is_finished_and_holds_no_checkpoint():
    files = tracked()
    assert files, "results/ holds no tracked file: is this a git checkout?"
    runs: dict[str, set[str]] = {}
    for f in files:
        m = re.match(r"(results/[^/]+/runs/[^/]+/seed\d+)/(.+)$", f)
        if m:
            runs.setdefault(m.group(1), set()).add(m.group(2))
    assert runs
    unfinished = sorted(r for r, names in runs.items() if "final.json" not in names)
    assert not unfinished, f"run folders committed without final.json: {unfinished}"
    bad = [f for f in files if f.endswith((".ckpt", ".lock", ".tmp")) or "/checkpoints/" in f]
    assert not bad, bad


def test_the_readme_lists_exactly_the_committed_weights():
    """The README's weights table (make weights, make report) names every committed weights file and no other."""
    from resnet_repro.weights import README_MARKERS, WEIGHTS

    text = (ROOT / "README.md").read_text()
    a, b = README_MARKERS
    assert a in text and b in text
    listed = set(re.findall(r"`(results/[^`]+)`", text.split(a, 1)[1].split(b, 1)[0]))
    committed = {f for f in tracked() if f.endswith("/" + WEIGHTS)}
    assert committed, "no committed weights"
    assert listed == committed, f"missing from the README: {sorted(committed - listed)}; not committed: {sorted(listed - committed)}"


def test_every_committed_run_file_and_collected_table_is_documented_in_results_readme():
    """results/README.md says what each file of a run folder and each collected table holds: a new output of analyze
    or of a study that it does not name fails here."""
    from resnet_repro import studies

    doc = (ROOT / "results" / "README.md").read_text()
    run_files = {f.rsplit("/", 1)[1] for f in tracked() if re.match(r"results/[^/]+/runs/[^/]+/seed\d+/[^/]+$", f)}
    assert {"final.json", "metrics.csv"} <= run_files
    tables = {"runs", "curves", "status"} | {name for s in studies.STUDIES for name in s.TABLES}
    assert "response_tail" in tables
    missing = sorted(f for f in run_files | {f"{t}.csv" for t in tables} if f"`{f}`" not in doc)
    assert not missing, f"not described in results/README.md: {missing}"
