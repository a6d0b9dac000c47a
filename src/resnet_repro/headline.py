"""The README's headline results (issue 20) and measured run times, generated between markers by `make report`,
never typed.

For each CIFAR preset with finished runs (the paper's protocol first, then the scaled-down ones): Table 6 as mean
± std over seeds with n, precision and device beside the paper's number, one line per claim (claims.holds) saying
whether it holds at that budget, and the Fig. 1 and Fig. 6 images. Then each ImageNet-style preset alike: Table 2/3's
nets, the claims of imagenet_claims.holds, and Fig. 4.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import imagenet_claims
from .claims import CLAIMS, holds
from .collect import load_collected
from .experiments import CIFAR_NETS, IMAGENET_NETS
from .paper import FINAL_REPRO, FINAL_REPRO_N, FINAL_REPRO_NOTE, PAPER_TABLE2, PAPER_TABLE3, PAPER_TABLE6
from .models import arch_order
from .paths import preset_dir, runs_root
from .runfolder import seconds_per_iteration, session_devices
from .studies import degradation as DG
from .wording import data_text, devices_text, scale_text

MARKERS = ("<!-- headline:begin (make report writes this section) -->", "<!-- headline:end -->")
RUNTIME_MARKERS = ("<!-- runtimes:begin (make report writes this table) -->", "<!-- runtimes:end -->")
PRESETS_SHOWN = ("paper", "quarter", "short")
IMAGENET_PRESETS_SHOWN = ("imagenette", "imagenette-cpu")
RUNTIME_PRESETS = ("paper", "quarter", "short", "short-bf16", "imagenette", "imagenette-cpu")


def _mean_sd(g, col: str) -> str:
    e = 100 * g[col].astype(float)
    return f"{e.mean():.2f} ± {e.std(ddof=1):.2f}" if len(g) > 1 else f"{e.mean():.2f}"


def _table(runs, nets, cols: list[tuple[str, str]], refs: list[tuple[str, dict[str, str]]]) -> list[str]:
    """One row per net that ran: n, each (header, column) as mean ± std over seeds, precision, device, then each
    (header, {arch: text}) of published numbers."""
    rows = ["| net | n | " + " | ".join(h for h, _ in cols) + " | precision | device | "
            + " | ".join(h for h, _ in refs) + " |",
            "|---|---:|" + "---:|" * len(cols) + "---|---|" + "---:|" * len(refs)]
    for arch in [a for a in nets if a in set(runs.arch)]:
        g = runs[runs.arch == arch]
        prec = ", ".join(sorted(set(g.precision.dropna().astype(str)))) if "precision" in g else ""
        dev = devices_text(g.device)
        ref = " | ".join(texts.get(arch, "–") for _, texts in refs)
        rows.append(f"| {arch} | {len(g)} | " + " | ".join(_mean_sd(g, c) for _, c in cols) + f" | {prec} | {dev} | {ref} |")
    return rows


def _claims_and_images(verdicts: dict, fdir: Path, names: tuple[str, ...]) -> list[str]:
    lines = []
    for claim, (ok, note) in verdicts.items():
        verdict = "not decidable yet" if ok is None else ("**holds**" if ok else "**does not hold**")
        lines.append(f"- {claim}: {verdict} ({note})")
    imgs = [f for f in names if (fdir / f"{f}.png").is_file()]
    if imgs:
        width = "32%" if len(imgs) > 1 else "64%"
        lines += ["", " ".join(f'<img src="{(fdir / f"{f}.png").as_posix()}" width="{width}">' for f in imgs)]
    return lines


def preset_section(preset: str, results: str | Path, figures: str | Path) -> str | None:
    t = load_collected(preset, results)
    runs = t["runs"]
    if runs.empty:
        return None
    refs = [("paper", {a: f"{v:.2f}" for a, v in PAPER_TABLE6.items()}),
            (f"final-iterate repro (n={FINAL_REPRO_N})", {a: f"{m:.2f} ± {s:.2f}" for a, (m, s) in FINAL_REPRO.items()})]
    rows = _table(runs, CIFAR_NETS, [("test error (%)", "final_test_err")], refs)
    lines = [f"### `{preset}`: {scale_text(preset)}", "", f"Data: {data_text(runs)}.", "", *rows, ""]
    have = set(runs.arch)
    # A Fig. 6 panel whose nets have no run would be an empty frame; Fig. 1 is a comparison, shown once both nets ran.
    shown = [DG.FIGURES["fig1"]] if set(DG.FIG1_ARCHS) <= have else []
    shown += [DG.FIGURES[w] for w in ("plain", "resnet") if set(DG.FIG6_ARCHS[w]) & have]
    lines += _claims_and_images(holds(t), preset_dir(figures, preset), tuple(shown))
    return "\n".join(lines)


def imagenet_section(preset: str, results: str | Path, figures: str | Path) -> str | None:
    """An ImageNet-style preset: the nets of Tables 2 and 3 (val error, top-1, 10-crop, of the final iterate), the
    four claims of imagenet_claims and Fig. 4."""
    runs = load_collected(preset, results)["runs"]
    if runs.empty:
        return None
    paper = {**PAPER_TABLE2, **{a: v[0] for a, v in PAPER_TABLE3.items()}}
    rows = _table(runs, IMAGENET_NETS, [("val error, 10-crop (%)", "final_val_10crop_err"),
                                        ("training error (%)", "final_train_err")],
                  [("paper (ImageNet, 10-crop)", {a: f"{v:.2f}" for a, v in paper.items()})])
    lines = [f"### `{preset}` (ImageNet-style, Fig. 4, Tables 2 and 3): {scale_text(preset)}", "",
             f"Data: {data_text(runs)}.", "", *rows, ""]
    lines += _claims_and_images(imagenet_claims.holds(runs), preset_dir(figures, preset),
                                ("fig4_imagenet_plain_vs_resnet_18_vs_34",))
    return "\n".join(lines)


def section(results: str | Path = "results", figures: str | Path = "figures") -> str:
    parts = [s for p in PRESETS_SHOWN if (s := preset_section(p, results, figures))]
    parts += [s for p in IMAGENET_PRESETS_SHOWN if (s := imagenet_section(p, results, figures))]
    head = ("Final iterates (the test or val set selects nothing); mean ± std over seeds where n > 1. The claims "
            f"are the paper's ({len(CLAIMS)} checks on CIFAR-10, see `src/resnet_repro/claims.py`; "
            f"{len(imagenet_claims.CLAIMS)} on the ImageNet-style nets, `src/resnet_repro/imagenet_claims.py`); "
            "scaled-down presets are labelled so. A claim **holds** when its inequality holds on the means over "
            "seeds; its note says n and whether the difference beats the noise (the seed spread and, for test "
            "errors, the test set's sampling noise, paired image by image where the runs' test outcomes exist): "
            "one within the noise is not yet a finding. Both published columns train "
            f"the paper's full schedule; final-iterate repro: {FINAL_REPRO_NOTE}.")
    return "\n\n".join([head] + parts) if parts else "_No finished runs yet._"


def runtime_table(results: str | Path = "results") -> str:
    """Every finished run's measured speed and time, per preset: the median seconds per iteration over its evaluation
    intervals (so the time the campaign spent paused or stopped does not count), that speed times its iterations,
    and the wall time its final.json recorded (which does count them). The device column names every machine the run
    trained on (final.json's session_devices) where it lists them."""
    rows = ["| preset | net | seed | device | precision | torch threads | s / iteration | training time | "
            "wall time recorded |", "|---|---|---:|---|---|---:|---:|---:|---:|"]
    for preset in RUNTIME_PRESETS:
        train, wall, n = 0.0, 0.0, 0
        for rd in sorted(runs_root(results, preset).glob("*/seed*"), key=lambda d: (arch_order(d.parent.name), d.name)):
            if not (rd / "final.json").is_file():
                continue
            f = json.loads((rd / "final.json").read_text())
            spi = seconds_per_iteration(rd)
            # A run resumed on another machine names both; from sessions.jsonl where final.json lists them, which
            # marks the sessions on a CPU without native bf16 that trained before device names said so.
            listed = f.get("session_devices")
            dev = " + ".join((session_devices(rd) if listed else None) or listed or [f["device"]])
            rows.append(f"| `{preset}` | {f['arch']} | {f['seed']} | {dev} | {f.get('precision') or '–'} | "
                        f"{f.get('torch_threads') or '–'} | "
                        + (f"{spi:.3f} | {_hm(spi * f['iterations'])} | " if spi else "– | – | ")
                        + f"{_hm(f['wall_time_s'])} |")
            train, wall, n = train + (spi or 0) * f["iterations"], wall + f["wall_time_s"], n + 1
        if n > 1:  # what the preset's finished runs took together, as one worker after another
            rows.append(f"| `{preset}` | **all {n} finished runs** | | | | | | **{_hm(train)}** | **{_hm(wall)}** |")
    return "\n".join(rows) if len(rows) > 2 else "_No finished runs yet._"


def _hm(seconds: float) -> str:
    m = round(float(seconds) / 60)
    return f"{m // 60} h {m % 60:02d} min" if m >= 60 else f"{m} min"


def _replace(text: str, markers: tuple[str, str], body: str) -> str:
    a, b = markers
    head, rest = text.split(a, 1)
    return f"{head}{a}\n{body}\n{b}{rest.split(b, 1)[1]}"


def update_readme(readme: Path = Path("README.md"), results: str | Path = "results",
                  figures: str | Path = "figures") -> bool:
    """Rewrite the README between its markers; False (and nothing written) if it has none."""
    text = readme.read_text()
    if not all(m in text for m in MARKERS):
        return False
    text = _replace(text, MARKERS, section(results, figures))
    if all(m in text for m in RUNTIME_MARKERS):
        text = _replace(text, RUNTIME_MARKERS, runtime_table(results))
    readme.write_text(text)
    return True

