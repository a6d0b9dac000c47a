"""What a grid is about to cost, said before it trains (issue 20): the runs, their iterations, the device, and an
estimate of the time from a few iterations measured here and now.

The estimate times this project's training step (bench.time_project: ResNet-20, batch 128, random images) for a
few iterations and scales it by depth for the other CIFAR nets (the cost of a step grows with the number of
blocks); the evaluations are left out, so it is a lower bound. ImageNet-style presets get no estimate.
"""

from __future__ import annotations

import torch

from .config import PRESETS, TrainConfig, make_config, preset_family
from .models import parse_arch

CPU_PRESETS = ("short", "quarter", "smoke")  # what a machine without a GPU can train (see the README's presets)


def seconds_per_iteration(precision: str = "32-true", warmup: int = 2, iters: int = 4) -> float:
    """Measured s/iteration of ResNet-20's training step (batch 128) on this machine's default device."""
    from .bench import bench_data, time_project

    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    arrays, _ = bench_data(None)
    return time_project("resnet20", arrays, dev, warmup, iters, precision=precision)


def plan_text(preset: str, runs: list[tuple[str, int]], measure: bool = True) -> str:
    has_gpu = torch.cuda.is_available()
    c = make_config(preset)
    total_iters = c.max_steps * len(runs)
    lines = [f"[plan] preset {preset}: {len(runs)} runs of {c.max_steps:,} iterations of {c.batch_size} "
             f"({total_iters:,} iterations in all) on {'the GPU' if has_gpu else 'the CPU (no GPU found)'}"]
    if measure and preset_family(preset) == "cifar":
        spi = seconds_per_iteration(c.precision)
        scale = c.batch_size / 128
        secs = sum(spi * scale * (parse_arch(a).depth - 2) / 18 * c.max_steps for a, _ in runs)
        lines.append(f"[plan] estimated time: at least {secs / 3600:.1f} hours (ResNet-20 measured here at {spi:.3f} s "
                     "per iteration, scaled by depth; evaluations not counted)")
    if not has_gpu and preset not in CPU_PRESETS and c.max_steps >= TrainConfig.max_steps // 4:
        lines.append(f"[plan] no GPU: the `{preset}` preset is meant for one. On a CPU use "
                     f"{', '.join(f'PRESET={p}' for p in CPU_PRESETS if p in PRESETS)} (see the README), "
                     "or the background campaign (`make campaign`). Stop with Ctrl-C; a started run resumes later.")
    return "\n".join(lines)
