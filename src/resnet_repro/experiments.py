"""The experiments of the paper, each a list of (arch, seeds) per preset: the one place they are defined.

`make reproduce-cifar PRESET=...` trains `CIFAR_GRID[PRESET]` in the order given (the order is the
priority: the degradation pair first), then runs the cheap steps on whatever exists.
`make reproduce-imagenet PRESET=...` does the same with `IMAGENET_GRID[PRESET]` (Fig. 4, Tables 2 and 3).
"""

from __future__ import annotations

# The paper's numbers live in paper.py, with their sources; this module names only the runs.

# Fig. 1 and the degradation claim: plain-20 vs plain-56, with their residual twins.
DEGRADATION = ["plain20", "plain56", "resnet20", "resnet56"]
# Fig. 6 left/middle and Table 6: the rest of the 20..56 nets, then 110 (paper's warm-up rule).
FIG6 = ["plain32", "plain44", "resnet32", "resnet44"]
DEEP = ["resnet110", "plain110"]
HUGE = ["resnet1202"]
# Every CIFAR net of the paper in table order: plain by depth, then ResNets by depth.
CIFAR_NETS = [f"plain{d}" for d in (20, 32, 44, 56, 110)] + [f"resnet{d}" for d in (20, 32, 44, 56, 110, 1202)]

CIFAR_GRID: dict[str, list[tuple[str, tuple[int, ...]]]] = {
    "paper": [(a, (0,)) for a in DEGRADATION + FIG6 + DEEP]
    + [(a, (1, 2, 3, 4)) for a in DEGRADATION[2:] + FIG6[2:] + DEEP[:1]]
    + [(a, (0,)) for a in HUGE],
    "short": [(a, (0,)) for a in DEGRADATION + FIG6],
    # 1/4 of the schedule, trained on the CPU by the campaign (CAMPAIGNS below): three seeds of the Fig. 1 nets and
    # ResNet-110, one of the rest.
    "quarter": [(a, (0, 1, 2)) for a in DEGRADATION] + [(a, (0,)) for a in FIG6] + [("resnet110", (0, 1, 2)),
                                                                                   ("plain110", (0,))],
    # The bf16 check: the same nets and seeds as the committed fp32 `short` runs they are compared with.
    "short-bf16": [(a, (0, 1)) for a in ("resnet20", "plain20")],
    # smoke: enough nets for every figure and table to have something to draw (not 1202: too slow on CPU)
    "smoke": [(a, (0,)) for a in DEGRADATION + ["resnet110"]],
}



# Fig. 4 and Table 2: plain and residual (option A) nets of 18 and 34 layers; Table 3: ResNet-34 with options B, C.
IMAGENET_NETS = ["plain18", "plain34", "resnet18", "resnet34", "resnet34b", "resnet34c"]
# One seed per net, as the paper reports one run per net on ImageNet; at imagenette-cpu a second seed of the nets of
# the closest claimed pairs measures how large a difference must be to count (issue 16). ResNet-34 (A) is in every
# claimed pair but plain-18 vs plain-34 (37 points apart); its closest partners at seed 0 are ResNet-34 C (claim 4,
# -7.13 points) and ResNet-18 (claim 2, +7.31), too close to pick one, so both get a second seed
# (results/imagenette-cpu/imagenet.csv).
IMAGENETTE_CPU_SECOND_SEED = ["resnet34", "resnet34c", "resnet18"]
IMAGENET_GRID: dict[str, list[tuple[str, tuple[int, ...]]]] = {
    p: [(a, (0, 1) if p == "imagenette-cpu" and a in IMAGENETTE_CPU_SECOND_SEED else (0,)) for a in IMAGENET_NETS]
    for p in ("imagenet", "imagenette", "imagenette-cpu", "imagenette-smoke")}

GRIDS = {**CIFAR_GRID, **IMAGENET_GRID}



# Issue 8, beyond the paper (studies/identity.py): the ResNet-110 block variants of He et al., "Identity Mappings in Deep
# Residual Networks" (ECCV 2016), Table 1 (shortcuts) and Table 2 (activations); spellings in models.VARIANTS.
# Not part of GRIDS, so reproduce-cifar does not train them: `make identity PRESET=paper` (grid --experiment
# identity) trains them in this order, the original first; paper scale needs a GPU.
IDENTITY_VARIANTS = ["resnet110", "resnet110-const0.5", "resnet110-exclgate", "resnet110-scgate", "resnet110-conv1x1",
                     "resnet110-scdrop0.5", "resnet110-bnafter", "resnet110-relubefore", "resnet110-relupreact",
                     "resnet110-preact"]
IDENTITY_GRID: dict[str, list[tuple[str, tuple[int, ...]]]] = {
    "paper": [(a, (0, 1, 2, 3, 4)) for a in IDENTITY_VARIANTS],  # the ECCV paper reports medians of 5 runs
    "short": [(a, (0,)) for a in IDENTITY_VARIANTS],
}
# The other issue-8 measurements use the nets of CIFAR_GRID (studies.gradflow.GRADFLOW_ARCHS, studies.lesions.LESION_ARCHS,
# LANDSCAPE_NETS below).

