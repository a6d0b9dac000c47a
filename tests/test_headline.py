"""Issue 20: the README's headline results are generated between markers from the collected CSVs."""

from __future__ import annotations

from test_budget import write_preset

from resnet_repro import headline as H


def test_the_readme_section_is_regenerated_between_its_markers(tmp_path):
    write_preset(tmp_path / "results", "quarter", {"resnet20": [0.10, 0.11], "resnet56": [0.08, 0.09],
                                                   "plain20": [0.12], "plain56": [0.2]}, {"plain20": 0.1, "plain56": 0.2})
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n{H.MARKERS[0]}\nstale\n{H.MARKERS[1]}\n## rest\n")
    assert H.update_readme(readme, tmp_path / "results", tmp_path / "figures")
    text = readme.read_text()
    assert "stale" not in text and text.startswith("# title\n") and text.endswith("## rest\n")
    assert "### `quarter`: **scaled-down**" in text and "| resnet56 | 2 | 8.50 ± 0.71 | bf16-mixed | cpu | 6.97 | 7.40 ± 0.27 |" in text
    assert "| plain56 | 1 | 20.00 | bf16-mixed | cpu | – | 12.95 ± 0.22 |" in text and "nabla0001/resnet" in text
    assert "2a. ResNet-56 below ResNet-20 (test error): **holds**" in text
    assert "`short`" not in text  # presets without runs are left out


def test_a_figure_is_shown_once_its_nets_have_runs(tmp_path):
    write_preset(tmp_path / "results", "paper", {"resnet20": [0.14]}, {})
    for name in ("fig1_degradation_plain20_vs_plain56", "fig6_plain", "fig6_resnet"):
        (tmp_path / "figures" / "paper").mkdir(parents=True, exist_ok=True)
        (tmp_path / "figures" / "paper" / f"{name}.png").write_bytes(b"png")
    text = H.preset_section("paper", tmp_path / "results", tmp_path / "figures")
    assert "fig6_resnet.png" in text
    assert "fig6_plain.png" not in text and "fig1_degradation" not in text
    write_preset(tmp_path / "results2", "paper", {"resnet20": [0.14], "plain20": [0.15]}, {})
    text = H.preset_section("paper", tmp_path / "results2", tmp_path / "figures")
    assert "fig6_plain.png" in text and "fig1_degradation" not in text  # Fig. 1 compares two nets: not with one


def test_a_readme_without_markers_is_left_alone(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("no markers\n")
    assert not H.update_readme(readme, tmp_path, tmp_path)
    assert readme.read_text() == "no markers\n"


def test_run_times_count_training_not_pauses(tmp_path):
    """The README's run-time table: the median seconds per iteration over the evaluation intervals, so an interval
    that spanned a pause (the campaign held for a test, a night between sessions) does not set the speed."""
    import json

    rd = tmp_path / "results" / "quarter" / "runs" / "resnet20" / "seed0"
    rd.mkdir(parents=True)
    elapsed = [10.0, 20.0, 30.0, 3630.0, 3640.0]  # 100 iterations each; the fourth spans an hour's pause
    rd.joinpath("metrics.csv").write_text("iteration,train_loss,elapsed_s\n" + "".join(
        f"{100 * (i + 1)},1.0,{e}\n" for i, e in enumerate(elapsed)))
    rd.joinpath("final.json").write_text(json.dumps(dict(arch="resnet20", seed=0, device="cpu", precision="bf16-mixed",
                                                         torch_threads=1, iterations=500, wall_time_s=3640.0)))
    readme = tmp_path / "README.md"
    readme.write_text(f"{H.MARKERS[0]}\n{H.MARKERS[1]}\n{H.RUNTIME_MARKERS[0]}\nstale\n{H.RUNTIME_MARKERS[1]}\n")
    assert H.update_readme(readme, tmp_path / "results", tmp_path / "figures")
    text = readme.read_text()
    assert "| `quarter` | resnet20 | 0 | cpu | bf16-mixed | 1 | 0.100 | 1 min | 1 h 01 min |" in text
    assert "stale" not in text and "finished runs**" not in text  # one run: no total
    second = rd.parent.parent / "resnet56" / "seed0"
    second.mkdir(parents=True)
    second.joinpath("metrics.csv").write_text("iteration,train_loss,elapsed_s\n" + "".join(
        f"{100 * (i + 1)},1.0,{60.0 * (i + 1)}\n" for i in range(5)))  # 0.6 s/it: 5 min of training
    second.joinpath("final.json").write_text(json.dumps(dict(arch="resnet56", seed=0, device="cpu", iterations=500,
                                                             precision="bf16-mixed", torch_threads=2, wall_time_s=360)))
    assert H.update_readme(readme, tmp_path / "results", tmp_path / "figures")
    assert "| `quarter` | **all 2 finished runs** | | | | | | **6 min** | **1 h 07 min** |" in readme.read_text()
    # a run resumed on another CPU names both (session_devices, in order of first use)
    f = json.loads(second.joinpath("final.json").read_text())
    second.joinpath("final.json").write_text(json.dumps(dict(f, device="cpu (B)", session_devices=["cpu (A)", "cpu (B)"])))
    assert H.update_readme(readme, tmp_path / "results", tmp_path / "figures")
    assert "| `quarter` | resnet56 | 0 | cpu (A) + cpu (B) | bf16-mixed | 2 | 0.600 |" in readme.read_text()
    # and where its sessions.jsonl says a session's CPU had no native bf16, the device column says so too
    second.joinpath("sessions.jsonl").write_text("".join(json.dumps(d) + "\n" for d in (
        dict(from_iteration=0, device="cpu (A)", native_bf16=True),
        dict(from_iteration=300, device="cpu (B)", native_bf16=False))))
    assert H.update_readme(readme, tmp_path / "results", tmp_path / "figures")
    assert "| resnet56 | 0 | cpu (A) + cpu (B, no native bf16) | bf16-mixed |" in readme.read_text()
