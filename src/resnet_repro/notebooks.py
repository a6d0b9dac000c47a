"""The notebooks: one per experiment, built from the cells below and executed headless with nbclient.

`make notebooks PRESET=short` writes executed copies to notebooks/<preset>/<name>.ipynb, outputs included
(the deliverable). The first code cell is the parameters cell (tagged "parameters", papermill style);
only PRESET changes between presets. Each notebook reads results/<preset>/ and figures/<preset>/ and
states its findings through the same helpers as the report, so no number is typed by hand.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from .paper import table2_text, table3_text
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[2]

SETUP = """\
import os, pathlib
# Run from the repository root, wherever the notebook sits.
root = pathlib.Path.cwd()
while not (root / "pyproject.toml").is_file() and root != root.parent:
    root = root.parent
os.chdir(root)  # RESULTS and FIGURES are relative to the repository root unless absolute
from IPython.display import Image, Markdown, display
import pandas as pd
from resnet_repro import claims, report, wording
from resnet_repro.collect import load_collected
t = load_collected(PRESET, RESULTS)
fig_dir = pathlib.Path(FIGURES) / PRESET
def show(name):
    f = fig_dir / f"{name}.png"
    display(Image(filename=str(f)) if f.is_file() else Markdown(f"_{f} has not been drawn yet (`make figures`)._"))
