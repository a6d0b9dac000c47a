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

A residual net also takes one of the block forms of He et al., "Identity Mappings in Deep Residual
Networks" (ECCV 2016), Fig. 2 (shortcut variants) and Fig. 4 (activation variants), as a suffix:
``resnet110-preact``, ``resnet110-const0.5``, ... (see :data:`VARIANTS`). The variant is a field of
:class:`ResNetConfig` and is realised inside :class:`BasicBlock` (see :func:`block_form`); the default,
``original``, is the block of the 2016 paper, so every existing name is unchanged.

Dimension-changing blocks of every variant keep the net's shortcut option (A: parameter-free
subsample + zero-pad on the CIFAR nets), except ``conv1x1``, which projects on every block. The ECCV
paper's CIFAR ResNet-110 experiments follow the 2016 paper's implementation ("the same as [1]"); its
projections where dimensions increase belong to its bottleneck ResNet-164/1001, not built here.
``resnet110b-<variant>`` gives projections where shapes change, should that be wanted.
In the pre-activation forms the pre-activation of a dimension-changing block is shared by both paths
(fb.resnet.torch's "both_preact"), the first block follows the stem's BN+ReLU without one of its own,
and a final activation follows the last block (ECCV 2016, appendix).
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
    variant: str = "original"  # block form of a residual net (ECCV 2016 Fig. 2 and 4); see VARIANTS
    gate_bias: float = -6.0  # b_g of the gating variants, g(x) = sigmoid(conv1x1(x) + b_g)

    @property
    def depth(self) -> int:
        # stem conv + two convs per block + the FC layer
        return 2 + 2 * sum(self.blocks)


def _valid_names_text() -> str:
    return (f"valid names: {', '.join(registered_names())} (CIFAR nets take any depth 6n+2, e.g. resnet38); "
            f"ECCV 2016 block variants of a residual net: resnet<depth>-<variant>, variant one of "
            f"{', '.join(VARIANTS)} (const<s> and scdrop<p> take any scale/ratio), e.g. "
            f"{', '.join(variant_names()[:3])}")


def parse_arch(name: str, num_classes: int | None = None) -> ResNetConfig:
    """Turn a registry name into a config. Raises ValueError with the valid forms on a bad name."""
    m = re.fullmatch(r"(resnet|plain)(\d+)([abc]?)(?:-([a-z0-9.]+))?", name.strip().lower())
    if m is None:
        raise ValueError(f"unknown arch {name!r}; {_valid_names_text()}")
    kind, depth, letter, variant = m.group(1), int(m.group(2)), m.group(3), m.group(4) or "original"
    residual = kind == "resnet"
    if letter and not residual:
        raise ValueError(f"{name!r}: a plain net has no shortcuts, so it takes no option letter; "
                         f"{_valid_names_text()}")
    if variant != "original" and not residual:
        raise ValueError(f"{name!r}: a plain net has no shortcuts, so it takes no block variant; "
                         f"{_valid_names_text()}")
    try:
        block_form(variant)
    except ValueError as e:
        raise ValueError(f"{name!r}: {e}; {_valid_names_text()}") from None
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
    return replace(cfg, variant=variant) if variant != "original" else cfg


def registered_names() -> list[str]:
    """The names listed by `python -m resnet_repro models`: the paper's nets plus options B/C at 18/34."""
    names = [f"{k}{d}" for d in CIFAR_DEPTHS for k in ("plain", "resnet")]
    for d in IMAGENET_LAYOUTS:
        names += [f"plain{d}", f"resnet{d}", f"resnet{d}b", f"resnet{d}c"]
    return names


# ----------------------------------------------------------------------------- ECCV 2016 block variants

# The block forms of He et al., "Identity Mappings in Deep Residual Networks" (ECCV 2016), by suffix. Their
# ResNet-110 test errors on CIFAR-10 (median of 5 runs) are in paper.PAPER_ECCV_MEDIANS.
VARIANTS: dict[str, str] = {
    "original": "the 2016 block: conv-BN-ReLU-conv-BN, + shortcut, ReLU (Fig. 2a, 4a)",
    "const0.5": "constant scaling: 0.5 x shortcut + 0.5 x F, then ReLU (Fig. 2b)",
    "exclgate": "exclusive gating: (1 - g) x shortcut + g x F, g = sigmoid(conv1x1(x) + b_g), b_g = -6 (Fig. 2c)",
    "scgate": "shortcut-only gating: (1 - g) x shortcut + F, b_g = -6 (Fig. 2d)",
    "conv1x1": "1x1 conv (+BN) shortcut on every block, as option C (Fig. 2e)",
    "scdrop0.5": "dropout (ratio 0.5) on the shortcut's output while training (Fig. 2f)",
    "bnafter": "BN after addition: ReLU(BN(x + conv-BN-ReLU-conv(x))) (Fig. 4b)",
    "relubefore": "ReLU before addition: x + ReLU(conv-BN-ReLU-conv-BN(x)), no ReLU after (Fig. 4c)",
    "relupreact": "ReLU-only pre-activation: x + (ReLU-conv-BN-ReLU-conv-BN)(x) (Fig. 4d)",
    "preact": "full pre-activation: x + (BN-ReLU-conv-BN-ReLU-conv)(x) (Fig. 4e)",
}
VARIANT_LABELS = {"original": "original", "exclgate": "exclusive gating", "scgate": "shortcut-only gating",
                  "conv1x1": "1x1 conv shortcut", "bnafter": "BN after addition",
                  "relubefore": "ReLU before addition", "relupreact": "ReLU-only pre-act.",
                  "preact": "full pre-activation"}


@dataclass(frozen=True)
class BlockForm:
    """Where the activations, the scalings and the gates of a residual block sit."""

    pre: str = ""  # pre-activation at the start of the residual branch: "", "relu" or "bnrelu"
    conv2_bn: bool = True  # BN after the second conv, inside the branch
    branch_relu: bool = False  # ReLU at the end of the branch (ReLU before addition)
    post_bn: bool = False  # BN after the addition
    post_relu: bool = True  # ReLU after the addition
    combine: str = "add"  # "add", "scale" (s x shortcut + s x F), "exclgate", "scgate"
    scale: float = 1.0  # the constant of combine="scale"
    drop: float = 0.0  # dropout ratio on the shortcut's output (training only)
    project_all: bool = False  # a 1x1 conv (+BN) shortcut on every block
    head: str = ""  # activation after the last block, before pooling: "", "relu" or "bnrelu"


def block_form(variant: str) -> BlockForm:
    """The :class:`BlockForm` of a variant name (a key of VARIANTS; const<s> and scdrop<p> take any number)."""
    m = re.fullmatch(r"(const|scdrop)(\d+(?:\.\d+)?|\.\d+)", variant)
    if m:
        v = float(m.group(2))
        if m.group(1) == "const":
            if v <= 0:
                raise ValueError(f"constant scaling needs a positive scale, got {variant!r}")
            return BlockForm(combine="scale", scale=v)
        if not 0 < v < 1:
            raise ValueError(f"shortcut dropout needs a ratio in (0, 1), got {variant!r}")
        return BlockForm(drop=v)
    forms = {"original": BlockForm(), "exclgate": BlockForm(combine="exclgate"),
             "scgate": BlockForm(combine="scgate"), "conv1x1": BlockForm(project_all=True),
             "bnafter": BlockForm(conv2_bn=False, post_bn=True),
             "relubefore": BlockForm(branch_relu=True, post_relu=False),
             "relupreact": BlockForm(pre="relu", post_relu=False, head="relu"),
             "preact": BlockForm(pre="bnrelu", conv2_bn=False, post_relu=False, head="bnrelu")}
    if variant not in forms:
        raise ValueError(f"unknown block variant {variant!r}")
    return forms[variant]


def arch_order(arch: str) -> tuple:
    """Sort key of nets in every table: CIFAR nets before ImageNet-style ones, ResNets before plain nets, by depth."""
    cfg = parse_arch(arch)
    return (cfg.family != "cifar", not cfg.residual, cfg.depth, arch)


def variant_label(variant: str) -> str:
    """'full pre-activation', 'constant scaling 0.5', ... for figures and tables."""
    m = re.fullmatch(r"(const|scdrop)(.+)", variant)
    if m:
        return f"{'constant scaling' if m.group(1) == 'const' else 'dropout shortcut'} {float(m.group(2)):g}"
    return VARIANT_LABELS.get(variant, variant)


def variant_names(depth: int = 110) -> list[str]:
    """The ECCV 2016 variants of ResNet-<depth> (not in registered_names: the paper's nets stay the registry)."""
    return [f"resnet{depth}-{v}" for v in VARIANTS if v != "original"]


class GroupBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm whose training statistics come from each of `groups` equal slices of the batch.

    With groups=2 and batch 128 this gives the paper's setting (two GPUs, BN over 64 images each) on
    one device. The running statistics (what inference uses) follow the first slice only, once per step: that
    is the copy a data-parallel run keeps, since DDP broadcasts rank 0's buffers to every rank before each
    forward, and rank 0 normalises the first slice of the batch. `tests/test_ddp.py` shows that two processes
    train and evaluate like one process with groups=2.
    """

    def __init__(self, num_features: int, groups: int = 1):
        super().__init__(num_features)
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.groups == 1 or not self.training:
            return super().forward(x)
        first, *rest = x.chunk(self.groups)
        out = [super().forward(first)]  # updates the running statistics (and num_batches_tracked) once
        out += [F.batch_norm(c, None, None, self.weight, self.bias, True, 0.0, self.eps) for c in rest]
        return torch.cat(out)


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


def activation(kind: str, ch: int, groups: int) -> nn.Module | None:
    """"relu" -> ReLU, "bnrelu" -> BN + ReLU, "" -> None."""
    if kind == "relu":
        return nn.ReLU()
    return nn.Sequential(GroupBatchNorm2d(ch, groups), nn.ReLU()) if kind == "bnrelu" else None


class BasicBlock(nn.Module):
    """Two 3x3 conv+BN layers; in a residual net the shortcut is added before the second ReLU.

    `cfg.variant` moves the activations, scales or gates the two paths (ECCV 2016; see BlockForm). `first`
    marks the block right after the stem, whose BN+ReLU stands in for a pre-activation. `lesioned` (set by
    hooks.lesioned) makes the block return its shortcut path alone (identity for a plain block whose
    shapes match), as in Veit et al. 2016."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, cfg: ResNetConfig, first: bool = False):
        super().__init__()
        self.residual = cfg.residual
        self.form = form = block_form(cfg.variant)
        self.reshape = reshape = stride != 1 or in_ch != out_ch
        self.lesioned = False
        self.pre = None if first else activation(form.pre, in_ch, cfg.bn_groups)
        self.shared_pre = self.pre is not None and reshape  # both paths start from the pre-activated input
        self.conv1 = conv_bn(in_ch, out_ch, 3, stride, cfg.bn_groups)
        self.conv2 = (conv_bn(out_ch, out_ch, 3, 1, cfg.bn_groups) if form.conv2_bn
                      else nn.Sequential(nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)))
        self.post_bn = GroupBatchNorm2d(out_ch, cfg.bn_groups) if form.post_bn else None
        if not cfg.residual:
            self.shortcut = None
        elif cfg.shortcut == "C" or (cfg.shortcut == "B" and reshape) or form.project_all:
            self.shortcut = conv_bn(in_ch, out_ch, 1, stride, cfg.bn_groups)
        else:
            self.shortcut = ShortcutA(in_ch, out_ch, stride)
        self.gate = None
        if form.combine in ("exclgate", "scgate"):
            self.gate = nn.Conv2d(in_ch, out_ch, 1, stride, bias=True)  # g(x) = sigmoid(W_g x + b_g)
            nn.init.constant_(self.gate.bias, cfg.gate_bias)  # ResNet.reset_parameters leaves conv biases

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        form = self.form
        if self.shared_pre:
            x = self.pre(x)
        if self.lesioned:
            if self.shortcut is not None:
                return self.shortcut(x)
            if self.reshape:
                raise RuntimeError("a plain block that changes the shape cannot be removed")
            return x
        r = x if self.pre is None or self.shared_pre else self.pre(x)
        out = self.conv2(F.relu(self.conv1(r)))  # conv2's output is the Fig. 7 response: after BN, before +
        if form.branch_relu:
            out = F.relu(out)
        if self.shortcut is not None:
            s = self.shortcut(x)
            if form.drop:
                s = F.dropout(s, form.drop, self.training)
            if form.combine == "scale":
                out = form.scale * s + form.scale * out
            elif self.gate is not None:
                g = torch.sigmoid(self.gate(x))
                out = (1 - g) * s + (g * out if form.combine == "exclgate" else out)
            else:
                out = out + s
        if self.post_bn is not None:
            out = self.post_bn(out)
        return F.relu(out) if form.post_relu else out


