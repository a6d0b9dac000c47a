"""`make figures`: every study's figures (PNG and PDF) and tables (Markdown and LaTeX) of one preset, drawn from
the CSVs of `collect` into figures/<preset>/.

Which figures exist is up to the studies (resnet_repro.studies.STUDIES): this module only loops over those of the
preset's family. Missing inputs never raise: what is missing is named on the figures and in the tables.
"""

from __future__ import annotations

from pathlib import Path

from . import studies as S
from .collect import load_collected
from .config import preset_family
from .paths import preset_dir
from .plotting import save_figure


def make_figures(preset: str, results_root: str | Path = "results", figures_root: str | Path = "figures",
                 page: str | None = None, studies=None) -> list[Path]:
    """Draw every figure and write every table of the preset's studies (of one report page, if given)."""
    t = load_collected(preset, results_root)
    out = preset_dir(figures_root, preset)
    paths: list[Path] = []
    for study in S.of_family(preset_family(preset), page, studies):
        for fig, name in study.draw(t, preset):
            paths += save_figure(fig, out, name)
        if hasattr(study, "write_tables"):
            paths += study.write_tables(t, preset, out)
    print(f"[figures] {out}: {len(paths)} files", flush=True)
    return paths
