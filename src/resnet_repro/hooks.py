"""Hooks on a built net: what the analyses measure inside a ResNet, in one place.

* layer responses (Fig. 7): `ResponseStats`, forward hooks on each block BN's output, and `layer_stds`;
* gradient norms: `BlockInputGrads` (dL/d input of every block), `weight_layers`, `gradient_flow` over batches and
  the training-time callback `make_gradflow_callback`;
* lesions: `removable`, `lesioned` (a block's residual branch switched off, its shortcut kept);
* landscape directions: `filter_normalized_direction` (Li et al. 2018).

The studies (analyze.py, studies/) decide what to measure on which runs; train.py uses the callback.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F

from .models import BasicBlock, ResNet, parse_arch

LAYER_STD_COLUMNS = ["layer", "stage", "block", "conv", "std", "std_channel_mean", "std_image_median",
                     "top1pct_share"]
TAIL_FRACTION = 0.01  # the "top 1%" of images whose share of a layer's response variance top1pct_share gives


class ResponseStats:
    """Forward hooks that accumulate, in float64, per-channel sums of each response layer's output (the pooled and
    per-channel stds) and per-image sums (how the pooled variance is spread over the images)."""

    def __init__(self, model: ResNet):
        self.layers = model.response_layers()
        self.sums: list[torch.Tensor | None] = [None] * len(self.layers)
        self.images: list[list[torch.Tensor]] = [[] for _ in self.layers]  # per batch: [2, B] image sums, squares
        self.handles = [m.register_forward_hook(self._hook(i)) for i, (_, _, _, m) in enumerate(self.layers)]

    def _hook(self, i: int):
        def hook(module, inputs, out):
            o = out.detach().double()
            s = torch.stack([o.sum((0, 2, 3)), (o * o).sum((0, 2, 3)),
                             torch.full((o.shape[1],), o.numel() / o.shape[1], dtype=o.dtype, device=o.device)])
            self.sums[i] = s if self.sums[i] is None else self.sums[i] + s
            self.images[i].append(torch.stack([o.sum((1, 2, 3)), (o * o).sum((1, 2, 3))]).cpu())
        return hook

    def remove(self) -> None:
        for h in self.handles:
            h.remove()

    @staticmethod
    def _d2(img: torch.Tensor, mean: torch.Tensor, k: int) -> torch.Tensor:
        """d_i^2 of each image from its sums [2, N] over k numbers: the mean square deviation from the pooled `mean`."""
        return ((img[1] - 2 * mean * img[0]) / k + mean * mean).clamp_min(0)

    @staticmethod
    def image_tail(img: torch.Tensor, mean: torch.Tensor, k: int) -> tuple[float, float]:
        """From per-image sums [2, N] over k numbers each: d_i, the rms deviation of image i's responses from the
        pooled `mean` (so that the pooled std is sqrt(mean_i d_i^2)), gives the median d_i and the share of
        sum_i d_i^2 that the top TAIL_FRACTION of images (at least one) carry. A pooled std far above the median
        image's, with a large top share, is a heavy tail of images rather than a uniformly larger response."""
        d2 = ResponseStats._d2(img, mean, k)
        top = max(1, math.ceil(TAIL_FRACTION * len(d2)))
        total = float(d2.sum())
        return float(d2.sqrt().median()), float(d2.topk(top).values.sum()) / total if total > 0 else math.nan

    def image_shares(self) -> np.ndarray:
        """Each test image's share of a layer's response variance (d_i^2 / sum_j d_j^2), averaged over the layers:
        sums to 1 over the images, and names the images that a heavy tail consists of."""
        shares = []
        for s, img in zip(self.sums, self.images):
            im = torch.cat(img, 1)
            d2 = self._d2(im, (s[0].sum() / s[2].sum()).cpu(), int(s[2].sum()) // im.shape[1])
            total = float(d2.sum())
            shares.append((d2 / total).numpy() if total > 0 else np.full(len(d2), 1 / len(d2)))
        return np.mean(shares, axis=0)

    def table(self) -> pd.DataFrame:
        rows = []
        for i, ((stage, block, conv, _), s, img) in enumerate(zip(self.layers, self.sums, self.images), 1):
            s1, s2, n = s[0], s[1], s[2]
            mean, sq = s1.sum() / n.sum(), s2.sum() / n.sum()
            ch_std = (s2 / n - (s1 / n) ** 2).clamp_min(0).sqrt()
            median, top = self.image_tail(torch.cat(img, 1), mean.cpu(), int(n.sum()) // sum(x.shape[1] for x in img))
            rows.append(dict(layer=i, stage=stage, block=block, conv=conv,
                             std=float((sq - mean * mean).clamp_min(0).sqrt()),
                             std_channel_mean=float(ch_std.mean()), std_image_median=median, top1pct_share=top))
        return pd.DataFrame(rows, columns=LAYER_STD_COLUMNS)


@torch.no_grad()
def layer_stds(model: ResNet, batches) -> pd.DataFrame:
    """Run `model` (in eval mode) over `batches` of (x, y) and return the per-layer std table."""
    model.eval()
    stats = ResponseStats(model)
    try:
        for x, _ in batches:
            model(x)
    finally:
        stats.remove()
    return stats.table()


GRADFLOW_COLUMNS = ["arch", "seed", "depth", "residual", "variant", "point", "iteration", "kind", "role", "index",
                    "layer", "stage", "block", "name", "grad_norm", "grad_norm_std", "grad_rms", "weight_norm",
                    "n_batches", "batch_size"]


def arch_info(arch: str) -> dict:
    c = parse_arch(arch)
    return dict(arch=arch, depth=c.depth, residual=c.residual, variant=c.variant)


def blocks(model: ResNet) -> list[tuple[int, int, int, BasicBlock]]:
    """(k, stage, block in stage, module) of every block in forward order; k and stages count from 1."""
    out, k = [], 0
    for s, stage in enumerate(model.stages, 1):
        for b, block in enumerate(stage, 1):
            k += 1
            out.append((k, s, b, block))
    return out


def weight_layers(model: ResNet) -> list[dict]:
    """Every conv and linear weight with its layer index (stem 1, block k's convs 2k and 2k+1, fc = depth) and
    role (stem, conv1, conv2, fc; shortcut projections and gates take the index of their block's addition)."""
    names = {id(p): n for n, p in model.named_parameters()}
    rows = [dict(index=1, role="stem", stage=0, block=0, param=model.stem[0][0].weight)]
    for k, s, b, blk in blocks(model):
        rows += [dict(index=2 * k, role="conv1", stage=s, block=b, param=blk.conv1[0].weight),
                 dict(index=2 * k + 1, role="conv2", stage=s, block=b, param=blk.conv2[0].weight)]
        if isinstance(blk.shortcut, nn.Sequential):
            rows.append(dict(index=2 * k + 1, role="shortcut", stage=s, block=b, param=blk.shortcut[0].weight))
        if blk.gate is not None:
            rows.append(dict(index=2 * k + 1, role="gate", stage=s, block=b, param=blk.gate.weight))
    rows.append(dict(index=2 * len(blocks(model)) + 2, role="fc", stage=0, block=0, param=model.fc.weight))
    for r in rows:
        r["name"] = names[id(r["param"])]
    return rows


class BlockInputGrads:
    """Forward pre-hooks that catch dL/d(input) of every block during the next backward pass."""

    def __init__(self, model: ResNet):
        self.blocks = blocks(model)
        self.grads: list[torch.Tensor | None] = [None] * len(self.blocks)
        self.handles = [blk.register_forward_pre_hook(self._hook(i)) for i, (*_, blk) in enumerate(self.blocks)]

    def _hook(self, i: int):
        def store(g: torch.Tensor) -> None:
            self.grads[i] = g.detach()

        def hook(module, args):
            if args[0].requires_grad:
                args[0].register_hook(store)
        return hook

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def tensor_norm(t: torch.Tensor | None) -> float:
    return math.nan if t is None else float(t.detach().double().norm())


def gradient_rows(model: ResNet, catcher: BlockInputGrads) -> list[dict]:
    """One row per block input and per weight layer, from the caught input gradients and the weights' .grad."""
    rows = []
    for (k, s, b, _), g in zip(catcher.blocks, catcher.grads):
        n = tensor_norm(g)
        rows.append(dict(kind="block_input", role="block", index=k, layer=2 * k, stage=s, block=b,
                         name=f"stages.{s - 1}.{b - 1}", grad_norm=n,
                         grad_rms=n / math.sqrt(g.numel()) if g is not None else math.nan, weight_norm=math.nan))
    for w in weight_layers(model):
        p = w["param"]
        n = tensor_norm(p.grad)
        rows.append(dict(kind="weight", role=w["role"], index=w["index"], layer=w["index"], stage=w["stage"],
                         block=w["block"], name=w["name"], grad_norm=n, grad_rms=n / math.sqrt(p.numel()),
                         weight_norm=tensor_norm(p)))
    return rows


def gradient_flow(model: ResNet, batches) -> pd.DataFrame:
    """Per block input and per weight layer: the gradient norm of the mean cross-entropy, averaged over `batches`
    (x, y), with the net in training mode. Columns: kind, role, index, layer, stage, block, name, grad_norm,
    grad_norm_std (over batches; NaN for one batch), grad_rms, weight_norm, n_batches, batch_size."""
    model.train()
    catcher = BlockInputGrads(model)
    norms, rms, meta, sizes = [], [], None, []
    try:
        for x, y in batches:
            model.zero_grad(set_to_none=True)
            catcher.grads = [None] * len(catcher.blocks)
            with torch.enable_grad():
                F.cross_entropy(model(x), y).backward()
            rows = gradient_rows(model, catcher)
            meta = meta or rows
            norms.append([r["grad_norm"] for r in rows])
            rms.append([r["grad_rms"] for r in rows])
            sizes.append(len(y))
    finally:
        catcher.remove()
        model.zero_grad(set_to_none=True)
    if meta is None:
        raise ValueError("gradient_flow needs at least one batch")
    norms, rms = np.asarray(norms), np.asarray(rms)
    df = pd.DataFrame(meta).drop(columns=["grad_norm", "grad_rms"])
    df["grad_norm"] = norms.mean(0)
    df["grad_norm_std"] = norms.std(0, ddof=1) if len(norms) > 1 else np.nan
    df["grad_rms"] = rms.mean(0)
    df["n_batches"], df["batch_size"] = len(norms), int(np.mean(sizes))
    return df


def label_rows(df: pd.DataFrame, arch: str, seed: int, point: str, iteration: int) -> pd.DataFrame:
    df = df.copy()
    for k, v in {**arch_info(arch), "seed": seed, "point": point, "iteration": iteration}.items():
        df[k] = v
    return df.reindex(columns=GRADFLOW_COLUMNS)


def make_gradflow_callback(every: int, path: str | Path, arch: str, seed: int):
    """A Lightning callback that writes the gradient norms of one training batch every `every` iterations
    (iteration = updates done before that batch) to `path` (the run folder's gradflow.csv)."""
    class GradFlowCallback(L.Callback):
        def __init__(self):
            self.every, self.path, self.catcher, self.it = every, Path(path), None, 0

        def on_train_start(self, trainer, pl_module):
            # A resumed run: drop rows the interrupted session wrote after its last checkpoint.
            if trainer.is_global_zero and self.path.is_file() and self.path.stat().st_size:
                df = pd.read_csv(self.path)
                df[df["iteration"] < trainer.global_step].to_csv(self.path, index=False)

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if trainer.global_step % self.every == 0:
                self.catcher, self.it, self.n = BlockInputGrads(pl_module.model), trainer.global_step, len(batch[1])

        def on_after_backward(self, trainer, pl_module):
            if self.catcher is None:
                return
            try:
                rows = pd.DataFrame(gradient_rows(pl_module.model, self.catcher))
            finally:
                self.catcher.remove()
                self.catcher = None
            if trainer.is_global_zero:
                rows["grad_norm_std"], rows["n_batches"], rows["batch_size"] = np.nan, 1, self.n
                df = label_rows(rows, arch, seed, "train", self.it)
                new = not (self.path.is_file() and self.path.stat().st_size)
                df.to_csv(self.path, mode="w" if new else "a", header=new, index=False)

    return GradFlowCallback()


def removable(block: BasicBlock) -> bool:
    """A residual block can always be removed (its shortcut stays); a plain one only where shapes match."""
    return block.shortcut is not None or not block.reshape


@contextlib.contextmanager
def lesioned(model: ResNet, k: int):
    """Within the context, block k (1-based, forward order) returns its shortcut path alone."""
    blk = blocks(model)[k - 1][3]
    if not removable(blk):
        raise ValueError(f"block {k} of a plain net changes the shape and cannot be removed")
    blk.lesioned = True
    try:
        yield model
    finally:
        blk.lesioned = False


def filter_normalized_direction(model: nn.Module, generator: torch.Generator) -> list[torch.Tensor]:
    """A random direction, one tensor per parameter (model.parameters() order): Gaussian, each filter rescaled to
    the norm of the weights' filter; zero for 1-D parameters (BN weights and biases, biases). Drawn on the CPU
    from `generator`, so the same seed gives the same direction on any device."""
    out = []
    for p in model.parameters():
        if p.dim() <= 1:
            out.append(torch.zeros_like(p))
            continue
        d = torch.randn(p.shape, generator=generator, dtype=torch.float32).to(p.device, p.dtype)
        w = p.detach()
        scale = w.flatten(1).norm(dim=1) / (d.flatten(1).norm(dim=1) + 1e-10)
        out.append(d * scale.view(-1, *[1] * (p.dim() - 1)))
    return out