class ResNet(nn.Module):
    def __init__(self, cfg: ResNetConfig):
        super().__init__()
        if cfg.shortcut not in SHORTCUTS:
            raise ValueError(f"shortcut must be one of {SHORTCUTS}, got {cfg.shortcut!r}")
        block_form(cfg.variant)  # raises on an unknown variant
        if cfg.variant != "original" and not cfg.residual:
            raise ValueError(f"a plain net takes no block variant, got {cfg.variant!r}")
        self.cfg = cfg
        if cfg.family == "cifar":
            self.stem = nn.Sequential(conv_bn(3, cfg.widths[0], 3, 1, cfg.bn_groups), nn.ReLU())
        else:
            self.stem = nn.Sequential(conv_bn(3, cfg.widths[0], 7, 2, cfg.bn_groups), nn.ReLU(),
                                      nn.MaxPool2d(3, 2, 1))
        stages, in_ch = [], cfg.widths[0]
        for i, (n, width) in enumerate(zip(cfg.blocks, cfg.widths)):
            blocks = [BasicBlock(in_ch if j == 0 else width, width, 2 if (i > 0 and j == 0) else 1, cfg,
                                 first=i == 0 and j == 0)
                      for j in range(n)]
            stages.append(nn.Sequential(*blocks))
            in_ch = width
        self.stages = nn.Sequential(*stages)
        # Pre-activation forms end with an activation of their own after the last addition (ECCV 2016, appendix).
        self.head = activation(block_form(cfg.variant).head, in_ch, cfg.bn_groups)
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
        if self.head is not None:
            x = self.head(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

    def response_layers(self) -> list[tuple[int, int, int, nn.Module]]:
        """(stage, block, conv, BN module) of every 3x3 conv in the stacked blocks, in forward order.

        The BN output is the paper's Fig. 7 response: after BN, before the ReLU and the addition.
        Stages and blocks count from 1; conv is 1 or 2 within the block. The stem is not included."""
        out = []
        for s, stage in enumerate(self.stages, 1):
            for b, block in enumerate(stage, 1):
                # [-1]: the BN, or the conv where a variant has no BN there (preact, bnafter)
                out += [(s, b, 1, block.conv1[-1]), (s, b, 2, block.conv2[-1])]
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
