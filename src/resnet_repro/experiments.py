"""The experiments of the paper, each a list of (arch, seeds) per preset: the one place they are defined.

`make reproduce-cifar PRESET=...` trains `CIFAR_GRID[PRESET]` in the order given (the order is the
priority: the degradation pair first), then runs the cheap steps on whatever exists.
"""

from __future__ import annotations

# Fig. 1 and the degradation claim: plain-20 vs plain-56, with their residual twins.
DEGRADATION = ["plain20", "plain56", "resnet20", "resnet56"]
# Fig. 6 left/middle and Table 6: the rest of the 20..56 nets, then 110 (paper's warm-up rule).
FIG6 = ["plain32", "plain44", "resnet32", "resnet44"]
DEEP = ["resnet110", "plain110"]
HUGE = ["resnet1202"]

CIFAR_GRID: dict[str, list[tuple[str, tuple[int, ...]]]] = {
    "paper": [(a, (0,)) for a in DEGRADATION + FIG6 + DEEP]
    + [(a, (1, 2, 3, 4)) for a in DEGRADATION[2:] + FIG6[2:] + DEEP[:1]]
    + [(a, (0,)) for a in HUGE],
    "short": [(a, (0,)) for a in DEGRADATION + FIG6],
    # smoke: enough nets for every figure and table to have something to draw (not 1202: too slow on CPU)
    "smoke": [(a, (0,)) for a in DEGRADATION + ["resnet110"]],
}

# The paper's CIFAR-10 test errors (Table 6, %), and a popular public PyTorch reproduction's single runs,
# whose numbers are best epochs picked on the test set (so optimistic by construction).
PAPER_TABLE6 = {"resnet20": 8.75, "resnet32": 7.51, "resnet44": 7.17, "resnet56": 6.97, "resnet110": 6.43,
                "resnet1202": 7.93}
PAPER_TABLE6_NOTE = {"resnet110": "6.43 best of 5 (6.61 ± 0.16)"}
PUBLIC_REPRO = {"resnet20": 8.27, "resnet32": 7.37, "resnet44": 6.90, "resnet56": 6.61, "resnet110": 6.32,
                "resnet1202": 6.18}
PUBLIC_REPRO_NOTE = "akamaster/pytorch_resnet_cifar10: single runs, best epoch selected on the test set"


def grid_runs(preset: str) -> list[tuple[str, int]]:
    return [(arch, s) for arch, seeds in CIFAR_GRID[preset] for s in seeds]
