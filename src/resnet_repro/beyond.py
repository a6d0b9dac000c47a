"""Beyond the paper (issue #8): four mechanisms that explain residual learning, measured on the nets of this
reproduction as steps of the same pipeline (run folders -> collected CSVs -> figures -> notebook -> report).

1. **Gradient flow.** The norm of the gradient of the loss with respect to each block's input and to each
   layer's weights, for plain and residual nets of 20, 56 and 110 layers: at initialisation (averaged over the
   first batches of a run), at the final weights of finished runs, and during training (`--gradflow-every N`).
2. **Identity-mapping variants** (He et al., ECCV 2016, Tables 1 and 2): the block forms of models.VARIANTS,
   trained like any other net (`make identity`: `grid --experiment identity`, experiments.IDENTITY_GRID),
   tabulated here beside the ECCV paper's medians.
3. **Loss landscapes** (Li et al., NeurIPS 2018): the training loss around the final weights along
   filter-normalised random directions, 1-D and 2-D.
4. **Block lesions** (Veit et al., NeurIPS 2016): the test error of a trained net with one block removed.

Definitions and choices (each also stated in the report section):

* Gradient norms are L2 norms of the whole gradient tensor of the batch's *mean* cross-entropy: for a block,
  dL/dx over the batch (B x C x H x W entries); for a layer, dL/dW. `grad_rms` divides by the square root of
  the number of entries. The net is in training mode (batch-statistics BN, as SGD sees it). Offline, each
  quantity is the mean over `n_batches` batches (its std beside it); the batches are the run's first training
  batches (seeded, augmented; data.TrainStream), and "init" weights are those seed k's run starts from.
* A lesioned block returns its shortcut path alone (identity, or option A's subsample + zero-pad), which for the
  post-activation ResNet equals its output with the residual branch set to zero. A plain block can be removed
  only where its input and output shapes match (it becomes the identity). Test errors use the final weights in
  inference mode (BN running statistics kept, not recomputed, as in Veit et al.).
* Landscape directions: one Gaussian direction per parameter tensor, each filter (slice along the first axis: a
  conv's output channel, a linear layer's row) rescaled to the norm of the same filter of the weights; entries
  of 1-D parameters (BN weights and biases, biases) are zero (Li et al.'s "filter" normalisation with
  "biasbn" ignored). The loss is evaluated in inference mode with the final net's BN running statistics (as Li
  et al.'s code, which calls net.eval(); the statistics are not recomputed for the perturbed weights), on a
  fixed seeded subset of un-augmented training images. The 2-D plane uses two independent directions (nearly
  orthogonal in this dimension; their cosine is recorded).
"""

from __future__ import annotations

import json
import string
from pathlib import Path

import pandas as pd

from .analyze import finished_runs
from .models import parse_arch
from .studies import STUDIES
from .studies.common import RUN_FILES, runs_frame
from .studies.gradflow import GRADFLOW_ARCHS, gradflow_final, gradflow_init
from .studies.identity import variants_markdown, variants_table
from .studies.landscapes import LANDSCAPE_ARCHS, landscape_preset
from .studies.lesions import lesion_preset

# Every collected table and figure of the studies (results/<preset>/<key>.csv, figures/<preset>/<name>.png|pdf).
TABLE_COLUMNS = {k: v for st in STUDIES for k, v in st.TABLES.items()}
FIGURE_NAMES = {k: v for st in STUDIES for k, v in st.FIGURES.items()}


# ============================================================================= collect


def collect_beyond(preset: str, results: str | Path = "results") -> dict[str, pd.DataFrame]:
    """Gather the run folders' files into results/<preset>/{gradflow_final,gradflow_train,lesion,landscape_1d,
    landscape_2d,identity_variants}.csv (only the non-empty ones are written)."""
    out = Path(results) / preset
    # Finished runs only: a run still training has a partial gradflow.csv that would read as the whole record.
    run_dirs = finished_runs(preset, results)
    tables = {}
    for key, fname in RUN_FILES.items():
        frames = [pd.read_csv(r / fname) for r in run_dirs if (r / fname).is_file() and (r / fname).stat().st_size]
        tables[key] = (pd.concat(frames, ignore_index=True).reindex(columns=TABLE_COLUMNS[key]) if frames
                       else pd.DataFrame(columns=TABLE_COLUMNS[key]))
    finals = [json.loads((r / "final.json").read_text()) for r in run_dirs]
    tables["identity_variants"] = variants_table(finals)
    for key, df in tables.items():
        if not df.empty:
            df.to_csv(out / f"{key}.csv", index=False)
    written = [k for k, df in tables.items() if not df.empty]
    print(f"[beyond] {out}: wrote {', '.join(k + '.csv' for k in written) or 'nothing (no data yet)'}", flush=True)
    return tables


