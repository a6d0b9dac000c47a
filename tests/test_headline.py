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
    assert "### `quarter`: **scaled-down**" in text and "| resnet56 | 2 | 8.50 ± 0.71 | bf16-mixed | cpu | 6.97 |" in text
    assert "2a. ResNet-56 below ResNet-20 (test error): **holds**" in text
    assert "`short`" not in text  # presets without runs are left out


def test_a_readme_without_markers_is_left_alone(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("no markers\n")
    assert not H.update_readme(readme, tmp_path, tmp_path)
    assert readme.read_text() == "no markers\n"