display(Markdown(f"**Preset `{PRESET}`** — scale: {wording.scale_text(PRESET)}.  \\n**Data:** {wording.data_text(t['runs'])}."))"""

PARAMS = new_code_cell('PRESET = "paper"\nRESULTS = "results"\nFIGURES = "figures"', metadata={"tags": ["parameters"]})

NOTEBOOKS: dict[str, list] = {
    "01_degradation": [
        new_markdown_cell(
            "# The degradation problem (Fig. 1 and Fig. 6)\n\n"
            "He et al. observe that a deeper *plain* net (plain-56) has a **higher training error** than a "
            "shallower one (plain-20): not overfitting, but an optimisation difficulty. With identity "
            "shortcuts the order flips: ResNet-56 trains and tests better than ResNet-20. This notebook reads "
            "the collected runs and checks both claims on the final iterates."),
        PARAMS,
        new_code_cell(SETUP),
        new_markdown_cell("## Fig. 1: plain-20 vs plain-56\nTraining error dashed, test error bold."),
        new_code_cell('show("fig1_degradation_plain20_vs_plain56")'),
        new_markdown_cell("## What the numbers show"),
        new_code_cell("display(Markdown(claims.claims_text(t, PRESET)))"),
        new_markdown_cell("## Fig. 6: plain nets (left) and ResNets (middle), and the deepest nets (right)"),
        new_code_cell('show("fig6_plain"); show("fig6_resnet"); show("fig6_deep")'),
        new_markdown_cell("## Final errors of every run (%)"),
        new_code_cell("r = t['runs'][['arch', 'seed', 'final_train_err', 'final_test_err', 'iterations', 'device', 'precision']].copy()\n"
                      "r[['final_train_err', 'final_test_err']] *= 100\nr.round(2)"),
    ],
    "02_table6_depth_vs_error": [
        new_markdown_cell(
            "# Depth vs error on CIFAR-10 (Table 6)\n\n"
            "Our final-iterate test errors beside the paper's and a popular public reproduction's. The public "
            "numbers are best epochs picked on the test set, so they are optimistic by construction; ours are "
            "never selected on the test set."),
        PARAMS,
        new_code_cell(SETUP),
        new_code_cell('f = fig_dir / "table6.md"\n'
                      'display(Markdown(f.read_text() if f.is_file() else "_table6.md not written yet (`make figures`)._"))'),
        new_markdown_cell("## The collected table (`results/<preset>/table6.csv`)"),
        new_code_cell("t['table6'].round(2)"),
        new_markdown_cell("## What has not been run yet"),
        new_code_cell("display(Markdown(report.missing_text(t['status'])))"),
        new_markdown_cell("## Provenance"),
        new_code_cell("display(Markdown(report.provenance_table(t['runs'])))"),
    ],
    "03_layer_responses": [
        new_markdown_cell(
            "# Layer responses (Fig. 7)\n\n"
            "The std of each 3×3 layer's response (after BN, before the ReLU and the addition) over all test "
            "images, channels and positions. The paper finds residual responses generally smaller than plain "
            "ones, and smaller still in deeper ResNets: the residual functions are closer to zero than the "
            "non-residual ones."),
        PARAMS,
        new_code_cell(SETUP),
        new_code_cell('show("fig7_layer_response_std")'),
        new_markdown_cell("## What the numbers show"),
        new_code_cell("display(Markdown(claims.fig7(t['layer_std'], PRESET)))"),
        new_markdown_cell("## Mean, median and max response std per net"),
        new_code_cell("t['layer_std'].groupby('arch')['std'].agg(['count', 'mean', 'median', 'max']).round(3)"),
    ],
    "04_imagenet_18_vs_34": [
        new_markdown_cell(
            "# ImageNet-style nets: 18 vs 34 layers, plain and residual (Fig. 4, Tables 2 and 3)\n\n"
            "On ImageNet, He et al. find that the 34-layer plain net has higher training *and* validation error "
            "than the 18-layer one (the degradation problem), while with shortcuts the order flips: ResNet-34 "
            f"beats ResNet-18 (top-1, 10-crop: {table2_text()}). Projection shortcuts "
            f"help a little more (ResNet-34 A/B/C: {table3_text()}). This notebook reads the collected runs and "
            "checks each claim on the final iterates. The data and the scale of this preset are stated below: "
            "10 classes, far fewer images and a shorter schedule than the paper's."),
        PARAMS,
        new_code_cell(SETUP),
        new_markdown_cell("## Fig. 4: training error (dashed) and val error (bold, center crop)\n"
                          "Plain nets left, ResNets (option A) right."),
        new_code_cell("from resnet_repro.figures import FIG4_NAME\nshow(FIG4_NAME)"),
        new_markdown_cell("## What the numbers show"),
        new_code_cell("from resnet_repro.config import PIPELINE_CHECK_TEXT, is_pipeline_check\n"
                      "display(Markdown(PIPELINE_CHECK_TEXT if is_pipeline_check(PRESET) else "
                      "report.imagenet_verdict(t['runs'])))"),
        new_markdown_cell("## Table 2 and Table 3 analogues, beside the paper's numbers"),
        new_code_cell('for name in ("table2", "table3"):\n'
                      '    f = fig_dir / f"{name}.md"\n'
                      '    text = f.read_text() if f.is_file() else f"_{f} not written yet (`make figures`)._"\n'
                      '    display(Markdown(text))'),
        new_markdown_cell("## Final errors of every run (%)"),
        new_code_cell("cols = ['final_train_err', 'final_val_err', 'final_val_10crop_err',\n"
                      "        'final_val_10crop_top5_err']\n"
                      "r = t['runs'][['arch', 'seed'] + cols + ['iterations', 'wall_time_s', 'device']].copy()\n"
                      "r[cols] = r[cols].astype(float) * 100\nr.round(2)"),
        new_markdown_cell("## What has not been run yet"),
        new_code_cell("display(Markdown(report.missing_text(t['status'])))"),
    ],
    # Issue 8 (beyond.py): run by `python -m resnet_repro beyond --notebook` (make beyond), not by `make notebooks`.
    "05_beyond_the_paper": [
        new_markdown_cell(
            "# Beyond the paper: why residual learning works\n\n"
            "Four mechanisms, measured on the nets of this reproduction: **gradient flow** (plain vs residual, "
            "at initialisation and after training), the **identity-mapping variants** of He et al. (ECCV 2016), "
            "**loss landscapes** along filter-normalised directions (Li et al. 2018) and **block lesions** "
            "(Veit et al. 2016). Every sentence below is computed from `results/<preset>/` by "
            "`resnet_repro.beyond`; a step that has not run says so."),
        PARAMS,
        new_code_cell(SETUP),
        new_code_cell("from resnet_repro import beyond\nfrom resnet_repro.studies import gradflow, identity, landscapes, lesions\n"
                      "b = beyond.load_beyond(PRESET, RESULTS)\n"
                      "show_any = lambda key: show(beyond.FIGURE_NAMES[key])"),
        new_markdown_cell("## 1. Gradient flow\nThe norm of the gradient of the loss with respect to each block's "
                          "input (left) and each layer's weights (right), log scale."),
        new_code_cell('show_any("gradflow_init"); show_any("gradflow_final"); show_any("gradflow_train")'),
        new_code_cell("display(Markdown(gradflow.gradflow_verdict(b)))"),
        new_markdown_cell("## 2. Identity-mapping variants of ResNet-110 (ECCV 2016, Tables 1 and 2)"),
        new_code_cell('show_any("identity_variants")\n'
                      "display(Markdown(identity.variants_markdown(b['identity_variants'])))\n"
                      "display(Markdown(identity.variants_verdict(b)))"),
        new_markdown_cell("## 3. Loss landscapes (Li et al. 2018)"),
        new_code_cell('show_any("landscape_1d"); show_any("landscape_contour"); show_any("landscape_surface")'),
        new_code_cell("display(Markdown(landscapes.landscape_verdict(b)))"),
        new_markdown_cell("## 4. Block lesions (Veit et al. 2016)"),
        new_code_cell('show_any("lesion")'),
        new_code_cell("display(Markdown(lesions.lesion_verdict(b)))"),
    ],
}

# The notebooks of each preset family (config.preset_family): CIFAR presets get 01-03, ImageNet-style ones 04.
FAMILY_NOTEBOOKS = {"cifar": ["01_degradation", "02_table6_depth_vs_error", "03_layer_responses"],
                    "imagenet": ["04_imagenet_18_vs_34"]}


def build(name: str, preset: str, results: str = "results", figures: str = "figures") -> nbformat.NotebookNode:
    nb = new_notebook(cells=[c.copy() for c in NOTEBOOKS[name]])
    for c in nb.cells:
        if "parameters" in c.get("metadata", {}).get("tags", []):
            c.source = f'PRESET = "{preset}"\nRESULTS = "{results}"\nFIGURES = "{figures}"'
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def run_notebooks(preset: str, out_root: str | Path | None = None, results: str | Path = "results",
                  figures: str | Path = "figures", timeout: int = 600, names: list[str] | None = None) -> list[Path]:
    """Execute the notebooks of `preset`'s family (or `names`) and write them with their outputs to
    notebooks/<preset>/."""
    from jupyter_client import KernelManager
    from nbclient import NotebookClient

    from .config import preset_family

    out_dir = Path(out_root or ROOT / "notebooks") / preset
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names or FAMILY_NOTEBOOKS[preset_family(preset)]:
        nb = build(name, preset, str(results), str(figures))
        # The kernel talks over local IPC sockets, not TCP: no network, and no "running over TCP without
        # encryption" warning in every run.
        km = KernelManager(kernel_name="python3", transport="ipc")
        try:
            NotebookClient(nb, km=km, timeout=timeout, kernel_name="python3",
                           resources={"metadata": {"path": str(ROOT)}}).execute()
        finally:
            if km.has_kernel:
                km.shutdown_kernel(now=True)
        f = out_dir / f"{name}.ipynb"
        nbformat.write(nb, f)
        written.append(f)
        print(f"[notebooks] executed {f}", flush=True)
    return written
