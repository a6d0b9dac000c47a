"""Training configuration: one dataclass, three presets, and command-line overrides of any field.

Everything is counted in iterations (mini-batch updates), as the paper counts its schedule.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field, fields

from .models import parse_arch


@dataclass
class TrainConfig:
    arch: str = "resnet20"  # registry name, see `python -m resnet_repro models`
    preset: str = "paper"  # which preset filled the defaults; also the results sub-folder
    seed: int = 0  # seeds the init, the batch order and the augmentation
    # --- the paper's protocol (Sec. 4.2) ---
    batch_size: int = 128  # global batch; split evenly across devices with DDP
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4  # applied to every parameter, BN included, as in Caffe and fb.resnet.torch
    max_steps: int = 64_000  # stop here (about 164 epochs of 50k images)
    milestones: tuple[int, ...] = (32_000, 48_000)  # lr is divided by 10 at each of these iterations
    # --- warm-up (the paper's rule for the 110-layer net) ---
    warmup: str = "auto"  # "auto": on for depth >= 110; "on"; "off"
    warmup_lr: float = 0.01  # the lr used until the training error drops below warmup_until_err
    warmup_until_err: float = 0.80  # switch back to `lr` once the training error is below this
    warmup_check_every: int = 20  # iterations averaged per check of the rule (one host sync each)
    # --- evaluation and bookkeeping ---
    eval_every: int = 400  # test error on the full test set every this many iterations (Fig. 6 curves)
    ckpt_every: int = 5  # keep a resumable checkpoint every this many eval intervals
    val_size: int = 0  # >0 holds out a seeded validation split of train (the paper's 45k/5k: 5000)
    split_seed: int = 0  # seeds the validation split and the subsets, independently of `seed`
    train_subset: int | None = None  # use only this many training images (smoke tests)
    test_subset: int | None = None  # evaluate on only this many test images (smoke tests)
    # --- hardware ---
    accelerator: str = "auto"  # Lightning accelerator: "auto", "cpu", "gpu"
    devices: int = 1  # >1 trains with strategy="ddp", the global batch split across devices
    bn_groups: int = 1  # 2 reproduces the paper's BN over 64 images on one device (see models.py)
    precision: str = "32-true"  # "bf16-mixed" is an opt-in speed-up; the default stays fp32 (TF32 on GPU)
    channels_last: bool = True  # NHWC memory layout; same arithmetic, faster convs on GPUs
    compile: bool = False  # torch.compile the net (GPU); off by default, since compile time dominates short runs
    # --- where things are ---
    data_dir: str | None = None  # CIFAR-10 folder; None: $DATA_DIR, else data/cifar10 via torchvision
    out: str = "results"  # run folders go to <out>/<preset>/runs/<arch>/seed<k>/

    def validate(self) -> None:
        """Raise ValueError (a one-line user error) for inconsistent settings."""
        parse_arch(self.arch)
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if self.max_steps <= 0 or self.eval_every <= 0 or self.max_steps % self.eval_every:
            raise ValueError(f"eval_every ({self.eval_every}) must divide max_steps ({self.max_steps})")
        if list(self.milestones) != sorted(self.milestones):
            raise ValueError(f"milestones must be increasing, got {self.milestones}")
        if self.warmup not in ("auto", "on", "off"):
            raise ValueError(f"warmup must be auto, on or off, got {self.warmup!r}")
        if self.batch_size % (self.devices * self.bn_groups):
            raise ValueError("batch_size must divide evenly over devices and bn_groups")

    @property
    def use_warmup(self) -> bool:
        return self.warmup == "on" or (self.warmup == "auto" and parse_arch(self.arch).depth >= 110)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["milestones"] = list(self.milestones)
        return d


PRESETS: dict[str, dict] = {
    # The paper's protocol: 64k iterations, lr /10 at 32k and 48k, test error every 400 iterations.
    "paper": {},
    # The same schedule shape at 1/16 of the length: 4k iterations, milestones 2k and 3k.
    "short": dict(max_steps=4_000, milestones=(2_000, 3_000), eval_every=200, ckpt_every=1),
    # A handful of iterations on a small subset: exercises every code path in seconds (tests, CI).
    "smoke": dict(max_steps=20, milestones=(10, 15), eval_every=10, ckpt_every=1,
                  train_subset=2_048, test_subset=1_000, warmup_check_every=5),
}


def make_config(preset: str = "paper", **overrides) -> TrainConfig:
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; valid: {', '.join(PRESETS)}")
    cfg = TrainConfig(preset=preset, **{**PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None}})
    if isinstance(cfg.milestones, list):
        cfg.milestones = tuple(cfg.milestones)
    cfg.validate()
    return cfg


# ----------------------------------------------------------------------------- command line


def _parse_field(f: dataclasses.Field):
    t = str(f.type)
    if "tuple" in t:
        return lambda s: tuple(int(v) for v in s.split(",") if v)
    if t.startswith("bool"):
        return lambda s: s.lower() in ("1", "true", "yes", "on")
    if "int" in t:
        return lambda s: None if s.lower() == "none" else int(s)
    if "float" in t:
        return float
    return str


def add_config_args(p: argparse.ArgumentParser) -> None:
    """One --flag per TrainConfig field (dashes for underscores); unset flags keep the preset's value."""
    for f in fields(TrainConfig):
        if f.name == "preset":
            p.add_argument("--preset", default="paper", choices=list(PRESETS), help="preset filling the defaults")
            continue
        default = f.default if f.default is not dataclasses.MISSING else None
        p.add_argument("--" + f.name.replace("_", "-"), dest=f.name, type=_parse_field(f), default=None,
                       help=f"(default: paper={default!r}; presets may change it)")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    overrides = {f.name: getattr(args, f.name, None) for f in fields(TrainConfig) if f.name != "preset"}
    return make_config(args.preset, **overrides)
