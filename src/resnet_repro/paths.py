"""Where things live, owned here: every folder of a preset and every run folder is built by these functions.

    <results>/<preset>/                      collected tables (collect.py)
    <results>/<preset>/runs/<arch>/seed<k>/  one run (runfolder.py); its final weights are checkpoints/final.ckpt
                                             until it lands, then the published weights.safetensors (weights.py)
    <figures>/<preset>/, <report>/<preset>/, <notebooks>/<preset>/
"""

from __future__ import annotations

from pathlib import Path


def preset_dir(root: str | Path, preset: str) -> Path:
    """<root>/<preset>: a preset's folder under results/, figures/, report/ or notebooks/."""
    return Path(root) / preset


def runs_root(results: str | Path, preset: str) -> Path:
    """<results>/<preset>/runs: the run folders of a preset."""
    return preset_dir(results, preset) / "runs"


def run_path(results: str | Path, preset: str, arch: str, seed: int) -> Path:
    """<results>/<preset>/runs/<arch>/seed<k>: one run's folder."""
    return runs_root(results, preset) / arch / f"seed{seed}"


WEIGHTS = "weights.safetensors"  # a run's published final weights (weights.py writes it)


def has_final_weights(run: str | Path) -> bool:
    """Whether a run folder holds its final weights: the checkpoint or, once landed, the published file."""
    return (Path(run) / "checkpoints" / "final.ckpt").is_file() or (Path(run) / WEIGHTS).is_file()