# The loss landscapes (studies/landscapes.py): ResNet-56 against plain-56. The campaign measures them after training
# seed 0 of these nets, on the grid and training subset of the committed `short` landscapes, so that the budgets
# compare (51x51 points on 500 images: 33 minutes for quarter ResNet-56 on the 2-core CPU, in fp32).
LANDSCAPE_NETS = ("resnet56", "plain56")
CAMPAIGN_LANDSCAPE = dict(seed=0, grid=51, subset=500)


# The experiments `grid --experiment NAME` can train: the paper's (CIFAR or ImageNet-style, by preset) and issue 8's.
EXPERIMENTS = {"paper": GRIDS, "identity": IDENTITY_GRID}


def grid_runs(preset: str, experiment: str = "paper") -> list[tuple[str, int]]:
    """(arch, seed) pairs of an experiment's grid at a preset, in priority order (KeyError if it has none)."""
    return [(arch, s) for arch, seeds in EXPERIMENTS[experiment][preset] for s in seeds]


# Issue 15/18: the CPU training campaign (`make campaign PRESET=quarter`, campaign.py), a priority queue of
# (preset, arch, seed, overrides) run in order by the workers; finished runs are skipped, started ones resume.
# Overrides are TrainConfig fields that differ from the preset for a CPU run (the `paper` preset trained on this
# CPU in bf16 says so in its final.json: device and precision).
_CPU_PAPER = {"precision": "bf16-mixed", "ckpt_every": 1}
CAMPAIGNS: dict[str, list[tuple[str, str, int, dict]]] = {
    "quarter": (
        # 1. Does bf16 train as well as fp32? The committed fp32 `short` runs of these nets and seeds are the pairs.
        [("short-bf16", a, s, {}) for s in (0, 1) for a in ("resnet20", "plain20")]
        # 2. The degradation pair and its residual twins at 1/4 of the schedule.
        + [("quarter", a, 0, {}) for a in ("resnet20", "resnet56", "plain20", "plain56")]
        # 3. ImageNet-style 18 vs 34, plain and residual, options A/B/C (issue 16; Fig. 4, Tables 2 and 3).
        + [("imagenette-cpu", a, 0, {}) for a in IMAGENET_NETS]
        + [("imagenette-cpu", a, 1, {}) for a in IMAGENETTE_CPU_SECOND_SEED]
        # 4. The paper's full protocol on this CPU: Fig. 1 and Table 6's first rows at full scale, 20 layers.
        + [("paper", a, 0, _CPU_PAPER) for a in ("resnet20", "plain20")]
        # 5. A second seed of the 1/4 degradation nets: whether ResNet-56 below ResNet-20 beats the seed spread, and
        # the noise of Fig. 7. Each fits in one session (at most 1.9 h), so it lands even if the checkpoints of a
        # longer run are lost between sessions (as on 2026-12-06: paper ResNet-56 at iteration 20,400 of 64,000).
        # The 20-layer pair first: two runs that land in one session (75 min).
        + [("quarter", a, 1, {}) for a in ("resnet20", "plain20", "resnet56", "plain56")]
        # 6. The rest of the depths that fit in one session at 1/4 (Table 6, Fig. 6): 32 and 44 layers (63-89 min).
        + [("quarter", a, 0, {}) for a in ("resnet32", "plain32", "resnet44", "plain44")]
        # 7. A third seed of the 1/4 degradation nets for mean ± std (35 min to 1.9 h each).
        + [("quarter", a, 2, {}) for a in ("resnet20", "resnet56", "plain20", "plain56")]
        # 8. The runs that need several sessions, last: their checkpoints were lost with the machine's disk twice
        # (paper ResNet-56 at iteration 20,400 and paper plain-56 at 10,800 of 64,000), so every run that can land
        # within one session goes first. The paper's full protocol at 56 layers (5.7-7 h each), then ResNet-110 (with
        # its warm-up rule) and plain-110 at 1/4 (3.8 h each), then ResNet-110's seeds 1 and 2.
        + [("paper", a, 0, _CPU_PAPER) for a in ("resnet56", "plain56")]
        + [("quarter", a, 0, {}) for a in ("resnet110", "plain110")]
        + [("quarter", "resnet110", s, {}) for s in (1, 2)]
        # 9. fp32 runs, for a CPU without native bf16 (an AVX2-only host: autocast emulates bf16 there, many times
        # slower than fp32, so the campaign trains none of the bf16 runs above on it): a third seed of the 1/16
        # degradation nets and plain-56's second, for the budget figure's spread, and the `short` grid's missing nets
        # (Table 6 and Fig. 6 at 1/16); the shortest first, as above (on the AVX2 host ResNet-20 took 32 min of
        # training and 2 of analysis; a 56-layer net, scaled by FLOPs, about 85 min). A CPU with native bf16 reaches
        # them last.
        + [("short", a, 2, {}) for a in ("resnet20", "plain20")]
        + [("short", a, 0, {}) for a in ("resnet32", "resnet44", "plain44")]
        + [("short", "plain56", 1, {})] + [("short", a, 2, {}) for a in ("resnet56", "plain56")]
    ),
}
