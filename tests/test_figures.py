"""Figures and Table 6 from synthetic CSVs: every file is written, missing inputs never raise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

from resnet_repro import figures, studies, wording
from resnet_repro import plotting as P
from resnet_repro.collect import CURVE_COLUMNS, RUN_COLUMNS, STATUS_COLUMNS, load_collected
from resnet_repro.paper import FINAL_REPRO, PAPER_TABLE6, PUBLIC_REPRO
from resnet_repro.studies import degradation as DG
from resnet_repro.studies import responses as RS
from resnet_repro.wording import data_label, scale_label, trained_label

FIGURE_NAMES = ["fig1_degradation_plain20_vs_plain56", "fig6_plain", "fig6_resnet",
                "fig6_deep", "fig7_layer_response_std"]

# arch -> seeds; resnet110/1202 and plain32/44/110 are left out on purpose
SYNTH = {"plain20": (0, 1), "plain56": (0,), "resnet20": (0, 1), "resnet32": (0,), "resnet56": (0, 1, 2)}
PARAMS = {20: 269_722, 32: 464_154, 44: 658_586, 56: 853_018, 110: 1_727_962}


def _depth(arch: str) -> int:
    return int(arch.lstrip("plainresnet"))


def _err_curve(it: np.ndarray, arch: str, seed: int, floor: float, max_it: int) -> np.ndarray:
    """A decaying error with drops at the schedule's milestones (fractions)."""
    base = floor + 0.8 * np.exp(-6 * it / max_it)
    base = base - 0.03 * (it >= max_it // 2) - 0.01 * (it >= 3 * max_it // 4)
    return np.clip(base + 0.004 * seed, 0.0, 1.0)


def write_synthetic(root, preset="short", synth=SYNTH, max_it=4000, step=200, data_source="imagefolder-jpeg (lossy)",
                    files=("runs", "curves", "layer_std", "table6")):
    d = root / preset
    d.mkdir(parents=True, exist_ok=True)
    it = np.arange(step, max_it + 1, step)
    runs, curves, ls, t6 = [], [], [], []
    for arch, seeds in synth.items():
        depth, residual = _depth(arch), arch.startswith("resnet")
        test_floor = 0.09 + (0.0 if residual else 0.0006 * depth) - (0.0002 * depth if residual else 0)
        train_floor = test_floor - 0.05
        errs = []
        for s in seeds:
            test = _err_curve(it, arch, s, test_floor, max_it)
            train = _err_curve(it, arch, s, train_floor, max_it)
            for metric, vals in (("test_err", test), ("train_err", train), ("lr", np.full(len(it), 0.1)),
                                 ("train_loss", train * 2), ("test_loss", test * 2)):
                curves += [dict(arch=arch, seed=s, iteration=i, metric=metric, value=v) for i, v in zip(it, vals)]
            errs.append(test[-1])
            runs.append(dict(arch=arch, depth=depth, residual=residual, shortcut="A", seed=s,
                             params=PARAMS[depth], final_test_err=test[-1], final_train_err=train[-1],
                             iterations=max_it, wall_time_s=100.0, device="cpu", commit="abc",
                             data_source=data_source, preset=preset, scaled_down=preset != "paper"))
            n_layers = depth - 2
            for layer in range(1, n_layers + 1):
                std = (1.5 if residual else 2.5) * np.exp(-layer / n_layers) + 0.05 * s
                ls.append(dict(arch=arch, seed=s, depth=depth, residual=residual, layer=layer,
                               stage=1 + (layer - 1) * 3 // n_layers, block=1 + ((layer - 1) // 2) % 3,
                               conv=1 + (layer - 1) % 2, std=std))
        e = np.array(errs) * 100
        t6.append(dict(arch=arch, depth=depth, params=PARAMS[depth], n=len(e), mean_test_err_pct=e.mean(),
                       std_test_err_pct=e.std(ddof=1) if len(e) > 1 else np.nan, min_test_err_pct=e.min(),
                       paper_test_err_pct=PAPER_TABLE6.get(arch, np.nan),
                       public_repro_test_err_pct=PUBLIC_REPRO.get(arch, np.nan)))
    frames = dict(runs=runs, curves=curves, layer_std=ls, table6=t6)
    for name in files:
        pd.DataFrame(frames[name]).to_csv(d / f"{name}.csv", index=False)
    return root


def _texts(fig: Figure) -> str:
    return "\n".join(t.get_text() for t in fig.texts)


def _assert_written(paths):
    for p in paths:
        assert p.exists() and p.stat().st_size > 0, p


def test_make_figures_writes_every_file(tmp_path):
    results = write_synthetic(tmp_path / "results")
    paths = figures.make_figures("short", results, tmp_path / "figures")
    out = tmp_path / "figures" / "short"
    # resnet32 has layer stds: Fig. 7 is drawn once more at every depth trained.
    expected = [out / f"{n}.{ext}" for n in FIGURE_NAMES + ["fig7_layer_response_std_all_depths"]
                for ext in ("png", "pdf")]
    expected += [out / "table6.md", out / "table6.tex"]
    assert sorted(paths) == sorted(expected)
    _assert_written(expected)
    assert (out / "fig6_plain.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "fig6_plain.pdf").read_bytes()[:5] == b"%PDF-"
    md = (out / "table6.md").read_text()
    assert "6.43" in md and "±" in md and "(n=3)" in md
    assert "best of 5" in md and "6.61 ± 0.16" in md and "final iterate" in md
    assert "best epoch selected on the test set" in md
    assert "nabla0001/resnet" in md and "8.51 ± 0.22" in md and "12.95 ± 0.22" in md  # [d], plain nets included
    assert "SCALED-DOWN" in md and "lossy JPEG" in md and "trained on cpu" in md
    assert "0.27M" in md and "ResNet-1202" in md and "not run" in md
    tex = (out / "table6.tex").read_text()
    assert "\\begin{tabular}" in tex and "\\end{tabular}" in tex and "$\\pm$" in tex
    assert "pytorch\\_resnet\\_cifar10" in tex  # escaped


def test_table6_beside_the_final_iterate_reproduction(tmp_path):
    """Each net of the final-iterate reproduction has a row; at the paper's schedule the report gives ours - theirs in
    points and in its seed std for the nets that ran; at a scaled-down budget it declines the comparison."""
    t = load_collected("paper", write_synthetic(tmp_path / "results", preset="paper", synth={"resnet20": (0, 1)}))
    df = DG.table6_frame(t)
    assert set(FINAL_REPRO) <= set(df["arch"])
    cells = {row[0]: row for row in DG.table6_cells(df)}
    assert cells["plain-56"][3] == "not run" and cells["plain-56"][-1] == "12.95 ± 0.22"
    assert cells["ResNet-32"][-1] == "—"  # not in that reproduction
    text = DG.final_repro_text(t, "paper")
    d = t["runs"]["final_test_err"].mean() * 100 - FINAL_REPRO["resnet20"][0]
    assert f"{d:+.2f} points, {d / FINAL_REPRO['resnet20'][1]:+.1f} of its seed std" in text and "(n=2)" in text
    assert "plain-56" not in text and "lossy JPEG" in text
    assert "not fidelity" in DG.final_repro_text(t, "quarter") and "points" not in DG.final_repro_text(t, "quarter")


def test_empty_results_dir_does_not_raise(tmp_path):
    (tmp_path / "results" / "smoke").mkdir(parents=True)
    paths = figures.make_figures("smoke", tmp_path / "results", tmp_path / "figures")
    assert len(paths) == 2 * len(FIGURE_NAMES) + 2
    _assert_written(paths)
    res = load_collected("smoke", tmp_path / "results")
    for name, fig in {name: fig for st in studies.of_family("cifar", "report") for fig, name in st.draw(res, "smoke")}.items():
        text = _texts(fig)
        assert "missing" in text, name
        assert "SCALED-DOWN: smoke preset" in text and "no finished runs" in text
    md = (tmp_path / "figures" / "smoke" / "table6.md").read_text()
    assert "6.43" in md and "missing (no data yet)" in md


def test_results_root_without_preset_and_empty_files(tmp_path):
    # no results/<preset> at all
    assert figures.make_figures("paper", tmp_path / "nothing", tmp_path / "figures")
    # files that exist but are empty (0 bytes), next to a good runs.csv
    root = write_synthetic(tmp_path / "r", files=("runs",))
    for name in ("curves", "layer_std", "table6"):
        (root / "short" / f"{name}.csv").write_text("")
    res = load_collected("short", root)
    for kind, cols in dict(runs=RUN_COLUMNS, curves=CURVE_COLUMNS, status=STATUS_COLUMNS, table6=DG.TABLE6_COLUMNS, layer_std=RS.LAYER_COLUMNS).items():
        assert set(cols) <= set(res[kind].columns)
    assert res["curves"].empty and not res["runs"].empty
    paths = figures.make_figures("short", root, tmp_path / "figures")
    _assert_written(paths)
    # table6.csv empty -> computed from runs.csv
    md = (tmp_path / "figures" / "short" / "table6.md").read_text()
    assert "(n=3)" in md and "±" in md


def test_each_builder_writes_its_files(tmp_path):
    res = load_collected("short", write_synthetic(tmp_path / "results"))
    out = tmp_path / "figs"
    built = {"fig1": DG.fig1(res, "short"), "plain": DG.fig6(res, "short", "plain"),
             "resnet": DG.fig6(res, "short", "resnet"), "deep": DG.fig6(res, "short", "deep"),
             "fig7": RS.fig7(res, "short")}
    for name, fig in built.items():
        assert isinstance(fig, Figure)
        _assert_written(P.save_figure(fig, out, name))
    _assert_written(DG.write_tables(res, "short", out))
    # names of the nets not drawn are on the figures
    assert "plain-32" in _texts(built["plain"]) and "plain-110" in _texts(built["plain"])
    assert "ResNet-110" in _texts(built["resnet"]) and "ResNet-1202" in _texts(built["deep"])
    assert "stand-in, no ResNet-1202 run" in _texts(built["deep"])  # issue 18/20: titled by what it draws
    assert "missing" not in _texts(built["fig1"])
    assert "lossy JPEG" in _texts(built["fig1"]) and "trained on cpu" in _texts(built["fig1"])


def test_seed_bands_and_styles(tmp_path):
    res = load_collected("short", write_synthetic(tmp_path / "results"))
    ax = DG.fig6(res, "short", "resnet").axes[0]
    # resnet20 (2 seeds) and resnet56 (3 seeds) get min-max bands for train and test; resnet32 (1 seed) none
    assert sum(isinstance(c, PolyCollection) for c in ax.collections) == 4
    lines = [ln for ln in ax.get_lines() if ln.get_label() and not ln.get_label().startswith("_")]
    assert any("mean of 3 seeds" in ln.get_label() for ln in lines)
    styles = {ln.get_linestyle() for ln in ax.get_lines()}
    assert {"--", "-"} <= styles
    assert ax.get_xlabel() == "iter. (1e3)"
    fig7 = RS.fig7(res, "short")
    assert len(fig7.axes) == 2
    top = fig7.axes[1].get_lines()[0].get_ydata()
    assert np.all(np.diff(top) <= 1e-12)  # the bottom panel is sorted in descending order
    # one 20-layer net alone: 18 layers, where matplotlib's default ticks would read 2.5, 7.5, ...
    res["layer_std"] = res["layer_std"][res["layer_std"]["arch"] == "resnet20"]
    for ax in RS.fig7(res, "short").axes:
        ax.figure.canvas.draw()
        ticks = ax.get_xticks()
        assert len(ticks) > 2 and np.allclose(ticks, np.round(ticks)), ticks


def test_fig7_on_the_median_image_is_drawn_only_from_runs_that_have_it_and_names_the_rest(tmp_path):
    res = load_collected("short", write_synthetic(tmp_path / "results"))
    assert [name for _, name in RS.draw(res, "short")] == [RS.FIGURES["fig7"], RS.FIGURES["fig7_all"]]  # no column
    ls = res["layer_std"]
    res["layer_std"] = ls.assign(std_image_median=(0.9 * ls["std"]).where(ls["arch"].str.startswith("resnet")))
    drawn = dict((name, fig) for fig, name in RS.draw(res, "short"))
    fig = drawn[RS.FIGURES["fig7_median"]]
    labels = {ln.get_label() for ln in fig.axes[0].get_lines() if not ln.get_label().startswith("_")}
    assert labels and all(lb.startswith("ResNet") for lb in labels)
    ys = np.concatenate([ln.get_ydata() for ln in fig.axes[0].get_lines()])
    assert np.isclose(ys.max(), 0.9 * ls.loc[ls["arch"].str.startswith("resnet")].groupby(["arch", "layer"])["std"]
                      .mean().max())
    assert fig.axes[0].get_ylabel() == "std, median test image"
    assert "no per-image measure (measured before it existed; no final weights here to measure again): plain-20" \
        in _texts(fig).replace("\n", " ")
    assert "no per-image" not in _texts(drawn[RS.FIGURES["fig7"]])
    # where the tail builds up: the top 1%'s share per layer, on a linear axis in [0, 1] whatever its spread
    res["layer_std"] = res["layer_std"].assign(top1pct_share=np.where(res["layer_std"]["layer"] > 1, 0.9, 0.001))
    tail = dict((name, fig) for fig, name in RS.draw(res, "short"))[RS.FIGURES["fig7_tail"]]
    assert all(ax.get_yscale() == "linear" and ax.get_ylim() == (0, 1.02) for ax in tail.axes)
    assert tail.axes[0].get_ylabel() == "variance share, top 1% of images"
    assert max(ln.get_ydata().max() for ln in tail.axes[0].get_lines()) == pytest.approx(0.9)


def test_fig7_turns_to_a_log_axis_only_when_one_net_dwarfs_the_others(tmp_path):
    res = load_collected("short", write_synthetic(tmp_path / "results"))
    assert all(ax.get_yscale() == "linear" for ax in RS.fig7(res, "short").axes)
    ls = res["layer_std"]
    res["layer_std"] = ls.assign(std=ls["std"].where(ls["arch"] != "plain56", 800.0))  # a net at chance, eval-mode BN
    fig = RS.fig7(res, "short")
    assert all(ax.get_yscale() == "log" and ax.get_ylabel() == "std (log scale)" for ax in fig.axes)


def test_missing_runs_are_listed_one_line_per_net_and_status():
    status = pd.DataFrame({"arch": ["resnet20"] * 4 + ["plain20", "plain56"], "seed": [0, 1, 2, 3, 0, 0],
                           "status": ["done", "missing", "missing", "partial", "partial", "missing"],
                           "iterations_logged": [64000, 0, 0, 800, 23600, 0], "in_grid": True})
    assert wording.missing_text(status).splitlines() == [
        "- `resnet20` seeds 1, 2: missing", "- `resnet20` seed 3: partial (logged up to iteration 800)",
        "- `plain20` seed 0: partial (logged up to iteration 23600)", "- `plain56` seed 0: missing"]
    assert wording.missing_text(status[status.status == "done"]) == "- Every run of this preset's grid has finished."


def test_the_provenance_table_names_each_runs_versions():
    runs = pd.DataFrame({"arch": ["resnet20", "plain20"], "seed": [0, 0], "iterations": [64000, 64000],
                         "final_test_err": [0.1, 0.2], "final_train_err": [0.05, 0.1], "wall_time_s": [60.0, 60.0],
                         "device": "cpu", "precision": "bf16-mixed", "torch_threads": 2, "commit": "abc",
                         "data_source": "official", "torch": ["2.11.0", None], "lightning": ["2.6.6", None]})
    rows = wording.provenance_table(runs).splitlines()
    assert "| versions |" in rows[0] and rows[0].count("|") == rows[1].count("|") == rows[2].count("|")
    assert "| torch 2.11.0, lightning 2.6.6 |" in rows[2] and "| not recorded |" in rows[3]


def test_y_limits(tmp_path):
    res = load_collected("paper", write_synthetic(tmp_path / "results", preset="paper", max_it=64000, step=400))
    ax = DG.fig6(res, "paper", "resnet").axes[0]
    assert ax.get_ylim() == (0, 20)
    assert ax.get_xlabel() == "iter. (1e4)"
    assert "paper protocol (64k iterations)" in _texts(ax.figure)
    # a scaled-down preset with high errors raises the limit to show the data, and says so
    res = load_collected("short", write_synthetic(tmp_path / "r2"))
    res["curves"].loc[res["curves"]["metric"].str.endswith("err"), "value"] += 0.3
    fig = DG.fig6(res, "short", "plain")
    top = fig.axes[0].get_ylim()[1]
    assert top > 20 and top == int(top)
    assert "95th percentile" in _texts(fig)
    assert P.error_ylim("short", [1.0, 5.0]) == (20.0, "")


def test_labels():
    assert scale_label("paper") == "paper protocol (64k iterations)"
    assert scale_label("short") == "SCALED-DOWN: short preset, 1/16 of the paper's schedule (4k iterations)"
    assert scale_label("smoke") == "SCALED-DOWN: smoke preset (a few iterations on a subset; not a result)"
    assert "lossy JPEG" in data_label(pd.DataFrame({"data_source": ["imagefolder-jpeg (lossy)"]}))
    assert "official-python-batches" in data_label(pd.DataFrame({"data_source": ["official-python-batches"]}))
    # Issue 18: a `paper` run made on the CPU says so (device, precision) wherever its numbers appear.
    cpu = "cpu (x86_64, 2 cores)"
    assert trained_label(pd.DataFrame({"device": [cpu] * 2, "precision": ["bf16-mixed"] * 2})) == \
        f"trained on {cpu} in bf16-mixed"
    assert trained_label(pd.DataFrame({"device": [cpu, "cuda (NVIDIA H100)"], "precision": ["bf16-mixed", "32-true"]})) \
        == f"trained on {cpu} in bf16-mixed; cuda (NVIDIA H100) in 32-true"
    assert trained_label(pd.DataFrame()) == "hardware: not recorded"
    # a set of devices is listed once each, sorted, with '; ' between (a device's own name has commas)
    xeon = "cpu (Intel(R) Xeon(R) Processor, x86_64, 2 cores)"
    assert wording.devices_text(pd.Series([xeon, cpu, None, xeon])) == f"{xeon}; {cpu}"
    assert wording.devices_text([]) == ""
    assert P.arch_label("resnet110") == "ResNet-110" and P.arch_label("plain20") == "plain-20"
    # Issue 20: a plain net is a darker shade of its ResNet twin's colour (the pair stays apart where curves meet).
    assert P.arch_color("resnet56") == P.DEPTH_COLORS[56] and P.arch_color("plain56") != P.arch_color("resnet56")
    assert P.arch_color("plain56") == "#751516"  # 0.55 x #d62728
    assert P.iteration_unit(64000)[1] == "iter. (1e4)" and P.iteration_unit(20)[1] == "iter."


@pytest.mark.parametrize("preset", ["paper", "short", "smoke"])
def test_missing_note_splits_not_run_from_not_in_preset(preset):
    note = P.missing_note(DG.FIG6_ARCHS["plain"], ["plain20"], preset)
    assert note.startswith("missing")
    if preset == "short":
        assert "not in the short preset): plain-110" in note


def test_partial_runs_are_noted_and_axis_spans_the_schedule(tmp_path):
    root = write_synthetic(tmp_path / "results", synth={"plain20": (0,)}, max_it=1200, files=("curves",))
    pd.DataFrame([dict(arch="plain20", seed=0, status="partial", iterations_logged=1200, in_grid=True),
                  dict(arch="plain56", seed=0, status="missing", iterations_logged=0, in_grid=True)]
                 ).to_csv(root / "short" / "status.csv", index=False)
    res = load_collected("short", root)
    fig = DG.fig1(res, "short")
    assert "partial runs" in _texts(fig) and "plain-20 seed 0 (1200 it.)" in _texts(fig)
    assert fig.axes[0].get_xlim() == (0, 4.0)  # the short preset's 4k iterations, in units of 1e3
    paths = DG.write_tables(res, "short", tmp_path / "out")
    assert "partial runs" in paths[0].read_text()


def test_a_redrawn_figure_is_the_same_file(tmp_path):
    """No creation date in the PDF: regenerating figures from the same CSVs changes nothing in git."""
    import matplotlib.pyplot as plt

    def draw(d):
        fig, ax = plt.subplots()
        ax.plot([0, 1], [1, 0])
        paths = P.save_figure(fig, d, "f")
        plt.close(fig)
        return [p.read_bytes() for p in paths]

    assert draw(tmp_path / "a") == draw(tmp_path / "b")


def test_the_deviations_name_a_precision_other_than_fp32():
    runs = pd.DataFrame({"arch": ["resnet20"], "seed": [0], "device": ["cpu"], "data_source": ["official"],
                         "precision": ["bf16-mixed"]})
    assert "- **Precision:** bf16-mixed autocast" in DG.deviations_text(runs, "paper")
    assert "**Precision:**" not in DG.deviations_text(runs.assign(precision="32-true"), "paper")


def test_the_deviations_tell_a_warm_up_ended_by_the_first_lr_step_from_one_ended_by_the_rule():
    runs = pd.DataFrame({"arch": ["resnet110", "plain110"], "seed": [0, 0], "device": ["cpu"] * 2,
                         "data_source": ["official"] * 2, "precision": ["32-true"] * 2, "warmup_switched_at": [60, 8000]})
    text = DG.deviations_text(runs, "quarter")  # quarter's first lr step: iteration 8,000
    assert ("it ended for resnet110 seed 0 at iteration 60, plain110 seed 0 at iteration 8,000 (the first lr step: its "
            "training error never fell below 80%).") in text
    assert "(the first lr step" not in DG.deviations_text(runs, "paper")  # paper's first step is 32,000
