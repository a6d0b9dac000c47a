"""Issue 19: the package's module-level imports form no circle."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "src" / "resnet_repro"


def graph() -> dict[str, set[str]]:
    """Module (dotted, relative to the package) -> the package modules it imports at module level."""
    g: dict[str, set[str]] = {}
    modules = {".".join(f.relative_to(PKG).with_suffix("").parts) for f in PKG.rglob("*.py")}
    for f in PKG.rglob("*.py"):
        name = ".".join(f.relative_to(PKG).with_suffix("").parts)
        package = name.split(".")[:-1]
        deps = set()
        for node in ast.parse(f.read_text()).body:  # module level only
            if isinstance(node, ast.ImportFrom) and node.level >= 1:
                base = package[:len(package) - (node.level - 1)]
                targets = [node.module] if node.module else [a.name for a in node.names]
                for t in targets:
                    parts = base + t.split(".")
                    while parts and ".".join(parts) not in modules:
                        parts = parts[:-1]  # a name inside a module, or a package's __init__
                    if parts:
                        deps.add(".".join(parts))
        g[name] = deps - {name}
    return g


def cycle(g: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}

    def visit(n: str, path: list[str]) -> list[str] | None:
        state[n] = 1
        for m in sorted(g.get(n, ())):
            if state.get(m) == 1:
                return path + [n, m]
            if m not in state and (c := visit(m, path + [n])):
                return c
        state[n] = 2
        return None

    for n in sorted(g):
        if n not in state and (c := visit(n, [])):
            return c
    return None


def test_no_import_circle_among_the_modules():
    g = graph()
    assert {"train", "data", "hooks", "wording", "collect", "report", "studies.gradflow"} <= set(g)
    assert "studies.common" in g["studies.lesions"] and "hooks" in g["train"]
    assert cycle(g) is None, " -> ".join(cycle(g))


def test_the_cycle_finder_finds_one():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) is not None
    assert cycle({"a": {"b"}, "b": set()}) is None


def test_templates_are_package_data_found_through_importlib_resources():
    """Issue 19: no path built from parents[2]; an installed package finds its templates."""
    from importlib import resources

    for name in ("report.md", "report_imagenet.md", "beyond.md"):
        assert resources.files("resnet_repro").joinpath("templates", name).is_file(), name
    assert 'resnet_repro = ["templates/*.md"]' in (PKG.parents[1] / "pyproject.toml").read_text()
    assert not any("parents[2]" in line and "template" in line for f in PKG.rglob("*.py")
                   for line in f.read_text().splitlines())
