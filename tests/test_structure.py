"""Issue 19: the package's module-level imports form no circle."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "src" / "resnet_repro"


def graph(nested: bool = False) -> dict[str, set[str]]:
    """Module (dotted, relative to the package) -> the package modules it imports at module level (and, with
    `nested`, inside functions too)."""
    g: dict[str, set[str]] = {}
    modules = {".".join(f.relative_to(PKG).with_suffix("").parts) for f in PKG.rglob("*.py")}
    for f in PKG.rglob("*.py"):
        name = ".".join(f.relative_to(PKG).with_suffix("").parts)
        package = name.split(".")[:-1]
        deps = set()
        tree = ast.parse(f.read_text())
        for node in (ast.walk(tree) if nested else tree.body):
            if isinstance(node, ast.ImportFrom) and node.level >= 1:
                base = package[:len(package) - (node.level - 1)]
                targets = [node.module] if node.module else [a.name for a in node.names]
                for t in targets:
                    parts = base + t.split(".")
                    while parts and ".".join(parts) not in modules:
                        if ".".join(parts + ["__init__"]) in modules:
                            parts = parts + ["__init__"]  # a package: its __init__ runs (and imports what it names)
                            break
                        parts = parts[:-1]  # a name inside a module
                    if parts:
                        deps.add(".".join(parts))
                        # importing a.b.c runs a/__init__ and a/b/__init__ first, unless the importer is inside them
                        for k in range(1, len(parts) - (parts[-1] == "__init__")):
                            pkg = ".".join(parts[:k])
                            if f"{pkg}.__init__" in modules and not name.startswith(pkg + "."):
                                deps.add(f"{pkg}.__init__")
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
    assert "studies.__init__" in g["collect"] and "studies.degradation" in g["studies.__init__"]  # packages count
    nested = graph(nested=True)  # campaign imports studies.gradflow inside a function: that runs studies/__init__ too
    assert {"studies.gradflow", "studies.__init__"} <= nested["campaign"]
    assert "studies.__init__" not in g["studies.lesions"]  # a module's own package is already being imported
    assert cycle(g) is None, " -> ".join(cycle(g))


def test_no_import_inside_a_function_hides_a_circle():
    """Issue 19: an import moved into a function to dodge a circle is still a circle."""
    g = graph(nested=True)
    assert cycle(g) is None, " -> ".join(cycle(g))


def test_no_module_is_much_over_400_lines():
    """Issue 19: one module reads top to bottom; past ~400 lines it holds more than one thing. The tests too: a study's
    tests are one file beside it (test_gradflow.py for studies/gradflow.py), not a section of a long one."""
    files = list(PKG.rglob("*.py")) + list(Path(__file__).parent.glob("*.py"))
    sizes = {f.as_posix(): len(f.read_text().splitlines()) for f in files}
    assert max(sizes.values()) <= 440, sorted(sizes.items(), key=lambda kv: -kv[1])[:3]


def test_every_study_keeps_the_contract_of_the_registry():
    """Issue 19: collect, figures, report and notebooks rely on these names of every study in STUDIES."""
    from resnet_repro import report, studies

    families = {fam for fam, _ in report.PAGES}
    for st in studies.STUDIES:
        assert st.FAMILY in families and (st.FAMILY, st.PAGE) in report.PAGES, st.__name__
        for name in ("TABLES", "FIGURES", "CAPTIONS", "collect", "draw", "report_fields"):
            assert hasattr(st, name), (st.__name__, name)
        assert set(st.CAPTIONS) == set(st.FIGURES), st.__name__  # every figure says what it shows
        assert all(len(c) > 40 and c.endswith(".") for c in st.CAPTIONS.values()), st.__name__
        if hasattr(st, "COMMANDS"):
            assert hasattr(st, "add_commands") and hasattr(st, "dispatch"), st.__name__
    keys = [k for st in studies.STUDIES for k in st.TABLES]
    names = [n for st in studies.STUDIES for n in st.FIGURES.values()]
    assert len(keys) == len(set(keys)) and len(names) == len(set(names))  # no two studies write one file


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
