"""The plain and residual nets of He et al. 2016 (arXiv 1512.03385), in one configurable class.

Two families share the same building block:

* CIFAR nets (Sec. 4.2): depth 6n+2, a 3x3 stem with 16 filters, three stages of n basic blocks on
  maps of 32/16/8 with 16/32/64 filters, global average pooling and a 10-way FC layer.
* ImageNet-style nets (Table 1): a 7x7/2 stem and a 3x3/2 max-pool, four stages of basic blocks
  ([2,2,2,2] for 18 layers, [3,4,6,3] for 34) with 64/128/256/512 filters.

A *plain* net is the very same stack with the shortcut additions removed; nothing else differs, so a
plain net has exactly the parameters of its option-A residual twin.

Names are parsed by :func:`parse_arch`: ``resnet56``, ``plain110``, ``resnet34``, ``resnet34b`` (the
trailing letter picks shortcut option B or C; A is the default and the paper's CIFAR choice).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

CIFAR_DEPTHS = (20, 32, 44, 56, 110, 1202)  # the depths of Table 6
IMAGENET_LAYOUTS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}  # basic-block nets of Table 1
SHORTCUTS = ("A", "B", "C")


@dataclass(frozen=True)
class ResNetConfig:
    name: str  # registry name, e.g. "resnet56", "plain20", "resnet34b"
    family: str  # "cifar" (3x3 stem, 16/32/64 filters) or "imagenet" (7x7/2 stem + max-pool)
    blocks: tuple[int, ...]  # basic blocks per stage; each block holds two 3x3 convs
    widths: tuple[int, ...]  # filters per stage; the first conv of every stage after the first has stride 2
    residual: bool = True  # False gives the plain net: the same stack without the additions
    shortcut: str = "A"  # A: identity + zero-pad, B: 1x1 projection where shapes change, C: projections everywhere
    num_classes: int = 10  # 10 for CIFAR-10 and Imagenette, 1000 for ImageNet
    bn_groups: int = 1  # >1 normalises each 1/g of the batch on its own (the paper's 2 GPUs x 64 images)

    @property
    def depth(self) -> int:
        # stem conv + two convs per block + the FC layer
        return 2 + 2 * sum(self.blocks)


def parse_arch(name: str, num_classes: int | None = None) -> ResNetConfig:
    """Turn a registry name into a config. Raises ValueError with the valid forms on a bad name."""
    m = re.fullmatch(r"(resnet|plain)(\d+)([abc]?)", name.strip().lower())
    if m is None:
        raise ValueError(f"unknown arch {name!r}; valid names: {', '.join(registered_names())} "
                         "(CIFAR nets take any depth 6n+2, e.g. resnet38)")
    kind, depth, letter = m.group(1), int(m.group(2)), m.group(3)
    residual = kind == "resnet"
    if letter and not residual:
        raise ValueError(f"{name!r}: a plain net has no shortcuts, so it takes no option letter; "
                         f"valid names: {', '.join(registered_names())}")
    shortcut = letter.upper() or "A"
    if depth in IMAGENET_LAYOUTS:
        cfg = ResNetConfig(name, "imagenet", IMAGENET_LAYOUTS[depth], (64, 128, 256, 512),
                           residual, shortcut, num_classes or 1000)
    elif depth >= 8 and (depth - 2) % 6 == 0:
        n = (depth - 2) // 6
        cfg = ResNetConfig(name, "cifar", (n, n, n), (16, 32, 64), residual, shortcut, num_classes or 10)
    else:
        raise ValueError(f"{name!r}: depth {depth} is neither 6n+2 (CIFAR, n>=1) nor 18/34 (ImageNet-style); "
                         f"valid names: {', '.join(registered_names())}")
    return cfg


def registered_names() -> list[str]:
    """The names listed by `python -m resnet_repro models`: the paper's nets plus options B/C at 18/34."""
    names = [f"{k}{d}" for d in CIFAR_DEPTHS for k in ("plain", "resnet")]
    for d in IMAGENET_LAYOUTS:
        names += [f"plain{d}", f"resnet{d}", f"resnet{d}b", f"resnet{d}c"]
    return names


class GroupBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm whose training statistics come from each of `groups` equal slices of the batch.

    With groups=2 and batch 128 this gives the paper's setting (two GPUs, BN over 64 images each) on
    one device. Running statistics are updated once per slice, an approximation of one GPU's copy.
    """

    def __init__(self, num_features: int, groups: int = 1):
        super().__init__(num_features)
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.groups == 1 or not self.training:
            return super().forward(x)
        return torch.cat([super(GroupBatchNorm2d, self).forward(c) for c in x.chunk(self.groups)])


class ShortcutA(nn.Module):
    """Option A: identity; where the shape changes, subsample by `stride` and zero-pad new channels.

    Parameter-free, as in the paper's CIFAR nets."""

    def __init__(self, in_ch: int, out_ch: int, stride: int):
        super().__init__()
        self.stride, self.pad = stride, out_ch - in_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.pad:
            x = F.pad(x, (0, 0, 0, 0, 0, self.pad))  # zeros appended on the channel dimension
        return x


def conv_bn(in_ch: int, out_ch: int, k: int, stride: int, groups: int) -> nn.Sequential:
    # No conv bias: the BN that follows every conv has its own shift.
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, k, stride, k // 2, bias=False), GroupBatchNorm2d(out_ch, groups))


class BasicBlock(nn.Module):
    """Two 3x3 conv+BN layers; in a residual net the shortcut is added before the second ReLU."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, cfg: ResNetConfig):
        super().__init__()
        self.residual = cfg.residual
        self.conv1 = conv_bn(in_ch, out_ch, 3, stride, cfg.bn_groups)
        self.conv2 = conv_bn(out_ch, out_ch, 3, 1, cfg.bn_groups)
        reshape = stride != 1 or in_ch != out_ch
        if not cfg.residual:
            self.shortcut = None
        elif cfg.shortcut == "C" or (cfg.shortcut == "B" and reshape):
            self.shortcut = conv_bn(in_ch, out_ch, 1, stride, cfg.bn_groups)
        else:
            self.shortcut = ShortcutA(in_ch, out_ch, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(F.relu(self.conv1(x)))  # conv2's output is the Fig. 7 response: after BN, before +
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return F.relu(out)


class ResNet(nn.Module):
    def __init__(self, cfg: ResNetConfig):
        super().__init__()
        if cfg.shortcut not in SHORTCUTS:
            raise ValueError(f"shortcut must be one of {SHORTCUTS}, got {cfg.shortcut!r}")
        self.cfg = cfg
        if cfg.family == "cifar":
            self.stem = nn.Sequential(conv_bn(3, cfg.widths[0], 3, 1, cfg.bn_groups), nn.ReLU())
        else:
            self.stem = nn.Sequential(conv_bn(3, cfg.widths[0], 7, 2, cfg.bn_groups), nn.ReLU(),
                                      nn.MaxPool2d(3, 2, 1))
        stages, in_ch = [], cfg.widths[0]
        for i, (n, width) in enumerate(zip(cfg.blocks, cfg.widths)):
            blocks = [BasicBlock(in_ch if j == 0 else width, width, 2 if (i > 0 and j == 0) else 1, cfg)
                      for j in range(n)]
            stages.append(nn.Sequential(*blocks))
            in_ch = width
        self.stages = nn.Sequential(*stages)
        self.fc = nn.Linear(in_ch, cfg.num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # He et al. 2015 ("MSRA") init: N(0, 2/n) with n = k*k*c_in, the forward-pass form of that paper.
        # BN starts as the identity (gamma 1, beta 0). The FC layer keeps PyTorch's default init.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

    def response_layers(self) -> list[tuple[int, int, int, nn.Module]]:
        """(stage, block, conv, BN module) of every 3x3 conv in the stacked blocks, in forward order.

        The BN output is the paper's Fig. 7 response: after BN, before the ReLU and the addition.
        Stages and blocks count from 1; conv is 1 or 2 within the block. The stem is not included."""
        out = []
        for s, stage in enumerate(self.stages, 1):
            for b, block in enumerate(stage, 1):
                out += [(s, b, 1, block.conv1[1]), (s, b, 2, block.conv2[1])]
        return out


def build_model(arch: str | ResNetConfig, num_classes: int | None = None, bn_groups: int = 1) -> ResNet:
    cfg = arch if isinstance(arch, ResNetConfig) else parse_arch(arch, num_classes)
    if bn_groups != cfg.bn_groups:
        cfg = replace(cfg, bn_groups=bn_groups)
    return ResNet(cfg)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def model_table() -> list[dict]:
    """One row per registered name: what `python -m resnet_repro models` prints."""
    rows = []
    for name in registered_names():
        cfg = parse_arch(name)
        rows.append(dict(name=name, depth=cfg.depth, residual=cfg.residual,
                         shortcut=cfg.shortcut if cfg.residual else "none",
                         params=count_params(ResNet(cfg))))
    return rows
