"""ImageNet-style data: image folders, the paper's ImageNet augmentation (Sec. 3.4) and 10-crop testing.

Layout: ``<data_dir>/{train,val}/<class>/*.JPEG`` (ImageNet, Imagenette). The sorted class folders give the
labels; greyscale and CMYK files are converted to RGB. The class count must equal ``num_classes`` and, where
``expect_counts`` is set, the image counts must match it (Imagenette: 9,469 / 3,925; ImageNet: 1,281,167 /
50,000), checked on the file listing before anything is decoded.

The recipe, at training size T = ``image_size``; every length is the paper's times T/224 (the paper: T = 224):

* training: the image's shorter side resized to a random s in ``scale_range`` x T/224 (the paper: [256, 480]),
  a random T x T crop of it, a horizontal flip with probability 1/2, the mean subtracted, and AlexNet's PCA
  colour augmentation (``color_aug`` = 0.1, the std of its weights; ImageNet's RGB eigenvalues and eigenvectors);
* testing: the shorter side resized to S = ``scale_range[0]`` x T/224 (the paper: 256). Single view: the center
  T x T crop (the curves; the paper's Fig. 4 val curves are center crops). 10-crop: the four corner crops and
  the center crop, and the same five of the mirrored image (torchvision's ten_crop order); the **softmax is
  averaged over the 10 views** (as Caffe's and AlexNet's 10-view testing average the predictions).

Two loaders (``loader``):

* ``memory`` (Imagenette-size sets, the default): every image is decoded once with PIL, resized on its shorter
  side to S and center-cropped to S x S (Imagenette's 224 x 224 copy is square, so nothing is cut), and cached
  as a uint8 array. The whole set lives on the training device; the batch order is the CIFAR path's function
  of (seed, iteration). Each training batch is augmented on the device by one ``grid_sample``: per sample, the
  window that a T-crop of the image resized to s covers (a square of 224/s of the image side, anywhere inside
  it; mirrored for a flip) is resampled bilinearly to T x T. As s >= scale_range[0], the window never holds
  more than T pixels across, so this only ever upsamples and needs no antialiasing. Test views are exact
  T x T slices of the stored S x S images. The per-pixel mean of the stored training images is subtracted
  before cropping, i.e. the mean image is cropped with the image (the paper's "per-pixel mean subtracted").
* ``workers`` (full ImageNet: 1.28M images do not fit in device memory): torchvision's ``ImageFolder`` and a
  ``DataLoader`` with worker processes apply the same operations as PIL transforms (RandomResize, RandomCrop,
  horizontal flip; Resize, CenterCrop / TenCrop); uint8 batches go to the device, where the mean is
  subtracted and the colour augmentation applied. Images differ in size, so no mean image exists: the
  per-channel ImageNet training mean is used instead. The batch order is the same function of (seed,
  iteration), but the crop and flip randomness comes from the workers, so a resumed run does not repeat it
  exactly.

With DDP (``devices`` x ``num_nodes`` > 1) every rank walks the same global batches and takes its slice, and
evaluates its shard of the val set; the error sums are reduced over the ranks (see ``train.LitResNet``).
"""

from __future__ import annotations

import copy
from typing import Callable, Iterator

import lightning as L
import torch
import torch.nn.functional as F

from . import batches as B
from .config import PRESETS, make_config
from .imagefolder import FolderArrays, FolderIndex, PAPER_CROP, load_data, scale_pixels, test_size
from .paper import PAPER_IMAGENET
from .wording import scale_text

# AlexNet's PCA colour augmentation: eigenvalues and eigenvectors (columns) of ImageNet's RGB covariance on a
# 0-1 scale, as fb.resnet.torch uses them.
PCA_EIGVAL = (0.2175, 0.0188, 0.0045)
PCA_EIGVEC = ((-0.5675, 0.7192, 0.4009),
              (-0.5808, -0.0045, -0.8140),
              (-0.5836, -0.6948, 0.4203))
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # per-channel mean of ImageNet's training images (workers loader)
EVAL_VIEWS_PER_BATCH = 1000  # images x views per evaluation batch on a GPU; a CPU takes 250 (see data.CIFARDataModule)


# ----------------------------------------------------------------------------- augmentation and test views


