"""The notebooks: one per experiment, assembled from the studies' cells and executed headless with nbclient.

`make notebooks PRESET=short` writes executed copies to notebooks/<preset>/<name>.ipynb, outputs included
(the deliverable). The first code cell is the parameters cell (tagged "parameters", papermill style);
only PRESET changes between presets. Each notebook reads results/<preset>/ and figures/<preset>/ and
states its findings through the same helpers as the report, so no number is typed by hand.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from . import studies as S
from .config import preset_family
from .paths import preset_dir


ROOT = """\
import os, pathlib
# Run from the project root (the nearest folder up with results/ in it), wherever the notebook sits.
here = pathlib.Path.cwd()
root = next((p for p in (here, *here.parents) if (p / RESULTS).is_dir()), here)
os.chdir(root)  # RESULTS and FIGURES are relative to the project root unless absolute
from IPython.display import Image, Markdown, display
"""
SETUP = ROOT + """\
import pandas as pd
from resnet_repro import claims, wording
from resnet_repro.studies import caption
from resnet_repro.collect import load_collected
t = load_collected(PRESET, RESULTS)
fig_dir = pathlib.Path(FIGURES) / PRESET
def show(name):
    f = fig_dir / f"{name}.png"
    display(Image(filename=str(f)) if f.is_file() else Markdown(f"_{f} has not been drawn yet (`make figures`)._"))
    text = caption(name)
    if text:
        display(Markdown(f"*{text}* (`{name}`)"))
display(Markdown(f"**Preset `{PRESET}`** — scale: {wording.scale_text(PRESET)}.  \\n**Data:** {wording.data_text(t['runs'])}."))"""

PARAMS = new_code_cell('PRESET = "paper"\nRESULTS = "results"\nFIGURES = "figures"', metadata={"tags": ["parameters"]})

def cells_of(name: str, family: str, studies=None) -> list:
    """A notebook's cells: the opening markdown cell of the first study that names it, the parameters and setup
    cells, then every study's cells for it in registry order."""
    parts = S.notebooks(family, studies)[name]
    first = parts[0][1]
    rest = [c for i, (_, cells) in enumerate(parts) for c in (cells[1:] if i == 0 else cells)]
    return [first[0], PARAMS, new_code_cell(SETUP)] + rest


def build(name: str, preset: str, results: str = "results", figures: str = "figures",
          studies=None) -> nbformat.NotebookNode:
    nb = new_notebook(cells=[c.copy() for c in cells_of(name, preset_family(preset), studies)])
    for c in nb.cells:
        if "parameters" in c.get("metadata", {}).get("tags", []):
            c.source = f'PRESET = "{preset}"\nRESULTS = "{results}"\nFIGURES = "{figures}"'
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def run_notebooks(preset: str, out_root: str | Path | None = None, results: str | Path = "results",
                  figures: str | Path = "figures", timeout: int = 600, names: list[str] | None = None) -> list[Path]:
    """Execute the notebooks of `preset`'s family (or `names`) and write them with their outputs to
    notebooks/<preset>/."""
    root = Path.cwd()  # the project root: where results/ and figures/ are (make runs from there)
    out_dir = preset_dir(out_root or root / "notebooks", preset)
    written = []
    for name in names or list(S.notebooks(preset_family(preset))):
        written.append(execute(build(name, preset, str(results), str(figures)), out_dir / f"{name}.ipynb", timeout))
    return written


def execute(nb: nbformat.NotebookNode, f: Path, timeout: int = 600) -> Path:
    """Run every cell of `nb` headless from the project root (the current directory) and write it, outputs
    included, to `f`."""
    from jupyter_client import KernelManager  # imported here: only executing a notebook needs a kernel
    from nbclient import NotebookClient

    # The kernel talks over local IPC sockets, not TCP: no network, and no "running over TCP without
    # encryption" warning in every run.
    km = KernelManager(kernel_name="python3", transport="ipc")
    try:
        NotebookClient(nb, km=km, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(Path.cwd())}}).execute()
    finally:
        if km.has_kernel:
            km.shutdown_kernel(now=True)
    for i, cell in enumerate(nb.cells):  # a rerun on the same CSVs rewrites the same file: no random cell
        cell.id = f"cell-{i}"             # ids, no execution timestamps
        cell.metadata.pop("execution", None)
    f.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, f)
    print(f"[notebooks] executed {f}", flush=True)
    return f


def run_across(study, out_root: str | Path = "notebooks", results: str | Path = "results",
               figures: str | Path = "figures", timeout: int = 600) -> Path:
    """Execute the notebook of a study across presets (studies.ACROSS_PRESETS: its NOTEBOOK = (name, cells)) into
    notebooks/<name>.ipynb: its opening markdown cell, the parameters (RESULTS, FIGURES), then its cells."""
    name, cells = study.NOTEBOOK
    params = new_code_cell(f'RESULTS = "{results}"\nFIGURES = "{figures}"', metadata={"tags": ["parameters"]})
    nb = new_notebook(cells=[cells[0].copy(), params, new_code_cell(ROOT)] + [c.copy() for c in cells[1:]])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return execute(nb, Path(out_root) / f"{name}.ipynb", timeout)
