"""The paper's facts, in one table with their sources: every number of the paper that a table, figure, notebook or
report quotes is read from here, never typed into text.

He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", CVPR 2016 (arXiv 1512.03385), unless a
source names another paper.
"""

from __future__ import annotations

# CIFAR-10 test error (%), Table 6. ResNet-110: the best of 5 runs (mean ± std 6.61 ± 0.16).
PAPER_TABLE6 = {"resnet20": 8.75, "resnet32": 7.51, "resnet44": 7.17, "resnet56": 6.97, "resnet110": 6.43,
                "resnet1202": 7.93}
PAPER_TABLE6_NOTE = {"resnet110": "6.43 best of 5 (6.61 ± 0.16)"}
# A popular public PyTorch reproduction's single runs; best epochs picked on the test set (optimistic by construction).
PUBLIC_REPRO = {"resnet20": 8.27, "resnet32": 7.37, "resnet44": 6.90, "resnet56": 6.61, "resnet110": 6.32,
                "resnet1202": 6.18}
PUBLIC_REPRO_NOTE = "akamaster/pytorch_resnet_cifar10: single runs, best epoch selected on the test set"
# A public PyTorch reproduction that reports the final iterate, (mean, std) over 5 runs, plain nets included: the
# like-for-like reference for our `paper` preset. It trains on 45k of the 50k training images (5k held out as val),
# fp32 on Apple MPS, the paper's schedule (lr 0.1, /10 at 32k and 48k, stop at 64k; ResNet-110 lr 0.01 for 400).
FINAL_REPRO = {"resnet20": (8.51, 0.22), "resnet56": (7.40, 0.27), "resnet110": (7.14, 0.20),
               "plain20": (9.78, 0.13), "plain56": (12.95, 0.22)}
FINAL_REPRO_N = 5
FINAL_REPRO_NOTE = (f"nabla0001/resnet: mean ± std over {FINAL_REPRO_N} runs, final iterate (never selected on the test set), "
                    "trained on 45k of the 50k training images, fp32")

# ImageNet val error (%, 10-crop testing): Table 2 (top-1; option A) and Table 3 (top-1, top-5).
PAPER_TABLE2 = {"plain18": 27.94, "plain34": 28.54, "resnet18": 27.88, "resnet34": 25.03}
PAPER_TABLE3 = {"plain34": (28.54, 10.02), "resnet34": (25.03, 7.76), "resnet34b": (24.52, 7.46),
                "resnet34c": (24.19, 7.40)}

# Sec. 4.2, the 110-layer net: lr 0.01 "to warm up the training until the training error is below 80% (about 400
# iterations), and then go back to 0.1".
WARMUP_ABOUT_ITERATIONS = 400

# Fig. 6 caption (left, the plain nets): "The error of plain-110 is higher than 60% and not displayed."
PLAIN110_ERR_ABOVE = 0.60

# Sec. 4.2, the CIFAR-10 protocol: batch 128 on 2 GPUs (BN over each GPU's 64 images), 45k/5k train/val split to
# choose the schedule, final runs on all 50k training images.
PAPER_CIFAR = dict(batch=128, gpus=2, train_images=50_000, split=(45_000, 5_000))

# Neither section states a numeric precision: the paper trains on GPUs (Sec. 3.4, 4.2) in 2015, when fp32 was the
# norm; a run in any other precision says so beside this.
PAPER_PRECISION = "the paper does not state its precision; fp32 was the norm for GPU training then"

# Sec. 3.4 and 4.1, the ImageNet protocol: 600k iterations of 256 (about 120 epochs of 1.28M images), crops of
# 224 from images whose shorter side is resized to [256, 480], testing at 256; 1000 classes, 50k val images.
PAPER_IMAGENET = dict(iterations=600_000, batch=256, epochs=120, crop=224, scale=(256, 480), test_side=256,
                      classes=1000, train_images=1_281_167, val_images=50_000)

# He et al., "Identity Mappings in Deep Residual Networks", ECCV 2016, Tables 1 and 2: CIFAR-10 test error (%) of
# ResNet-110, median of 5 runs; None: the net failed to train.
PAPER_ECCV_MEDIANS: dict[str, float | None] = {
    "resnet110": 6.61, "resnet110-const0.5": 12.35, "resnet110-exclgate": 8.70, "resnet110-scgate": 6.91,
    "resnet110-conv1x1": 12.22, "resnet110-scdrop0.5": None, "resnet110-bnafter": 8.17,
    "resnet110-relubefore": 7.84, "resnet110-relupreact": 6.71, "resnet110-preact": 6.37}

SOURCES = {
    "PAPER_TABLE6": "He et al. 2016, Table 6 (CIFAR-10 test error); ResNet-110 best of 5 runs",
    "PUBLIC_REPRO": "github.com/akamaster/pytorch_resnet_cifar10, README table (best epoch on the test set)",
    "FINAL_REPRO": "github.com/nabla0001/resnet, README table 'Test performance' (5 runs; train.py tests once, "
                   "after the last iteration; data.py holds 5k of the training images out)",
    "PAPER_TABLE2": "He et al. 2016, Table 2 (ImageNet val, top-1, 10-crop)",
    "PAPER_TABLE3": "He et al. 2016, Table 3 (ImageNet val, top-1 and top-5, 10-crop)",
    "WARMUP_ABOUT_ITERATIONS": "He et al. 2016, Sec. 4.2",
    "PAPER_ECCV_MEDIANS": "He et al. 2016b (ECCV), Tables 1 and 2 (median of 5 runs)",
    "PAPER_CIFAR": "He et al. 2016, Sec. 4.2 (CIFAR-10: mini-batch 128 on two GPUs, 45k/5k split)",
    "PAPER_IMAGENET": "He et al. 2016, Sec. 3.4 (implementation) and 4.1 (ImageNet: 1.28M training, 50k val images)",
}


def table2_text() -> str:
    """'plain 27.94% → 28.54%, ResNet 27.88% → 25.03%' (18 → 34 layers, Table 2)."""
    t = PAPER_TABLE2
    return (f"plain {t['plain18']:.2f}% → {t['plain34']:.2f}%, ResNet {t['resnet18']:.2f}% → {t['resnet34']:.2f}%")


def table3_text() -> str:
    """'25.03%, 24.52%, 24.19% top-1; 7.76%, 7.46%, 7.40% top-5' (ResNet-34 A/B/C, Table 3)."""
    nets = ("resnet34", "resnet34b", "resnet34c")
    return (", ".join(f"{PAPER_TABLE3[n][0]:.2f}%" for n in nets) + " top-1; "
            + ", ".join(f"{PAPER_TABLE3[n][1]:.2f}%" for n in nets) + " top-5")


def imagenet_schedule() -> str:
    """'600k iterations of 256 at 224 px' (the paper's ImageNet training)."""
    p = PAPER_IMAGENET
    return f"{p['iterations'] // 1000}k iterations of {p['batch']} at {p['crop']} px"


def imagenet_data() -> str:
    """"ImageNet's 1.28M training images of 1000 classes" (Sec. 4.1)."""
    p = PAPER_IMAGENET
    return f"ImageNet's {p['train_images'] / 1e6:.2f}M training images of {p['classes']} classes"
