"""Facts about the machine a benchmark runs on: its name, and the peak it is measured against (a datasheet number
on CUDA, an estimate from cores x clock x FLOPs per cycle on a CPU); and the FLOPs of a net's forward pass.
"""

from __future__ import annotations

import math
import os
import platform
import re
import subprocess
from pathlib import Path

import torch
import torch.nn as nn

from .models import build_model

# Dense (no 2:4 sparsity) TF32 tensor-core peaks from NVIDIA's datasheets, in TFLOP/s, and the FP32
# (non-tensor) peak for the basis string. Matched in order against the upper-cased device name.
GPU_PEAKS = [
    (("H100", "PCIE"), 378.0, 51.0, "H100 PCIe"),
    (("H100", "NVL"), 417.5, 60.0, "H100 NVL"),
    (("H100",), 494.7, 67.0, "H100 SXM"),
    (("H200", "NVL"), 417.5, 60.0, "H200 NVL"),
    (("H200",), 494.7, 67.0, "H200 SXM"),
    (("A100",), 156.0, 19.5, "A100"),
]


# ----------------------------------------------------------------------------- device facts


def _cpuinfo() -> dict[str, str]:
    """The first processor's block of /proc/cpuinfo ({} where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    out: dict[str, str] = {}
    for line in text.split("\n\n")[0].splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            out.setdefault(k.strip(), v.strip())
    return out


def _lscpu() -> dict[str, str]:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10,
                              env={**os.environ, "LC_ALL": "C"}).stdout
    except Exception:
        return {}
    return {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in text.splitlines() if ":" in line)}


NO_NATIVE_BF16 = "no native bf16"  # how a CPU device without it is named (device_name, runfolder.session_devices)


def native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (x86 AVX512_BF16 or AMX-BF16, Arm BF16). Without it, CPU autocast
    emulates bf16: ResNet-20 trained 12x fewer images/s than in fp32 on a 2-core AVX2 AMD EPYC
    (results/bench/cpu-x86_64-2cores-no-native-bf16-layouts.csv)."""
    flags = set((_cpuinfo().get("flags") or _cpuinfo().get("Features") or _lscpu().get("Flags", "")).split())
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def cpu_model() -> str:
    return _cpuinfo().get("model name") or _lscpu().get("Model name") or platform.processor() or "unknown"


def cpu_peak() -> tuple[float, str]:
    """(TFLOP/s, basis): an fp32 estimate of cores x max clock x FLOPs per cycle per core."""
    info, ls = _cpuinfo(), _lscpu()
    try:
        cores = int(ls["Core(s) per socket"]) * int(ls["Socket(s)"])
        cores_from = "physical cores (lscpu)"
    except (KeyError, ValueError):
        cores, cores_from = os.cpu_count() or 1, "os.cpu_count()"
    mhz, mhz_from = None, ""
    try:
        mhz, mhz_from = float(ls["CPU max MHz"]), "max MHz (lscpu)"
    except (KeyError, ValueError):
        try:
            mhz, mhz_from = float(info["cpu MHz"]), "cpu MHz (/proc/cpuinfo; no max MHz exposed)"
        except (KeyError, ValueError):
            pass
    flags = set((info.get("flags") or info.get("Features") or ls.get("Flags", "")).split())
    if "avx512f" in flags:
        fpc, isa = 64, "AVX-512 (2x512-bit FMA)"
    elif {"avx2", "fma"} <= flags:
        fpc, isa = 32, "AVX2+FMA (2x256-bit FMA)"
    elif "avx" in flags:
        fpc, isa = 16, "AVX"
    elif "asimd" in flags:
        fpc, isa = 16, "NEON (2x128-bit FMA)"
    else:
        fpc, isa = 8, "SSE"
    if mhz is None:
        return math.nan, f"estimate impossible: no CPU clock found ({cores} cores, {isa})"
    peak = cores * mhz * 1e6 * fpc / 1e12
    return peak, (f"estimate: {cores} {cores_from} x {mhz:.0f} {mhz_from} x {fpc} fp32 FLOP/cycle "
                  f"({isa}); not measured")


def gpu_peak(name: str) -> tuple[float, str]:
    up = name.upper()
    for keys, tf32, fp32, label in GPU_PEAKS:
        if all(k in up for k in keys):
            return tf32, (f"{label} datasheet: {tf32:g} TFLOP/s dense TF32 tensor-core ({2 * tf32:g} with 2:4 "
                          f"sparsity), {fp32:g} FP32 non-tensor; fp32 training runs convs/matmuls in TF32")
    return math.nan, f"unknown GPU {name!r}: add its peak to resnet_repro.hardware.GPU_PEAKS"


def device_name(dev: torch.device) -> str:
    """What run folders and measurements record as their device: the GPU's name, or the CPU's model, architecture
    and core count, and "no native bf16" where it lacks that (two CPU sessions on different models train at
    different speeds; a 2-core AMD EPYC with AVX-512 and one with AVX2 only share their model name)."""
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    kind = "" if native_bf16() else f", {NO_NATIVE_BF16}"  # one CPU model name covers hosts with and without it
    return f"cpu ({cpu_model()}, {platform.machine()}, {os.cpu_count() or 1} cores{kind})"


def device_info(dev: torch.device) -> tuple[str, str, float, str]:
    """(readable name, file slug, peak TFLOP/s, peak basis) of the device the bench runs on."""
    name = device_name(dev)
    if dev.type == "cuda":
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        return (name, slug, *gpu_peak(name))
    n = os.cpu_count() or 1
    # The 2-core hosts this project meets differ most in bf16 (native on AVX-512 BF16/AMX, emulated on AVX2): their
    # measurements go to separate files.
    kind = "" if native_bf16() else "-no-native-bf16"
    slug = re.sub(r"[^a-z0-9_]+", "-", f"cpu-{platform.machine()}-{n}cores{kind}".lower()).strip("-")
    return (name, slug, *cpu_peak())


# ----------------------------------------------------------------------------- FLOPs


def forward_flops(arch: str, image_shape: tuple[int, int, int] = (3, 32, 32), num_classes: int | None = None) -> int:
    """Forward FLOPs (2 x multiply-adds) of every Conv2d and Linear of the net for one image."""
    model = build_model(arch, num_classes=num_classes).eval()
    total = 0

    def conv(m: nn.Conv2d, inp, out):
        nonlocal total
        total += 2 * out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    def linear(m: nn.Linear, inp, out):
        nonlocal total
        total += 2 * out.numel() * m.in_features

    hooks = [m.register_forward_hook(conv if isinstance(m, nn.Conv2d) else linear)
             for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(torch.zeros(1, *image_shape))
    for h in hooks:
        h.remove()
    return total
