"""Training: a thin LightningModule around the plain nn.Module, the data module, and the run folder.

A run writes `<out>/<preset>/runs/<arch>/seed<k>/`:
    config.json    the resolved TrainConfig
    metrics.csv    one row per eval interval: iteration, lr, train_loss, train_err (interval means),
                   test_loss, test_err (full test set), val_* if a split is held out, elapsed_s
    final.json     final-iterate errors, params, wall time, versions, device (and every session's), commit,
                   data source (image folders, dataset="imagefolder": curves and errors are on the folder's val set,
                   and final.json adds top-5 and 10-crop val errors; see imagenet.py)
    sessions.jsonl one line per training session: start time, commit, host, device, the iteration it resumed
                   from
    checkpoints/   last.ckpt while training (resume), final.ckpt at the end (weights only; not in git)
    .lock          held (flock) by the process training the run; a second process on the folder exits 2

Lightning's own pieces do the work: Trainer, a Logger, the progress bar, DDP. One Lightning "epoch" is one
eval interval, so the test error is measured at fixed iterations and a resumed run restarts exactly at an
interval boundary. last.ckpt is written every `ckpt_every` intervals to a temporary file that is then
renamed over the old one, so a kill at any moment (SIGINT, SIGTERM, SIGKILL, a machine stop) leaves a
usable checkpoint and loses at most one checkpoint interval.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import sys
import time
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F

from . import data as D
from . import imagenet as IN
from .config import FULL_SCALE_PRESETS, PRESETS, TrainConfig
from .data import CIFARDataModule
from .hardware import device_name, native_bf16
from .hooks import make_gradflow_callback
from .models import build_model, count_params, parse_arch
from .runfolder import (
    CODE_COMMIT,
    ResumeCheckpoint,
    RunCSVLogger,
    check_existing,
    clear_lost_start,
    lock_run,
    run_dir,
    session_devices,
)

# Lightning advertises a cloud logger on every run; the line alarms newcomers and says nothing about the run.
logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(lambda r: "litlogger" not in r.getMessage())


# ----------------------------------------------------------------------------- schedule


class LRSchedule:
    """lr(iteration): step decay at the milestones, with the paper's optional warm-up rule.

    While warming up, the lr is `warmup_lr` (never above the step schedule). The rule ends the warm-up
    at the first check whose mean training error is below `warmup_until_err`; the iteration is kept in
    `switched_at`. Reaching the first milestone also ends it, so a net that never trains still follows
    the normal decay.
    """

    def __init__(self, cfg: TrainConfig):
        self.lr, self.milestones = cfg.lr, tuple(cfg.milestones)
        self.warmup_lr, self.until = cfg.warmup_lr, cfg.warmup_until_err
        self.warming = cfg.use_warmup
        self.switched_at: int | None = None

    def __call__(self, it: int) -> float:
        lr = self.lr * 0.1 ** sum(it >= m for m in self.milestones)
        if self.warming and (not self.milestones or it < self.milestones[0]):
            lr = min(lr, self.warmup_lr)
        return lr

    def observe(self, it: int, train_err: float) -> bool:
        """Feed the mean training error of the iterations up to `it`; True when the warm-up ends now."""
        if self.warming and (train_err < self.until or (self.milestones and it >= self.milestones[0])):
            self.warming, self.switched_at = False, it
            return True
        return False

    def state_dict(self) -> dict:
        return dict(warming=self.warming, switched_at=self.switched_at)

    def load_state_dict(self, s: dict) -> None:
        self.warming, self.switched_at = s["warming"], s["switched_at"]


# ----------------------------------------------------------------------------- the LightningModule


class LitResNet(L.LightningModule):
    """Wraps models.ResNet. One shared step serves training and evaluation."""

    def __init__(self, cfg: dict):
        super().__init__()
        self.save_hyperparameters(cfg)
        self.cfg = TrainConfig(**cfg)
        self.model = build_model(self.cfg.arch, num_classes=self.cfg.num_classes, bn_groups=self.cfg.bn_groups)
        if self.cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if self.cfg.compile:
            self.model.compile(mode=self.cfg.compile_mode)  # in place: the state_dict keys stay the module's
        self.schedule = LRSchedule(self.cfg)
        # Sums kept on the device, read once per interval: no host sync inside the interval. Image counts are
        # known on the host and kept there, so no step copies a number to the device either.
        # This rank's sums since the last eval (loss*n, errors) and since the last warm-up check (errors). Plain
        # tensors, not buffers: DDP broadcasts rank 0's buffers to every rank before each forward, which overwrote
        # the other ranks' sums with rank 0's (the logged training error and the warm-up check saw rank 0's half
        # of each batch twice). Placed on the module's device in on_fit_start.
        self._train_sums, self._warm_errors = torch.zeros(2), torch.zeros(())
        self._train_n = self._warm_n = 0  # images of this rank since the last eval / warm-up check
        self._eval_sums: dict[str, torch.Tensor] = {}  # per evaluated set: loss*n, errors, n, top-5 errors
        self._final: dict | None = None  # set during final_evaluation: where its results go
        self.elapsed_before = 0.0  # wall time of earlier (interrupted) sessions of this run
        self._lr_used = self.cfg.lr  # the lr of the latest update (what metrics.csv logs)
        self._t0 = time.time()

    def on_fit_start(self):
        self._train_sums, self._warm_errors = self._train_sums.to(self.device), self._warm_errors.to(self.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def shared_step(self, batch, top5: bool = False):
        """(loss, top-1 errors, n[, top-5 errors]) of a batch.

        A batch may hold several views of each image (x has len(y) * v images, the v views of an image
        adjacent: 10-crop testing); the prediction is then the softmax averaged over the views, and the loss
        the cross-entropy of that average."""
        x, y = batch
        logits = self(x)
        if len(x) == len(y):
            scores, loss = logits, F.cross_entropy(logits, y)
        else:
            scores = F.softmax(logits.float(), 1).view(len(y), len(x) // len(y), -1).mean(1)
            loss = F.nll_loss(scores.clamp_min(1e-12).log(), y)
        errors = (scores.argmax(1) != y).sum()
        if not top5:
            return loss, errors, len(y)
        top = scores.topk(min(5, scores.shape[1]), 1).indices
        return loss, errors, len(y), (top != y[:, None]).all(1).sum()

    def training_step(self, batch, batch_idx):
        self._lr_used = self.trainer.optimizers[0].param_groups[0]["lr"]  # a host float: no sync
        loss, errors, n = self.shared_step(batch)
        d = loss.detach()
        self._train_sums += torch.stack([d * n, errors.to(d.dtype)])
        self._train_n += n
        if self.schedule.warming:
            self._warm_errors += errors
            self._warm_n += n
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx):
        it = self.global_step  # iterations done so far
        if self.schedule.warming and self._warm_n and it % self.cfg.warmup_check_every == 0:
            # Every rank takes an equal slice of the global batch, so the global count is n * world_size.
            errors = self.trainer.strategy.reduce(self._warm_errors.clone(), reduce_op="sum")
            err = errors.item() / (self._warm_n * self.trainer.world_size)
            if self.schedule.observe(it, err):
                # Lightning stepped the lr scheduler before this hook, with the warm-up still on: set the lr of the
                # next update now, so that the switch takes effect at the very next iteration.
                for opt in self.trainer.optimizers:
                    for g in opt.param_groups:
                        g["lr"] = self.schedule(it)
                why = (f"training error {err:.1%} < {self.cfg.warmup_until_err:.0%}" if err < self.cfg.warmup_until_err
                       else "first lr milestone reached")
                print(f"[warm-up] ends at iteration {it} ({why}); lr follows the step schedule", flush=True)
            self._warm_errors.zero_()
            self._warm_n = 0

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        loss, errors, n, errors5 = self.shared_step(batch, top5=True)
        key = self._eval_names[dataloader_idx]
        s = self._eval_sums.setdefault(key, torch.zeros(4, device=loss.device))
        s += torch.stack([loss.detach() * n, errors.to(s.dtype), s.new_tensor(n), errors5.to(s.dtype)])

    def on_validation_epoch_end(self):
        if self.trainer.sanity_checking:
            return
        logs = {}
        for key in self._eval_names:  # the same order on every rank, even one whose shard was empty
            s = self._eval_sums.get(key, torch.zeros(4, device=self.device))
            s = self.trainer.strategy.reduce(s, reduce_op="sum")
            if self._final is not None:
                self._final.update({f"{key}_loss": (s[0] / s[2]).item(), f"{key}_err": (s[1] / s[2]).item(),
                                    f"{key}_top5_err": (s[3] / s[2]).item(), f"n_{key}": int(s[2].item())})
                continue
            logs[f"{key}/loss"], logs[f"{key}/err"] = s[0] / s[2], s[1] / s[2]
        if self._final is not None:  # the final evaluation reports through final_evaluation, not the curves
            self._eval_sums = {}
            return
        if self._train_n:
            t = self.trainer.strategy.reduce(self._train_sums.clone(), reduce_op="sum")
            n = self._train_n * self.trainer.world_size
            logs["train/loss"], logs["train/err"] = t[0] / n, t[1] / n
        it = self.global_step
        logs["iteration"] = torch.tensor(float(it))
        logs["lr"] = torch.tensor(self._lr_used)  # the lr the interval's last update actually used
        logs["elapsed_s"] = torch.tensor(self.elapsed())
        self.log_dict({k: v.float() for k, v in logs.items()}, prog_bar=False)
        self._eval_sums = {}
        self._train_sums.zero_()
        self._train_n = 0

    @property
    def _eval_names(self) -> list[str]:
        if self._final is not None:
            return self._final_names
        if self.cfg.dataset != "cifar10":
            return ["val"]  # the image folder's val set, where ImageNet reports its errors
        return ["val", "test"] if self.cfg.val_size else ["test"]

    def final_evaluation(self, trainer: L.Trainer, loaders: dict) -> dict[str, float]:
        """Loss, top-1 and top-5 error of the current weights on each named loader, reduced over the ranks:
        {"<name>_err": ..., "<name>_top5_err": ..., "<name>_loss": ..., "n_<name>": ...}. Every rank calls it."""
        self._final_names, self._final = list(loaders), {}
        try:
            trainer.validate(self, dataloaders=list(loaders.values()), verbose=False)
            return self._final
        finally:
            self._final = None

    def configure_optimizers(self):
        params = list(self.model.parameters())
        on_cuda = all(p.device.type == "cuda" for p in params)  # the fused kernel exists for CUDA tensors
        opt = torch.optim.SGD(params, lr=self.cfg.lr, momentum=self.cfg.momentum,
                              weight_decay=self.cfg.weight_decay, fused=True if on_cuda else None)
        # LambdaLR multiplies the base lr by this factor; the schedule reads the warm-up state live.
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda it: self.schedule(it) / self.cfg.lr)
        return dict(optimizer=opt, lr_scheduler=dict(scheduler=sched, interval="step"))

    def elapsed(self) -> float:
        return self.elapsed_before + time.time() - self._t0

    def on_save_checkpoint(self, ckpt):
        ckpt["schedule"] = self.schedule.state_dict()
        ckpt["elapsed_s"] = self.elapsed()

    def on_load_checkpoint(self, ckpt):
        if "schedule" in ckpt:
            self.schedule.load_state_dict(ckpt["schedule"])
        self.elapsed_before = ckpt.get("elapsed_s", 0.0)
        self._t0 = time.time()


# ----------------------------------------------------------------------------- data module


def load_data(cfg: TrainConfig) -> D.CifarArrays | IN.FolderArrays | IN.FolderIndex:
    """The data set of a configuration, checked (and decoded, where it is held in memory)."""
    return D.load_cifar10(cfg.data_dir) if cfg.dataset == "cifar10" else IN.load_data(cfg)


def make_datamodule(cfg: TrainConfig, data=None) -> L.LightningDataModule:
    return CIFARDataModule(cfg, data) if cfg.dataset == "cifar10" else IN.ImageFolderDataModule(cfg, data)


def train(cfg: TrainConfig, arrays: D.CifarArrays | IN.FolderArrays | IN.FolderIndex | None = None,
          progress: bool | None = None, stop_after: int | None = None) -> dict:
    """Train one run into its folder and return final.json's content (or the existing one).

    `stop_after` (iterations) ends the session early without writing final.json, as an interruption
    would; a later call resumes. It is how the tests interrupt a run."""
    cfg.validate()
    rd = run_dir(cfg)
    state = check_existing(rd, cfg)
    if state == "done":
        print(f"[skip] {rd} is finished (final.json exists)", flush=True)
        return json.loads((rd / "final.json").read_text())
    if arrays is None:
        arrays = load_data(cfg)  # fail on bad data before anything is written
    lock = lock_run(rd) if _is_rank_zero() else None
    try:
        return _train_locked(cfg, rd, arrays, progress, stop_after)
    finally:
        if lock is not None:
            lock.close()  # the file stays (git-ignored): unlinking it would let a waiting process lock a ghost


def device_kind(cfg: TrainConfig) -> str:
    """"cuda" or "cpu": what this session trains on (Lightning's "auto" takes a GPU where there is one)."""
    return "cuda" if cfg.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available() else "cpu"


def _is_rank_zero() -> bool:
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0"))) == 0


def _train_locked(cfg: TrainConfig, rd: Path, arrays, progress, stop_after) -> dict:
    state = check_existing(rd, cfg)  # again, under the lock: another process may have moved the run on
    if state == "done":
        print(f"[skip] {rd} is finished (final.json exists)", flush=True)
        return json.loads((rd / "final.json").read_text())
    commit = CODE_COMMIT
    rank_zero = _is_rank_zero()  # DDP: the other ranks rerun this command; only rank 0 writes the run's files
    if rank_zero:
        (rd / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
    ckpt_dir = rd / "checkpoints"
    last = ckpt_dir / "last.ckpt"
    resume_step = torch.load(last, map_location="cpu", weights_only=False)["global_step"] if state == "resume" else None
    if state == "resume":
        print(f"[resume] {rd} from iteration {resume_step}", flush=True)
    elif rank_zero and (stale := clear_lost_start(rd)):
        print(f"[restart] {rd}: an earlier start left {', '.join(stale)} but no checkpoint; training from "
              f"iteration 0", flush=True)
    if rank_zero:
        kind = device_kind(cfg)
        # A CPU without native bf16 trains bf16 runs at a fraction of its fp32 speed: the session says which it was.
        cpu_bf16 = dict(native_bf16=native_bf16()) if kind == "cpu" else {}
        if kind == "cpu" and cfg.precision == "bf16-mixed" and not cpu_bf16["native_bf16"]:
            print("[warn] this CPU has no native bf16 (AVX512_BF16 or AMX-BF16): autocast emulates it, so this bf16 "
                  "run trains several times slower than it would in fp32 (--precision 32-true)", flush=True)
        with open(rd / "sessions.jsonl", "a") as fh:  # one line per training session of this run
            fh.write(json.dumps(dict(started_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"), commit=commit,
                                     from_iteration=resume_step or 0, host=platform.node(),
                                     torch_threads=torch.get_num_threads(), precision=cfg.precision,
                                     device_kind=kind, device=device_name(torch.device(kind)), **cpu_bf16)) + "\n")

    L.seed_everything(cfg.seed, workers=False, verbose=False)
    module = LitResNet(cfg.to_dict())
    dm = make_datamodule(cfg, arrays)
    if torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    max_steps = cfg.max_steps if stop_after is None else min(cfg.max_steps, stop_after)
    callbacks = [ResumeCheckpoint(last, cfg.ckpt_every, cfg.max_steps)]
    if cfg.gradflow_every:  # issue 8: gradient norms during training (hooks.py)
        callbacks.append(make_gradflow_callback(cfg.gradflow_every, rd / "gradflow.csv", cfg.arch, cfg.seed))
    trainer = L.Trainer(
        accelerator=cfg.accelerator, devices=cfg.devices, num_nodes=cfg.num_nodes,
        strategy="ddp" if cfg.devices * cfg.num_nodes > 1 else "auto",
        precision=cfg.precision, max_steps=max_steps, max_epochs=-1, num_sanity_val_steps=0,
        check_val_every_n_epoch=1, logger=RunCSVLogger(rd / "metrics.csv", keep_until=resume_step),
        callbacks=callbacks, enable_checkpointing=False, enable_model_summary=False, use_distributed_sampler=False,
        enable_progress_bar=sys.stderr.isatty() if progress is None else progress,
        default_root_dir=rd, benchmark=None, log_every_n_steps=cfg.eval_every,
    )
    trainer.fit(module, datamodule=dm, ckpt_path=str(last) if state == "resume" else None)
    if trainer.global_step < cfg.max_steps:  # an interruption: leave last.ckpt for the resume
        return {}
    wall = module.elapsed()
    # Image folders: top-1/top-5 of the final weights, single center view and 10-crop (every rank takes part).
    evals = module.final_evaluation(trainer, dm.final_eval_loaders()) if hasattr(dm, "final_eval_loaders") else {}
    eval_s = module.elapsed() - wall
    final_ckpt = ckpt_dir / "final.ckpt"
    trainer.save_checkpoint(final_ckpt, weights_only=True)  # collective (a barrier): every rank calls it
    if trainer.global_rank != 0:
        return {}
    last.unlink(missing_ok=True)
    rows = RunCSVLogger(rd / "metrics.csv", keep_until=cfg.max_steps).rows
    end = rows[cfg.max_steps]
    net = parse_arch(cfg.arch)
    final = dict(
        arch=cfg.arch, preset=cfg.preset, seed=cfg.seed, depth=net.depth, residual=net.residual,
        shortcut=net.shortcut if net.residual else "none", variant=net.variant if net.residual else "none",
        params=count_params(module.model), iterations=trainer.global_step,
        final_test_err=end.get("test_err"), final_train_err=end.get("train_err"),
        final_val_err=end.get("val_err"),
        train_err_note="mean training error (augmented, train-mode BN) over the last eval interval",
        warmup_switched_at=module.schedule.switched_at if cfg.use_warmup else None,
        wall_time_s=round(wall, 1), iters_per_s=round(trainer.global_step / max(wall, 1e-9), 3),
        n_train=dm.n_train, n_test=dm.n_test,
        device=device_name(trainer.strategy.root_device), n_devices=cfg.devices * cfg.num_nodes,
        session_devices=session_devices(rd),
        precision=cfg.precision, torch_threads=torch.get_num_threads(),
        commit=commit, torch=torch.__version__, lightning=L.__version__,
        python=platform.python_version(), data_source=dm.source, data_path=str(Path(dm.source_path).resolve()),
        scaled_down=(cfg.preset not in FULL_SCALE_PRESETS
                     or cfg.max_steps != PRESETS[cfg.preset].get("max_steps", TrainConfig.max_steps)),
        finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )
    if evals:
        final.update(
            final_val_top5_err=evals["val_top5_err"], final_val_10crop_err=evals["val_10crop_err"],
            final_val_10crop_top5_err=evals["val_10crop_top5_err"], n_val=evals["n_val"],
            final_val_single_view_err=evals["val_err"],  # recomputed; equals final_val_err (same weights, view)
            eval_note="val: single center view and 10-crop (4 corners + center, and their mirror images; softmax "
                      "averaged over the 10 views) of the final iterate; the val set selects nothing",
            image_size=cfg.image_size, final_eval_s=round(eval_s, 1))
    final = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in final.items()}
    (rd / "final.json").write_text(json.dumps(final, indent=2) + "\n")
    name = "test" if final["final_test_err"] is not None else "val"
    err = final[f"final_{name}_err"]
    print(f"[done] {rd}: {name} err {err:.2%}, train err {final['final_train_err']:.2%}, {wall:.0f}s", flush=True)
    return final
