"""The studies beyond the paper, one module each: measurement, table, verdict, figure and report fields together.

A study module defines TABLES (collected table -> columns), FIGURES (key -> file name), `draw(b, preset, runs)` ->
[(figure, file name)] and `report_fields(b, figures_dir)` -> the fields of templates/beyond.md it fills.
`STUDIES` lists them in report order; beyond.py loops over it to collect, draw and report. A new study is one module
here and one entry in STUDIES (and its placeholders in the template).
"""

from __future__ import annotations

from . import gradflow, identity, landscapes, lesions

STUDIES = [gradflow, identity, landscapes, lesions]