def load_beyond(preset: str, results: str | Path = "results") -> dict:
    """Every table of issue 8 for a preset (empty frames where missing), the gradflow_init provenance ("init_meta",
    {} if none) and the finished runs' final.json contents as a frame ("runs")."""
    d = Path(results) / preset
    out: dict = {}
    for key, cols in TABLE_COLUMNS.items():
        f = d / f"{key}.csv"
        out[key] = pd.read_csv(f) if f.is_file() and f.stat().st_size else pd.DataFrame(columns=cols)
    meta = d / "gradflow_init.json"
    out["init_meta"] = json.loads(meta.read_text()) if meta.is_file() else {}
    finals = [json.loads(p.read_text()) for p in sorted(d.glob("runs/*/seed*/final.json"))]
    out["runs"] = pd.DataFrame(finals)
    out["landscape_meta"] = [json.loads(p.read_text()) for p in sorted(d.glob("runs/*/seed*/landscape.json"))]
    out["lesion_meta"] = [json.loads(p.read_text()) for p in sorted(d.glob("runs/*/seed*/lesion.json"))]
    return out


# ============================================================================= figures


def make_beyond_figures(preset: str, results: str | Path = "results", figures: str | Path = "figures",
                        b: dict | None = None) -> list[Path]:
    """Every issue-8 figure whose data exist, PNG and PDF, into figures/<preset>/ (plus identity_variants.md)."""
    from .figures import save_figure

    b = b or load_beyond(preset, results)
    out = Path(figures) / preset
    runs = runs_frame(b)
    paths: list[Path] = []
    for study in STUDIES:
        for fig, name in study.draw(b, preset, runs):
            paths += save_figure(fig, out, name)
    if not b["identity_variants"].empty:
        out.mkdir(parents=True, exist_ok=True)
        (out / "identity_variants.md").write_text(variants_markdown(b["identity_variants"]), encoding="utf-8")
        paths.append(out / "identity_variants.md")
    print(f"[beyond] {out}: {len(paths)} files", flush=True)
    return paths


# ============================================================================= report


TEMPLATE = "beyond.md"  # resnet_repro/templates/beyond.md (report.template_text)


def build_beyond_report(preset: str, results: str | Path = "results", figures: str | Path = "figures",
                        report: str | Path = "report", b: dict | None = None) -> Path:
    """report/<preset>/beyond.md (and beyond.html) from templates/beyond.md and the collected tables."""
    from . import report as R
    from . import wording as W

    b = b or load_beyond(preset, results)
    out_dir = Path(report) / preset
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = b["init_meta"]
    runs = b["runs"] if not b["runs"].empty and "data_source" in b["runs"] else pd.DataFrame()
    data = W.data_text(runs) if not runs.empty else (
        W.data_text(pd.DataFrame({"data_source": [meta["data_source"]]})) if meta else "no measurements yet")
    fdir = Path(figures) / preset
    figs = [p for p in sorted(fdir.glob("beyond_*.png"))] if fdir.is_dir() else []
    rel = Path(R.relpath(fdir, out_dir)) if figs else Path(".")
    fig_md = "\n\n".join(f"![{p.stem}]({(rel / p.name).as_posix()})\n\n*{p.stem.replace('_', ' ')}* "
                         f"([PDF]({(rel / p.with_suffix('.pdf').name).as_posix()}))" for p in figs) \
        or "_No figures yet (`python -m resnet_repro beyond --preset ...`)._"
    scale = W.scale_text(preset)
    if runs.empty and meta:  # a folder of its own for the measurement at initialisation (no training)
        scale = (f"measurements at initialisation only (no training), with the data settings of the "
                 f"`{meta.get('preset')}` preset")
    fields = dict(preset=preset, scale=scale, data=data, figures=fig_md)
    for study in STUDIES:
        fields.update(study.report_fields(b, fdir))
    md = string.Template(R.template_text(TEMPLATE)).substitute(fields)
    (out_dir / "beyond.md").write_text(md)
    (out_dir / "beyond.html").write_text(R.to_html(md, out_dir, f"Beyond the paper: {preset}"))
    print(f"[report] wrote {out_dir / 'beyond.md'} and beyond.html", flush=True)
    return out_dir / "beyond.md"


# ============================================================================= command line

COMMANDS = ("gradflow", "lesion", "landscape", "beyond")


