"""Issue 8, beyond the paper, as one page: the four studies' figures, report section (beyond.md) and notebook 05
from their tables, and the study registry (studies.STUDIES). Each study's own tests: test_identity.py,
test_gradflow.py, test_lesions.py, test_landscapes.py."""

from __future__ import annotations

import re

import pandas as pd
import pytest
import torch

from resnet_repro import cli, notebooks, studies
from resnet_repro.collect import collect, load_collected
from resnet_repro.figures import make_figures
from resnet_repro.report import build_report
from resnet_repro.studies import gradflow, identity, landscapes, lesions
from resnet_repro.models import build_model

from conftest import final_json, randomize_bn


def synthetic_results(root, tiny_cifar):
    """results/short/ with gradflow_init, lesion, landscape and identity-variant files from tiny real nets."""
    d = root / "short"
    gradflow.gradflow_init("smoke", ["plain20", "resnet20"], n_batches=1, dest=d, arrays=tiny_cifar)
    batches = [(torch.randn(8, 3, 32, 32), torch.arange(8) % 10)]
    frames, one, two = [], [], []
    for arch in ("resnet14", "plain14"):
        torch.manual_seed(0)
        model = randomize_bn(build_model(arch))
        t = lesions.lesion_table(model, batches)
        t["arch"], t["seed"] = arch, 0
        frames.append(t)
        a, b, _ = landscapes.landscape(model, batches, grid=5)
        a["arch"] = b["arch"] = arch
        a["seed"] = b["seed"] = 0
        one.append(a)
        two.append(b)
    pd.concat(frames).to_csv(d / "lesion.csv", index=False)
    pd.concat(one).to_csv(d / "landscape_1d.csv", index=False)
    pd.concat(two).to_csv(d / "landscape_2d.csv", index=False)
    finals = [dict(arch=a, final_test_err=e, final_train_err=e / 2) for a, e in
              (("resnet110", 0.07), ("resnet110", 0.069), ("resnet110-preact", 0.065), ("resnet110-const0.5", 0.13))]
    identity.variants_table(finals).to_csv(d / "identity_variants.csv", index=False)


FIGURE_NAMES = {k: v for st in studies.STUDIES for k, v in st.FIGURES.items()}


def test_figures_report_and_notebook_cells_from_the_tables(tiny_cifar, tmp_path):
    results, figures, report = tmp_path / "results", tmp_path / "figures", tmp_path / "report"
    synthetic_results(results, tiny_cifar)
    b = load_collected("short", results)
    assert len(b["identity_variants"]) == 3 and b["init_meta"]["archs"] == ["plain20", "resnet20"]
    paths = make_figures("short", results, figures, page="beyond")
    names = {p.name for p in paths}
    for key in ("gradflow_init", "lesion", "landscape_1d", "landscape_contour", "landscape_surface",
                "identity_variants"):
        assert f"{FIGURE_NAMES[key]}.png" in names and f"{FIGURE_NAMES[key]}.pdf" in names, key
    assert "beyond_gradflow_final.png" not in names  # no data, no figure
    assert "table6.md" not in names  # page="beyond" draws that page's studies only
    assert build_report("short", results, figures, report)[-1] == report / "short" / "beyond.md"
    md = (report / "short" / "beyond.md").read_text()
    assert "20 layers, at initialisation" in md and "plain-20" in md
    assert "at the final weights:** not run yet" in md
    assert "**resnet14** (seed 0): test error" in md and "**plain14** (seed 0)" in md
    assert "resnet14 seed 0: no lesion.json" in md  # synthetic tables without run folders
    assert "full pre-activation" in md and "paper 6.37%" in md
    assert "2-D:" in md and "beyond_lesion.png" in md
    assert "landscape.json files are missing" in md  # synthetic tables without run folders
    assert (report / "short" / "beyond.html").is_file()
    # Notebook 05: assembled from the four studies, and every <study>.<name> its cells use exists.
    nb = notebooks.build("05_beyond_the_paper", "short")
    used = {(m, n) for c in nb.cells for m, n in re.findall(r"\b(gradflow|identity|landscapes|lesions)\.(\w+)", c.source)}
    mods = dict(gradflow=gradflow, identity=identity, landscapes=landscapes, lesions=lesions)
    assert {m for m, _ in used} == set(mods) and all(hasattr(mods[m], n) for m, n in used), used
    assert "05_beyond_the_paper" in studies.notebooks("cifar") and "05_beyond_the_paper" not in studies.notebooks("imagenet")


def test_verdicts_say_not_run_yet_without_numbers(tmp_path):
    b = load_collected("short", tmp_path)
    for text in (gradflow.gradflow_verdict(b), identity.variants_verdict(b), landscapes.landscape_verdict(b),
                 lesions.lesion_verdict(b)):
        assert "not run yet" in text and not re.search(r"\d+\.\d+%", text)


@pytest.mark.parametrize("argv", [["gradflow", "--preset", "smoke", "--archs", "resnet21"],
                                  ["landscape", "--preset", "smoke", "--archs", "plain20-preact"]])
def test_bad_arch_exits_2(argv, tmp_path, capsys):
    assert cli.main(argv + ["--results", str(tmp_path)]) == 2
    assert "error:" in capsys.readouterr().err and not any(tmp_path.iterdir())


def test_a_new_study_is_one_module_and_one_registry_entry(tmp_path, monkeypatch):
    """Issue 19: collect, figures, report and notebooks loop over STUDIES; a toy study registered there gets its
    table collected, its figure drawn and linked, its report field filled and its notebook cells run, with no other
    change."""
    import types

    from matplotlib.figure import Figure
    from nbformat.v4 import new_code_cell, new_markdown_cell

    def draw(t, preset):
        fig = Figure()
        fig.subplots().plot(t["toy"]["x"], t["toy"]["y"])
        return [(fig, "beyond_toy")]

    toy = types.SimpleNamespace(
        FAMILY="cifar", PAGE="beyond", TABLES={"toy": ["x", "y"]}, FIGURES={"toy": "beyond_toy"}, draw=draw,
        CAPTIONS={"toy": "A toy curve: y against x, drawn to check the registry."},
        collect=lambda rs: {"toy": pd.DataFrame({"x": [0, 1], "y": [len(rs.dirs), 0]})},
        report_fields=lambda t, preset, figures_dir: {"lesion": f"TOY SAYS {int(t['toy']['y'].iloc[0])} RUNS"},
        NOTEBOOKS={"06_toy": [new_markdown_cell("# Toy"), new_code_cell("print(len(t['toy']))")]})
    monkeypatch.setattr(studies, "STUDIES", studies.STUDIES + [toy])
    d = tmp_path / "results" / "short" / "runs" / "resnet20" / "seed0"
    d.mkdir(parents=True)
    (d / "final.json").write_text(final_json("resnet20"))
    collect("short", tmp_path / "results")
    assert pd.read_csv(tmp_path / "results" / "short" / "toy.csv").y.tolist() == [1, 0]
    paths = make_figures("short", tmp_path / "results", tmp_path / "figures")
    assert tmp_path / "figures" / "short" / "beyond_toy.png" in paths
    build_report("short", tmp_path / "results", tmp_path / "figures", tmp_path / "report")
    md = (tmp_path / "report" / "short" / "beyond.md").read_text()
    assert "beyond_toy.png" in md and "TOY SAYS 1 RUNS" in md and "*A toy curve: y against x" in md
    nb = notebooks.build("06_toy", "short", str(tmp_path / "results"))
    assert [c.source for c in nb.cells][0] == "# Toy" and "print(len(t['toy']))" in nb.cells[-1].source
