"""`python -m resnet_repro <command>`: every step of the study, from training to the report.

User mistakes (a bad arch, a bad seed, a missing data folder, ...) print one line and exit with 2,
before anything is written.
"""

from __future__ import annotations

import argparse
import sys


class UserError(Exception):
    pass


class OneLineParser(argparse.ArgumentParser):
    """A bad flag prints one line (the flag and what it takes), not the usage dump, and exits 2."""

    def error(self, message: str):
        print(f"error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(2)


def _preset_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="paper",
                   help="preset whose results to use (paper, short, smoke, imagenette, ...)")
    p.add_argument("--results", default="results", help="results root (default: results)")


def build_parser() -> argparse.ArgumentParser:
    from .config import add_config_args

    p = OneLineParser(prog="python -m resnet_repro",
                                description="Reproduce He et al. 2016, Deep Residual Learning (CIFAR-10; "
                                            "ImageNet-style 18/34-layer nets on an image folder).")
    sub = p.add_subparsers(dest="command", required=True, metavar="command")

    t = sub.add_parser("train", help="train one net into results/<preset>/runs/<arch>/seed<k>/",
                       description="Train one net. Every TrainConfig field is a flag; unset flags keep the "
                                   "preset's value. A finished run is skipped, an interrupted one resumes.")
    add_config_args(t)

    g = sub.add_parser("grid", help="train every run of the grid of a preset (see experiments.py)",
                       description="Train the grid of a preset (CIFAR or ImageNet-style), in priority order; "
                                   "finished runs are skipped.")
    add_config_args(g)
    g.add_argument("--only", default=None, help="comma-separated archs to restrict the grid to")
    g.add_argument("--no-estimate", action="store_true", help="print the plan without timing a few iterations")
    g.add_argument("--experiment", choices=["paper", "identity"], default="paper",
                   help="paper: the paper's nets (experiments.GRIDS); identity: the ResNet-110 block variants of "
                        "He et al., ECCV 2016 (experiments.IDENTITY_GRID)")

    m = sub.add_parser("models", help="list the registered nets with their parameter counts")
    m.add_argument("--format", choices=["table", "csv"], default="table")

    a = sub.add_parser("analyze", help="layer-response stds (Fig. 7), the images of their tail and the test images "
                                       "each finished run gets wrong: needs its final weights")
    _preset_arg(a)
    a.add_argument("--data-dir", default=None)
    a.add_argument("--force", action="store_true",
                   help="recompute layer_std.csv, test_wrong.json and response_tail.json even where they exist")

    c = sub.add_parser("collect", help="turn the run folders of a preset into results/<preset>/*.csv")
    _preset_arg(c)
    c.add_argument("--finished-only", action="store_true",
                   help="leave unfinished run folders out of status.csv, as a clone of the repository sees them "
                        "(to commit results while a campaign trains)")

    f = sub.add_parser("figures", help="draw figures/<preset>/* and the Table 6 files from the CSVs")
    _preset_arg(f)
    f.add_argument("--figures", default="figures")

    n = sub.add_parser("notebooks", help="execute the notebooks headless for a preset")
    _preset_arg(n)
    n.add_argument("--figures", default="figures")
    n.add_argument("--notebooks", default=None, help="where the executed notebooks go (default: notebooks/)")

    r = sub.add_parser("report", help="build report/<preset>/report.md and report.html from the CSVs")
    _preset_arg(r)
    r.add_argument("--figures", default="figures")
    r.add_argument("--report", default="report")

    b = sub.add_parser("bench", help="time this project's training path against the conventional pipeline")
    b.add_argument("--archs", default="resnet20", help="comma-separated archs")
    b.add_argument("--warmup", type=int, default=5, help="untimed iterations per path")
    b.add_argument("--iters", type=int, default=30, help="timed iterations per path")
    b.add_argument("--data-dir", default=None)
    b.add_argument("--out", default="results/bench")
    b.add_argument("--workers", type=int, default=None, help="DataLoader workers of the conventional path")
    b.add_argument("--compile", action="store_true", help="also time this project's path with torch.compile")

    bl = sub.add_parser("bench-layouts", help="CPU training throughput: 1 process x all threads vs 1 per core, "
                                              "fp32/bf16, oversubscribed (writes results/bench/<device>-layouts.csv)")
    bl.add_argument("--arch", default="resnet20")
    bl.add_argument("--warmup", type=int, default=5)
    bl.add_argument("--iters", type=int, default=30)
    bl.add_argument("--out", default="results/bench")
    bl.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)  # one process of a layout
    bl.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    bl.add_argument("--precision", default="32-true", help=argparse.SUPPRESS)
    bl.add_argument("--sync-dir", default=None, help=argparse.SUPPRESS)
    bl.add_argument("--compile", action="store_true", help=argparse.SUPPRESS)

    w = sub.add_parser("weights", help="publish final weights (safetensors + sha256 in final.json) of finished CIFAR runs",
                       description="Write <run>/weights.safetensors from checkpoints/final.ckpt for every finished "
                                   "CIFAR run of the presets, and the README's table of published nets.")
    w.add_argument("--presets", default="short,short-bf16,quarter,paper", help="comma-separated presets")
    w.add_argument("--results", default="results")
    w.add_argument("--force", action="store_true", help="rewrite files that exist")
    w.add_argument("--readme", default="README.md", help="README to update between its weights markers ('' to skip)")

    gp = sub.add_parser("gpu", help="turn a GPU lease into results: plan | lean | batch | status | collect | restore | "
                                    "unpack (gpu.py)")
    gp.add_argument("action", choices=["plan", "lean", "restore", "batch", "status", "collect", "unpack", "lane"])
    gp.add_argument("--train-args", default="", help="flags passed to every train command, as one string "
                                                       "(e.g. '--compile true')")
    gp.add_argument("--preset", default="paper")
    gp.add_argument("--results", default="results")
    gp.add_argument("--data", default="../shared/data/cifar10-jpeg", help="plan: the CIFAR-10 image folder to pack")
    gp.add_argument("--data-dir", default=None, help="lane/batch: the CIFAR-10 folder (batch: taken from the stage)")
    gp.add_argument("--stage-dir", default=None, help="batch: where the calls staged the data parts")
    gp.add_argument("--lanes", type=int, default=4, help="concurrent training processes sharing the GPU")
    gp.add_argument("--lane", type=int, default=0)
    gp.add_argument("--limit", type=int, default=None, help="only the first N runs of the queue (dry runs)")
    gp.add_argument("--no-bench", action="store_true", help="batch: skip the benchmark")
    gp.add_argument("--no-analysis", action="store_true", help="batch/lane: train only (no weights, stds, lesions)")
    gp.add_argument("--out", default=None, help="collect: the folder for the files to bring back ($OUT)")
    gp.add_argument("--pack-in", default=None, help="unpack: the folder holding collect's files")

    hl = sub.add_parser("readme", help="rewrite the README's headline results and published-weights table "
                                       "(between their markers) from the CSVs and run folders")
    hl.add_argument("--results", default="results")
    hl.add_argument("--figures", default="figures")
    hl.add_argument("--readme", default="README.md")

    cp = sub.add_parser("campaign", help="the background training campaign: start, status, stop, pause, resume",
                        description="A priority queue of runs (experiments.CAMPAIGNS) trained in the background by "
                                    "pinned workers; see campaign.py.")
    cp.add_argument("action", choices=["start", "status", "stop", "pause", "resume", "hold", "stage", "run", "post"],
                    help="start | status | stop | pause | resume; hold -- CMD (run CMD with the campaign paused); "
                         "stage --preset P (git add its analysed runs and outputs: `make land`); "
                         "run (the supervisor itself) and post --run DIR (one run's analysis) are internal")
    cp.add_argument("cmd", nargs="*", help="hold: the command to run with the campaign paused, after --")
    cp.add_argument("--name", default=None, help="campaign (experiments.CAMPAIGNS), e.g. quarter")
    cp.add_argument("--workers", type=int, default=None,
                    help="training processes (default: cores // threads, so one worker on all cores by default)")
    cp.add_argument("--threads", type=int, default=None,
                    help="torch threads per worker (default: cores // workers; workers x threads <= cores)")
    cp.add_argument("--data-dir", default=None, help="the CIFAR-10 folder (default: as `train`)")
    cp.add_argument("--imagenet-dir", default=None, help="the image folder of the ImageNet-style runs (Imagenette)")
    cp.add_argument("--run", default=None, help="post: the finished run folder to analyse")
    cp.add_argument("--preset", default=None, help="stage: the preset whose finished runs to stage for a commit")
    cp.add_argument("--until", default=None,
                    help="start: the end of the session, HH:MM or +MINUTES: prefer runs that finish (analysis "
                         "included) before it, and stop there (run: the same, as epoch seconds)")
    cp.add_argument("--slow-bf16", action="store_true",
                    help="start: train bf16 runs even on a CPU without native bf16 (AVX512_BF16/AMX), where autocast "
                         "emulates it many times slower than fp32; by default such a CPU trains the fp32 runs only")

    b = sub.add_parser("beyond", help="issue 8: collect, draw and report the studies beyond the paper (gradient "
                                      "flow, lesions, landscapes, identity variants) [and run notebook 05]")
    _preset_arg(b)
    b.add_argument("--figures", default="figures")
    b.add_argument("--report", default="report")
    b.add_argument("--notebook", action="store_true", help="also execute notebooks/<preset>/05_beyond_the_paper")
    b.add_argument("--notebooks", default=None, help="where the executed notebook goes (default notebooks/)")

    from .studies import ACROSS_PRESETS, STUDIES  # their own commands: gradflow, lesion, landscape; budget, ...

    for study in STUDIES:
        if hasattr(study, "add_commands"):
            study.add_commands(sub, _preset_arg)
    for study in ACROSS_PRESETS:
        sp = sub.add_parser(study.COMMAND, help=study.HELP)
        for folder in ("results", "figures", "report", "notebooks"):
            sp.add_argument(f"--{folder}", default=folder)
        if hasattr(study, "NOTEBOOK"):
            sp.add_argument("--notebook", action="store_true", help=f"also execute notebooks/{study.NOTEBOOK[0]}.ipynb")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .data import DataError

    try:
        return _dispatch(args)
    except (ValueError, DataError, UserError, FileExistsError) as e:  # runfolder.RunExists is a ValueError
        print(f"error: {e}", file=sys.stderr)
        return 2


