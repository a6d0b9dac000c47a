"""Every figure and table of this reproduction is a study: one module here and one line in STUDIES.

A newcomer reads one study top to bottom: which runs it needs, what it measures, its table, its figure, its
verdict and its notebook cells. `collect`, `figures`, `report`, `notebooks` and `cli` are loops over STUDIES; none
of them names a figure. A study module defines:

  FAMILY    "cifar" or "imagenet": the presets it applies to (config.preset_family)
  PAGE      "report" or "beyond": the report page whose template its fields fill (report.PAGES)
  TABLES    {key: columns}: the collected CSVs it owns, results/<preset>/<key>.csv
  FIGURES   {key: file name}: its figures, figures/<preset>/<name>.png and .pdf
  CAPTIONS  {key: text}: what each figure shows, printed under it in the report and the notebooks
  collect(rs: common.RunSet) -> {key: DataFrame}: its tables from the finished runs (an empty one is not written)
  draw(t, preset) -> [(Figure, name)]: its figures from the collected tables `t` (collect.load_collected)
  report_fields(t, preset, figures_dir) -> {field: text}: the placeholders it fills in its page's template

and where it has them:

  write_tables(t, preset, out_dir) -> [paths]   its tables as Markdown and LaTeX beside the figures
  load_extra(folder) -> {key: object}           files other than CSVs (the provenance of a measurement)
  NOTEBOOKS  {name: [cells]}                    its cells of notebooks/<preset>/<name>.ipynb; the first study to
                                                name a notebook opens it with its first (markdown) cell
  COMMANDS, add_commands(sub, preset_arg), dispatch(args)   its own subcommands of `python -m resnet_repro`

The paper's own results come first (in the paper's order), then the studies beyond the paper.

ACROSS_PRESETS holds the studies that compare presets (the budget figure: short vs quarter vs paper; the bf16
check: short vs short-bf16). They read what the per-preset studies collected, so they sit above them: each
defines COMMAND and HELP (its `python -m resnet_repro` subcommand and `make` target) and
write(results, figures, report, load), where `load(preset, results)` is collect.load_collected.
"""

from __future__ import annotations

from . import budget, degradation, gradflow, identity, imagenet_depth, landscapes, lesions, precision, responses

STUDIES = [degradation, responses, imagenet_depth, gradflow, identity, landscapes, lesions]
ACROSS_PRESETS = [budget, precision]


def of_family(family: str, page: str | None = None, studies=None) -> list:
    """The studies of a preset family (and of one report page), in registry order."""
    return [s for s in (STUDIES if studies is None else studies)
            if s.FAMILY == family and (page is None or s.PAGE == page)]


def notebooks(family: str, studies=None) -> dict[str, list]:
    """{notebook name: [(study, cells)]} for a family, notebooks in order of first appearance."""
    out: dict[str, list] = {}
    for s in of_family(family, studies=studies):
        for name, cells in getattr(s, "NOTEBOOKS", {}).items():
            out.setdefault(name, []).append((s, cells))
    return out


def caption(name: str) -> str | None:
    """The caption of the figure drawn to figures/<preset>/<name>.png, or None for a name no study draws."""
    return next((s.CAPTIONS[k] for s in STUDIES for k, n in s.FIGURES.items() if n == name), None)
