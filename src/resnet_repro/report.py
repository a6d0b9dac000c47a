"""The report pages: templates filled in from the collected CSVs (never by hand).

Every sentence that states a result is computed by a study (resnet_repro.studies) from results/<preset>/*.csv, so
the notebooks (which call the same helpers) and the report say the same thing. This module fills the fields every
page shares (scale, data, figures, what is missing, provenance) and loops over the studies of each page for the
rest. A run that has not happened is listed as missing; nothing here fails for want of a run.
"""

from __future__ import annotations

import base64
import os
import re
import string
from importlib import resources
from pathlib import Path

from . import studies as S
from .collect import load_collected
from .config import preset_family
from .paths import preset_dir
from .wording import data_text, missing_text, provenance_table, scale_text

# (family, page) -> (template in resnet_repro/templates/, file written in report/<preset>/, HTML title). Templates
# ship inside the package, found through importlib.resources: an installed package works as well as this checkout.
PAGES = {("cifar", "report"): ("report.md", "report", "ResNet reproduction: {preset}"),
         ("imagenet", "report"): ("report_imagenet.md", "report", "ResNet reproduction: {preset}"),
         ("cifar", "beyond"): ("beyond.md", "beyond", "Beyond the paper: {preset}")}


def template_text(name: str) -> str:
    return resources.files("resnet_repro").joinpath("templates", name).read_text(encoding="utf-8")


def relpath(target: Path, start: Path) -> str:
    return os.path.relpath(target.resolve(), start.resolve())


def figure_links(studies, fdir: Path, report_dir: Path) -> str:
    """The figures of `studies` that have been drawn, in registry order, each with a link to its PDF."""
    drawn = [(fdir / f"{name}.png", s.CAPTIONS[key]) for s in studies for key, name in s.FIGURES.items()
             if (fdir / f"{name}.png").is_file()]
    if not drawn:
        return "_No figures yet (`make figures`)._"
    rel = Path(relpath(fdir, report_dir))
    return "\n\n".join(f"![{p.stem}]({(rel / p.name).as_posix()})\n\n*{text}* (`{p.stem}`, "
                        f"[PDF]({(rel / p.with_suffix('.pdf').name).as_posix()}))" for p, text in drawn)


def build_report(preset: str, results: str | Path = "results", figures: str | Path = "figures",
                 report: str | Path = "report", studies=None) -> list[Path]:
    """report/<preset>/<page>.md and .html for every page of the preset's family; returns the Markdown paths."""
    t = load_collected(preset, results)
    fdir, out_dir = preset_dir(figures, preset), preset_dir(report, preset)
    out_dir.mkdir(parents=True, exist_ok=True)
    family, written = preset_family(preset), []
    for (fam, page), (template, name, title) in PAGES.items():
        members = S.of_family(family, page, studies)
        if fam != family or not members:
            continue
        fields = dict(preset=preset, scale=scale_text(preset), data=data_text(t["runs"]),
                      figures=figure_links(members, fdir, out_dir), missing=missing_text(t["status"]),
                      provenance=provenance_table(t["runs"]), n_runs=str(len(t["runs"])))
        for study in members:
            fields.update(study.report_fields(t, preset, fdir))
        md = string.Template(template_text(template)).substitute(fields)
        (out_dir / f"{name}.md").write_text(md)
        (out_dir / f"{name}.html").write_text(to_html(md, out_dir, title.format(preset=preset)))
        print(f"[report] wrote {out_dir / (name + '.md')} and {name}.html ({len(t['runs'])} runs)", flush=True)
        written.append(out_dir / f"{name}.md")
    return written


def to_html(md: str, base: Path, title: str) -> str:
    """Markdown -> one self-contained HTML page: images are inlined as data URIs."""
    import mistune

    body = mistune.create_markdown(plugins=["table"])(md)

    def inline(m: re.Match) -> str:
        src = m.group(1)
        f = (base / src).resolve()
        if f.is_file():
            return f'src="data:image/png;base64,{base64.b64encode(f.read_bytes()).decode()}"'
        return m.group(0)

    body = re.sub(r'src="([^"]+\.png)"', inline, body)
    css = ("body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em;line-height:1.5}"
           "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em}img{max-width:100%}"
           "code{background:#f4f4f4}")
    return f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title><style>{css}</style>" \
           f"</head><body>{body}</body></html>\n"