def _dispatch(args) -> int:
    cmd = args.command
    if cmd == "models":
        from .models import model_table

        rows = model_table()
        if args.format == "csv":
            print("name,depth,residual,shortcut,params")
            for r in rows:
                print(f"{r['name']},{r['depth']},{r['residual']},{r['shortcut']},{r['params']}")
        else:
            print(f"{'name':<12}{'depth':>6}  {'residual':<9}{'shortcut':<9}{'params':>12}")
            for r in rows:
                print(f"{r['name']:<12}{r['depth']:>6}  {str(r['residual']):<9}{r['shortcut']:<9}{r['params']:>12,}")
        return 0
    if cmd in ("train", "grid"):
        from .config import config_from_args

        cfg = config_from_args(args)  # validates: bad input fails here, before anything is written
        from .train import train

        if cmd == "train":
            train(cfg)
            return 0
        import dataclasses

        from .experiments import EXPERIMENTS, grid_runs
        from .train import load_data

        if cfg.preset not in EXPERIMENTS[args.experiment]:
            raise UserError(f"no {args.experiment} grid for preset {cfg.preset!r} "
                            f"(it has: {', '.join(EXPERIMENTS[args.experiment])})")
        runs = grid_runs(cfg.preset, args.experiment)
        if args.only:
            keep = set(args.only.split(","))
            runs = [r for r in runs if r[0] in keep]
        from .plan import plan_text

        print(plan_text(cfg.preset, runs, measure=not args.no_estimate), flush=True)
        arrays = load_data(cfg)  # once for the whole grid
        for arch, seed in runs:
            train(dataclasses.replace(cfg, arch=arch, seed=seed), arrays=arrays)
        return 0
    if cmd == "analyze":
        from .analyze import analyze_preset

        analyze_preset(args.preset, args.results, args.data_dir, force=args.force)
        return 0
    if cmd == "collect":
        from .collect import collect

        collect(args.preset, args.results, finished_only=args.finished_only)
        return 0
    if cmd == "figures":
        from .figures import make_figures

        make_figures(args.preset, args.results, args.figures)
        return 0
    if cmd == "notebooks":
        from .notebooks import run_notebooks

        run_notebooks(args.preset, out_root=args.notebooks, results=args.results, figures=args.figures)
        return 0
    if cmd == "report":
        from .report import build_report

        build_report(args.preset, args.results, args.figures, args.report)
        return 0
    if cmd == "bench":
        from .bench import run_bench

        run_bench(args)
        return 0
    if cmd == "campaign":
        return _campaign(args)
    if cmd == "bench-layouts":
        from . import bench_layouts as BL

        if args.worker is not None:
            BL.worker(args.arch, args.threads, args.precision, args.warmup, args.iters, args.sync_dir, args.worker,
                      args.compile)
        else:
            BL.run_layouts(args.arch, args.warmup, args.iters, args.out)
        return 0
    if cmd == "weights":
        from pathlib import Path

        from .weights import export_preset, update_readme

        for preset in [p for p in args.presets.split(",") if p]:
            export_preset(preset, args.results, args.force)
        if args.readme:
            update_readme(Path(args.readme), args.results)
        return 0
    if cmd == "gpu":
        from .gpu import dispatch

        return dispatch(args)
    if cmd == "readme":
        from pathlib import Path

        from . import headline, weights

        if not headline.update_readme(Path(args.readme), args.results, args.figures):
            raise UserError(f"{args.readme} has no headline markers")
        weights.update_readme(Path(args.readme), args.results)  # the published-weights table follows the runs too
        print(f"[readme] headline results and the published-weights table written into {args.readme}")
        return 0
    if cmd == "beyond":
        return _beyond(args)
    from .collect import load_collected
    from .studies import ACROSS_PRESETS, STUDIES

    for study in STUDIES:
        if cmd in getattr(study, "COMMANDS", ()):
            return study.dispatch(args)
    for study in ACROSS_PRESETS:
        if cmd == study.COMMAND:
            study.write(args.results, args.figures, args.report, load_collected)
            if getattr(args, "notebook", False):
                from .notebooks import run_across

                run_across(study, args.notebooks, args.results, args.figures)
            return 0
    raise UserError(f"unknown command {cmd}")