def crop_windows(b: int, scale_range, gen: torch.Generator | None, device) -> torch.Tensor:
    """(b, 2, 3) affine maps, output -> input coordinates normalised to [-1, 1], of b training crops.

    Per sample: s ~ U[scale_range] (the paper's pixels); the crop covers f = 224/s of the image side, at a
    uniform random position inside the image; with probability 1/2 it is mirrored (x scale -f)."""
    lo, hi = scale_range
    u = torch.rand(b, 4, device=device, generator=gen)
    f = PAPER_CROP / (lo + (hi - lo) * u[:, 0])
    theta = torch.zeros(b, 2, 3, device=device)
    theta[:, 0, 0] = torch.where(u[:, 3] < 0.5, -f, f)
    theta[:, 1, 1] = f
    theta[:, 0, 2] = (2 * u[:, 1] - 1) * (1 - f)  # window center; |center| + f <= 1 keeps it inside
    theta[:, 1, 2] = (2 * u[:, 2] - 1) * (1 - f)
    return theta


def scale_crop_flip(x: torch.Tensor, size: int, scale_range, gen: torch.Generator | None = None) -> torch.Tensor:
    """The paper's scale augmentation, random crop and flip of a float batch (B, C, S, S) -> (B, C, size, size).

    One grid_sample for the batch. Sampling reads the image around the window (not a clamped window), as
    resizing the whole image and then cropping does; "border" only guards the outermost half pixel."""
    theta = crop_windows(len(x), scale_range, gen, x.device)
    grid = F.affine_grid(theta, [len(x), x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def lighting(x: torch.Tensor, std: float, gen: torch.Generator | None = None) -> torch.Tensor:
    """AlexNet's colour augmentation: add sum_j eigvec_j * alpha_j * eigval_j, alpha_j ~ N(0, std^2), to every
    pixel of a sample (one draw per sample)."""
    if std <= 0:
        return x
    alpha = torch.randn(len(x), 3, device=x.device, generator=gen) * std
    val = torch.tensor(PCA_EIGVAL, device=x.device)
    vec = torch.tensor(PCA_EIGVEC, device=x.device)
    rgb = (alpha * val) @ vec.T  # rgb[b, i] = sum_j vec[i, j] * alpha[b, j] * val[j]
    return x + rgb[:, :, None, None].to(x.dtype)


def center_view(x: torch.Tensor, size: int) -> torch.Tensor:
    """The single test view: the center size x size crop, (B, C, S, S) -> (B, C, size, size)."""
    import torchvision.transforms.functional as TF

    return TF.center_crop(x, [size, size])


def ten_crop_views(x: torch.Tensor, size: int) -> torch.Tensor:
    """The 10 test views of each image, (B, C, S, S) -> (B * 10, C, size, size), the views of an image adjacent:
    top-left, top-right, bottom-left, bottom-right, center, then the same five of the mirrored image."""
    import torchvision.transforms.functional as TF

    return torch.stack(TF.ten_crop(x, [size, size]), 1).flatten(0, 1)


# ----------------------------------------------------------------------------- the memory loader's batches


class ScaleAugStream(B.TrainStream):
    """The CIFAR path's batch order (a function of seed and iteration; one slice per rank) with this module's
    augmentation: mean image subtracted, scale + crop + flip, colour augmentation."""

    def __init__(self, *args, image_size: int, scale_range, color_aug: float, **kw):
        super().__init__(*args, **kw)
        self.image_size, self.scale_range, self.color_aug = image_size, tuple(scale_range), color_aug

    def batch(self, step: int, gen: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self.indices(step)
        x = scale_crop_flip(B.normalize(self.x[idx], self.mean), self.image_size, self.scale_range, gen)
        x = lighting(x, self.color_aug, gen)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, self.y[idx]


class ViewBatches(B.EvalBatches):
    """Evaluation batches (fixed order; one shard per rank) of the single center view (views=1) or the
    10 crops (views=10) of each stored image."""

    def __init__(self, x_uint8, y, mean, image_size: int, views: int, rank: int = 0, world_size: int = 1,
                 channels_last: bool = False, views_per_batch: int = EVAL_VIEWS_PER_BATCH):
        super().__init__(x_uint8, y, mean, max(1, views_per_batch // views), rank, world_size, channels_last)
        self.image_size, self.views = image_size, views

    def __iter__(self):
        for i in range(0, len(self.x), self.batch_size):
            x = B.normalize(self.x[i: i + self.batch_size], self.mean)
            x = center_view(x, self.image_size) if self.views == 1 else ten_crop_views(x, self.image_size)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.y[i: i + self.batch_size]


# ----------------------------------------------------------------------------- the workers loader


class StepBatchSampler(B.TrainStream):
    """The same per-rank index lists as the memory loader, for a DataLoader's batch_sampler. Only the set's
    size is used (x is a placeholder without pixels)."""

    def __init__(self, n: int, batch_size: int, seed: int, steps: int, start_step: Callable[[], int],
                 rank: int = 0, world_size: int = 1):
        super().__init__(torch.empty(n, 0, dtype=torch.uint8), torch.empty(0), None, batch_size, seed, steps,
                         start_step, rank=rank, world_size=world_size)

    def __iter__(self) -> Iterator[list[int]]:
        s0 = self.start_step()
        for s in range(s0, s0 + self.steps):
            yield self.indices(s).tolist()


def _stack_views(crops) -> torch.Tensor:  # module level: worker processes pickle the transform
    from torchvision.transforms.v2.functional import pil_to_tensor

    return torch.stack([pil_to_tensor(c) for c in crops])


def train_transform(cfg):
    from torchvision.transforms import v2

    lo, hi = scale_pixels(cfg)
    return v2.Compose([v2.RandomResize(lo, hi + 1), v2.RandomCrop(cfg.image_size), v2.RandomHorizontalFlip(),
                       v2.PILToTensor()])


def eval_transform(cfg, views: int):
    from torchvision.transforms import v2

    crop = [v2.CenterCrop(cfg.image_size), v2.PILToTensor()] if views == 1 else [v2.TenCrop(cfg.image_size),
                                                                               _stack_views]
    return v2.Compose([v2.Resize(test_size(cfg)), *crop])


class DeviceBatches:
    """A DataLoader of uint8 batches, moved to the device and normalised there (and colour-augmented when
    color_aug > 0). Batches of several views per image, (B, V, C, H, W), become B * V images."""

    def __init__(self, loader, device: torch.device, mean: torch.Tensor, color_aug: float = 0.0, seed: int = 0,
                 start_step: Callable[[], int] = lambda: 0, rank: int = 0, channels_last: bool = False):
        self.loader, self.device, self.mean, self.color_aug = loader, device, mean, color_aug
        self.seed, self.start_step, self.rank, self.channels_last = seed, start_step, rank, channels_last

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        gen = torch.Generator(device=self.device).manual_seed(B.stream_seed(self.seed, self.start_step(), self.rank, 0xC0))
        for x, y in self.loader:
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            x = lighting(B.normalize(x.flatten(0, 1) if x.dim() == 5 else x, self.mean), self.color_aug, gen)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, y


# ----------------------------------------------------------------------------- the data module


class ImageFolderDataModule(L.LightningDataModule):
    """Serves an image folder with the recipe above through either loader. `final_eval_loaders` gives the
    end-of-training evaluations: the single center view and 10-crop, both on the whole val set (or
    test_subset of it)."""

    def __init__(self, cfg, data: FolderArrays | FolderIndex | None = None):
        super().__init__()
        self.cfg, self.data = cfg, data

    def setup(self, stage: str | None = None) -> None:
        cfg = self.cfg
        d = self.data or load_data(cfg)
        self.source, self.source_path = d.source, d.path
        self.device = self.trainer.strategy.root_device if self.trainer else torch.device("cpu")
        self.rank, self.world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        self.step = (lambda: self.trainer.global_step) if self.trainer else (lambda: 0)
        n_train, n_val = ((len(d.train_x), len(d.val_x)) if isinstance(d, FolderArrays)
                          else (len(d.train_set), len(d.val_set)))
        train_idx = B.subset_indices(n_train, cfg.train_subset, cfg.split_seed)
        val_idx = B.subset_indices(n_val, cfg.test_subset, cfg.split_seed)
        self.n_train, self.n_val, self.n_test = len(train_idx), len(val_idx), None
        if isinstance(d, FolderArrays):
            self._setup_memory(d, train_idx, val_idx)
        else:
            self._setup_workers(d, train_idx, val_idx)

    def _setup_memory(self, d: FolderArrays, train_idx, val_idx) -> None:
        cfg, dev = self.cfg, self.device
        self.train_x = B.to_tensor_nchw(d.train_x[train_idx]).to(dev)
        self.train_y = torch.from_numpy(d.train_y[train_idx]).to(dev)
        self.val_x = B.to_tensor_nchw(d.val_x[val_idx]).to(dev)
        self.val_y = torch.from_numpy(d.val_y[val_idx]).to(dev)
        self.mean = B.mean_image(self.train_x)  # per-pixel, of the training images as stored (S x S)
        self.train_batches = ScaleAugStream(self.train_x, self.train_y, self.mean, cfg.batch_size, cfg.seed,
                                            cfg.eval_every, self.step, rank=self.rank, world_size=self.world,
                                            channels_last=cfg.channels_last, image_size=cfg.image_size,
                                            scale_range=cfg.scale_range, color_aug=cfg.color_aug)

    def _setup_workers(self, d: FolderIndex, train_idx, val_idx) -> None:
        from torch.utils.data import DataLoader, Subset

        cfg, dev = self.cfg, self.device
        self.mean = torch.tensor(IMAGENET_MEAN, device=dev).view(3, 1, 1)
        train_set = copy.copy(d.train_set)
        train_set.transform = train_transform(cfg)
        if len(train_idx) < len(train_set):
            train_set = Subset(train_set, train_idx.tolist())
        self._val_sets = {}
        for views in (1, 10):
            s = copy.copy(d.val_set)
            s.transform = eval_transform(cfg, views)
            self._val_sets[views] = Subset(s, val_idx[self.rank::self.world].tolist())  # this rank's shard
        pin, w = dev.type == "cuda", cfg.num_workers
        sampler = StepBatchSampler(len(train_set), cfg.batch_size, cfg.seed, cfg.eval_every, self.step,
                                   self.rank, self.world)
        loader = DataLoader(train_set, batch_sampler=sampler, num_workers=w, pin_memory=pin,
                            persistent_workers=w > 0)
        self.train_batches = DeviceBatches(loader, dev, self.mean, cfg.color_aug, cfg.seed, self.step, self.rank,
                                           cfg.channels_last)
        self._loader_kw = dict(num_workers=w, pin_memory=pin)

    def train_dataloader(self):
        return self.train_batches

    def eval_batches(self, views: int, persistent: bool = False):
        per_batch = EVAL_VIEWS_PER_BATCH // 4 if self.device.type == "cpu" else EVAL_VIEWS_PER_BATCH
        if not hasattr(self, "_val_sets"):
            return ViewBatches(self.val_x, self.val_y, self.mean, self.cfg.image_size, views, self.rank,
                               self.world, self.cfg.channels_last, per_batch)
        from torch.utils.data import DataLoader

        kw = dict(self._loader_kw, persistent_workers=persistent and self._loader_kw["num_workers"] > 0)
        loader = DataLoader(self._val_sets[views], batch_size=max(1, per_batch // views), **kw)
        return DeviceBatches(loader, self.device, self.mean, channels_last=self.cfg.channels_last)

    def val_dataloader(self):
        return [self.eval_batches(1, persistent=True)]  # "val": the curves, every eval_every iterations

    def final_eval_loaders(self) -> dict:
        return {"val": self.eval_batches(1), "val_10crop": self.eval_batches(10)}


def protocol_text(preset: str) -> str:
    """The recipe above, as the report states it for `preset` (its numbers read from the config)."""
    c = make_config(preset) if preset in PRESETS else make_config("imagenette")
    lo, hi = scale_pixels(c)
    t, s = c.image_size, test_size(c)
    c0, (s0, s1), st = PAPER_IMAGENET["crop"], PAPER_IMAGENET["scale"], PAPER_IMAGENET["test_side"]
    lr_note = ("the paper's" if c.batch_size == 256
               else f"the paper's 0.1 for 256, scaled linearly to batch {c.batch_size}")
    return (f"- Schedule: {scale_text(preset)}. Batch {c.batch_size}, SGD with momentum {c.momentum}, weight decay "
            f"{c.weight_decay:g} on all parameters, lr {c.lr:g} ({lr_note}) divided by 10 at iterations "
            f"{', '.join(f'{m:,}' for m in c.milestones)}: fixed points, chosen once for all nets; stop at "
            f"{c.max_steps:,}.\n"
            f"- Training augmentation (Sec. 3.4), every length the paper's × {t}/{c0}: the shorter side resized to a "
            f"random s in [{lo}, {hi}] px (paper: [{s0}, {s1}]), a random {t}×{t} crop (paper: {c0}×{c0}), a horizontal "
            f"flip with probability 1/2, the per-pixel mean subtracted, AlexNet's PCA colour augmentation (std "
            f"{c.color_aug:g}).\n"
            f"- Testing: the image resized to {s} px (paper: {st}). The curves use the single center {t}×{t} crop; "
            f"Tables 2 and 3 use 10-crop testing (4 corners + center, and their mirror images; softmax averaged).\n"
            f"- Val error on {'all' if not c.test_subset else f'{c.test_subset:,} of the'} val images every "
            f"{c.eval_every:,} iterations. Reported errors are the **final iterate's**; the val set selects nothing, "
            f"and no choice here was made on data (so no split of train is held out).\n"
            f"- Nets (Table 1): 7×7/2 stem and max-pool, basic blocks with 64–512 filters ([2,2,2,2] for 18 layers, "
            f"[3,4,6,3] for 34), BN after every conv, He init, a {c.num_classes}-way classifier. Plain nets are the "
            f"same stacks without the additions; shortcuts A (identity, zero-padded where the shape changes), "
            f"B (projections where the shape changes), C (projections everywhere).\n"
            f"- Loader: `{c.loader}` (see `src/resnet_repro/imagenet.py`).")
