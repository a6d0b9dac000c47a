"""Published weights (issue 21): every reported CIFAR net's final weights, committed beside its final.json.

`<run>/weights.safetensors` holds the model state of the final iterate (parameters and BN running statistics,
fp32, the keys of `models.ResNet.state_dict()`); final.json gets its sha256 and size. Anyone can then reload a
net and recompute a layer std, a lesion or a landscape without retraining:

    from resnet_repro import load_trained
    net = load_trained("resnet56", "quarter", seed=0)   # eval mode, the sha256 checked

The analyses (analyze, lesion, gradflow, landscape) read `checkpoints/final.ckpt` where it exists and these
files otherwise. Left out: ResNet-1202 (78 MB) and the ImageNet-style nets (ResNet-34 at 10 classes: 85 MB),
which stay out of git.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from .models import ResNet, build_model, parse_arch
from .paths import WEIGHTS, run_path, runs_root

MAX_BYTES = 16 * 2**20  # larger nets (ResNet-1202, the ImageNet-style ones) are not published in git


class WeightsError(ValueError):
    """A weights file that is missing or does not match the sha256 its final.json records."""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def publishable(arch: str) -> bool:
    """CIFAR nets small enough for git: every one of the paper's but ResNet-1202."""
    a = parse_arch(arch)
    return a.family == "cifar" and a.depth < 1202


def state_from_checkpoint(ckpt_path: Path) -> dict[str, torch.Tensor]:
    """The net's state (fp32 floats, contiguous) from a Lightning checkpoint of LitResNet."""
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    sd = {k[len("model."):].replace("_orig_mod.", ""): v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    return {k: (v.float() if v.is_floating_point() else v).contiguous() for k, v in sd.items()}


def export(run: Path, force: bool = False) -> Path | None:
    """Write <run>/weights.safetensors from checkpoints/final.ckpt and record its sha256 in final.json.

    Returns the file, or None for a net that is not published or a run without its final checkpoint."""
    from safetensors.torch import save_file

    run = Path(run)
    final = json.loads((run / "final.json").read_text())
    out, ckpt = run / WEIGHTS, run / "checkpoints" / "final.ckpt"
    if not publishable(final["arch"]) or not ckpt.is_file():
        return None
    if out.is_file() and final.get("weights_sha256") == sha256(out) and not force:
        return out
    sd = state_from_checkpoint(ckpt)
    build_model(final["arch"]).load_state_dict(sd)  # the keys and shapes are the net's, or this raises
    tmp = out.with_suffix(".tmp")
    save_file(sd, str(tmp), metadata={"arch": final["arch"], "preset": final["preset"], "seed": str(final["seed"]),
                                      "commit": str(final.get("commit")), "source": "checkpoints/final.ckpt"})
    tmp.replace(out)
    final.update(weights_file=WEIGHTS, weights_sha256=sha256(out), weights_bytes=out.stat().st_size)
    (run / "final.json").write_text(json.dumps(final, indent=2) + "\n")
    print(f"[weights] {out} ({out.stat().st_size / 2**20:.2f} MiB)", flush=True)
    return out


def load_state(run: Path) -> dict[str, torch.Tensor]:
    """The published state of a run, after checking its sha256 against final.json."""
    from safetensors.torch import load_file

    run = Path(run)
    path = run / WEIGHTS
    if not path.is_file():
        raise WeightsError(f"{run} has neither checkpoints/final.ckpt nor {WEIGHTS}")
    want = json.loads((run / "final.json").read_text()).get("weights_sha256")
    got = sha256(path)
    if want != got:
        raise WeightsError(f"{path}: sha256 {got[:16]}... does not match final.json's {str(want)[:16]}...; "
                           "the file is corrupt or not this run's")
    return load_file(str(path))


def final_state(run: Path) -> dict[str, torch.Tensor]:
    """The final weights of a run: from its checkpoint where it exists, else from the published file."""
    ckpt = Path(run) / "checkpoints" / "final.ckpt"
    return state_from_checkpoint(ckpt) if ckpt.is_file() else load_state(run)


def load_trained(arch: str, preset: str, seed: int = 0, results: str | Path = "results") -> ResNet:
    """A trained net of this repository, in eval mode: results/<preset>/runs/<arch>/seed<k>/weights.safetensors."""
    run = run_path(results, preset, arch, seed)
    if not (run / "final.json").is_file():
        raise WeightsError(f"no finished run {run}")
    net = build_model(arch)
    net.load_state_dict(load_state(run))
    return net.eval()


def export_preset(preset: str, results: str | Path = "results", force: bool = False) -> list[Path]:
    runs = sorted(p for p in runs_root(results, preset).glob("*/seed*") if (p / "final.json").is_file())
    return [w for w in (export(r, force) for r in runs) if w is not None]


def published_table(results: str | Path = "results") -> str:
    """Markdown table of every published net: arch, preset, seed, precision, test error, file size, sha256."""
    rows = ["| net | preset | seed | precision | test error | file | size |", "|---|---|---:|---|---:|---|---:|"]
    for f in sorted(Path(results).glob(f"*/runs/*/seed*/{WEIGHTS}")):
        final = json.loads((f.parent / "final.json").read_text())
        rows.append(f"| {final['arch']} | `{final['preset']}` | {final['seed']} | {final.get('precision')} | "
                    f"{100 * final['final_test_err']:.2f}% | `{f.as_posix()}` | {f.stat().st_size / 2**20:.2f} MiB |")
    return "\n".join(rows) if len(rows) > 2 else "_No weights published yet._"


README_MARKERS = ("<!-- weights:begin (make weights writes this table) -->", "<!-- weights:end -->")


def update_readme(readme: Path = Path("README.md"), results: str | Path = "results") -> None:
    text = readme.read_text()
    a, b = README_MARKERS
    if a not in text or b not in text:
        raise WeightsError(f"{readme} lacks the markers {a} ... {b}")
    head, rest = text.split(a, 1)
    tail = rest.split(b, 1)[1]
    readme.write_text(f"{head}{a}\n{published_table(results)}\n{b}{tail}")