def add_commands(sub, preset_arg) -> None:
    """The issue-8 subcommands of `python -m resnet_repro` (cli.py calls this)."""
    g = sub.add_parser("gradflow", help="gradient norms per block and layer: at init (plain/ResNet 20/56/110) "
                                        "and at the final weights of finished runs")
    preset_arg(g)
    g.add_argument("--data-dir", default=None)
    g.add_argument("--archs", default=",".join(GRADFLOW_ARCHS), help="nets measured at initialisation")
    g.add_argument("--seed", type=int, default=0, help="whose initial weights and first batches (default 0)")
    g.add_argument("--batches", type=int, default=8, help="batches averaged (default 8, of the preset's batch size)")
    g.add_argument("--dest", default=None, help="folder for gradflow_init.csv/.json (default results/<preset>)")
    g.add_argument("--init-only", action="store_true", help="skip the finished runs (final weights)")
    g.add_argument("--final-only", action="store_true", help="skip the measurement at initialisation (keeps "
                   "gradflow_init.csv as it is)")
    g.add_argument("--force", action="store_true", help="recompute gradflow_final.csv where it exists")

    les = sub.add_parser("lesion", help="test error with one block removed at a time (Veit et al. 2016), per "
                                        "finished run with a checkpoint -> <run>/lesion.csv")
    preset_arg(les)
    les.add_argument("--data-dir", default=None)
    les.add_argument("--archs", default=None, help="comma-separated nets (default: every finished CIFAR run)")
    les.add_argument("--force", action="store_true")

    ls = sub.add_parser("landscape", help="1-D and 2-D loss landscape around final weights (Li et al. 2018) -> "
                                          "<run>/landscape_1d.csv, landscape_2d.csv")
    preset_arg(ls)
    ls.add_argument("--data-dir", default=None)
    ls.add_argument("--archs", default=",".join(LANDSCAPE_ARCHS))
    ls.add_argument("--seed", type=int, default=0, help="which run of each net (default seed 0)")
    ls.add_argument("--grid", type=int, default=51, help="points per axis of the 2-D grid over [-1, 1]^2")
    ls.add_argument("--grid-1d", type=int, default=None, help="points of the 1-D curve (default: --grid)")
    ls.add_argument("--subset", type=int, default=2000, help="training images the loss is evaluated on")
    ls.add_argument("--dir-seed", type=int, default=0, help="seed of the random directions")
    ls.add_argument("--force", action="store_true")

    b = sub.add_parser("beyond", help="issue 8: collect the run folders' gradflow/lesion/landscape files, draw the "
                                      "figures, write report/<preset>/beyond.md [and run notebook 05]")
    preset_arg(b)
    b.add_argument("--figures", default="figures")
    b.add_argument("--report", default="report")
    b.add_argument("--notebook", action="store_true", help="also execute notebooks/<preset>/05_beyond_the_paper")
    b.add_argument("--notebooks", default=None, help="where the executed notebook goes (default notebooks/)")


def _list(s: str | None) -> list[str] | None:
    return [a for a in s.split(",") if a] if s else None


def dispatch(args) -> int:
    cmd = args.command
    if cmd == "gradflow":
        archs = _list(args.archs)
        for a in archs:
            parse_arch(a)  # a bad name fails before any work
        if args.init_only and args.final_only:
            raise ValueError("--init-only and --final-only exclude each other")
        if not args.final_only:
            gradflow_init(args.preset, archs, args.seed, args.batches, args.data_dir, args.dest, args.results)
        if not args.init_only:
            gradflow_final(args.preset, args.results, args.data_dir, n_batches=args.batches, force=args.force)
        return 0
    if cmd == "lesion":
        lesion_preset(args.preset, args.results, args.data_dir, _list(args.archs), args.force)
        return 0
    if cmd == "landscape":
        archs = _list(args.archs)
        for a in archs:
            parse_arch(a)
        if args.grid < 1 or args.subset < 1:
            raise ValueError("--grid and --subset must be positive")
        landscape_preset(args.preset, archs, args.seed, args.grid, args.grid_1d, args.subset, args.dir_seed,
                         args.results, args.data_dir, args.force)
        return 0
    if cmd == "beyond":
        if (Path(args.results) / args.preset / "runs").is_dir():
            collect_beyond(args.preset, args.results)
        b = load_beyond(args.preset, args.results)
        make_beyond_figures(args.preset, args.results, args.figures, b)
        build_beyond_report(args.preset, args.results, args.figures, args.report, b)
        if args.notebook:
            from .notebooks import run_notebooks

            run_notebooks(args.preset, out_root=args.notebooks, results=args.results, figures=args.figures,
                          names=["05_beyond_the_paper"])
        return 0
    raise ValueError(f"unknown command {cmd}")