def _beyond(args) -> int:
    """The beyond-the-paper page alone: collect (where there are runs), its figures and report [and notebook 05]."""

    from .collect import collect
    from .figures import make_figures
    from .paths import runs_root
    from .report import build_report

    if runs_root(args.results, args.preset).is_dir():
        collect(args.preset, args.results)
    make_figures(args.preset, args.results, args.figures, page="beyond")
    build_report(args.preset, args.results, args.figures, args.report)
    if args.notebook:
        from .notebooks import run_notebooks

        run_notebooks(args.preset, out_root=args.notebooks, results=args.results, figures=args.figures,
                      names=["05_beyond_the_paper"])
    return 0


def _campaign(args) -> int:
    import os
    import time
    from pathlib import Path

    from . import campaign as C, campaign_control as CC

    a = args.action
    workers, threads = C.layout(args.workers, args.threads, os.cpu_count() or 1)
    if a == "start":
        from .campaign_status import parse_until

        until = parse_until(args.until, time.time()) if args.until else None
        return CC.start(args.name or "quarter", workers, threads, args.data_dir, args.imagenet_dir, until,
                       args.slow_bf16)
    if a == "run":
        from .campaign_status import seconds_needed
        from .hardware import native_bf16

        name, here = args.name or "quarter", native_bf16()
        until = float(args.until) if args.until else None
        return C.supervise(name, workers, threads, args.data_dir, imagenet_dir=args.imagenet_dir, until=until,
                           needs=lambda: seconds_needed(C.queue(name), Path("results"), threads, here),
                           bf16=args.slow_bf16 or here)
    if a == "status":
        from .campaign_status import status

        return status(args.name)
    if a == "stop":
        return CC.stop()
    if a in ("pause", "resume"):
        changed = CC.pause(a == "pause")
        print(f"[campaign] {a + 'd' if changed else 'nothing to ' + a}")
        return 0
    if args.cmd and a != "hold":
        raise UserError(f"campaign {a} takes no command ({' '.join(args.cmd)})")
    if a == "hold":
        cmd = args.cmd
        if not cmd:
            raise UserError("hold needs a command: campaign hold -- CMD ...")
        return CC.hold(cmd)
    if a == "stage":
        from .landing import stage

        if not args.preset:
            raise UserError("stage needs --preset <preset>")
        return stage(args.preset)
    if not args.run:
        raise UserError("post needs --run <run folder>")
    C.post_analysis(Path(args.run), args.data_dir)
    return 0
