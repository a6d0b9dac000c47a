"""Issue 21: published weights reload bit for bit, refuse a file that does not match, and serve the analyses."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from resnet_repro import cli, load_trained
from resnet_repro import weights as W
from resnet_repro.paths import has_final_weights
from resnet_repro.runfolder import load_final_model


@pytest.fixture(scope="module")
def run(full_cifar_dir, tmp_path_factory, session_cache):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RESNET_REPRO_CACHE", str(session_cache))
        out = tmp_path_factory.mktemp("w")
        assert cli.main(["train", "--arch", "resnet20", "--preset", "smoke", "--data-dir", str(full_cifar_dir), "--out",
                         str(out), "--max-steps", "4", "--eval-every", "2", "--milestones", "2,3",
                         "--accelerator", "cpu", "--batch-size", "32", "--test-subset", "200"]) == 0
    return out, out / "smoke" / "runs" / "resnet20" / "seed0"


def test_published_weights_give_the_same_outputs_bit_for_bit(run):
    out, rd = run
    assert W.export(rd) == rd / W.WEIGHTS
    final = json.loads((rd / "final.json").read_text())
    assert final["weights_sha256"] == W.sha256(rd / W.WEIGHTS) and final["weights_bytes"] > 1_000_000
    from_ckpt = load_final_model(rd, torch.device("cpu")).eval()
    net = load_trained("resnet20", "smoke", 0, results=out)
    assert not net.training
    x = torch.randn(16, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():  # the same layout as load_final_model's on a CPU, so the same kernels run
        assert torch.equal(net.to(memory_format=torch.channels_last)(x), from_ckpt(x))
    sd = net.state_dict()  # BN running statistics included
    assert any(k.endswith("running_var") for k in W.load_state(rd)) and set(W.load_state(rd)) == set(sd)


def test_without_a_checkpoint_the_analyses_read_the_published_file(run, tmp_path):
    out, rd = run
    W.export(rd)
    copy = tmp_path / "smoke" / "runs" / "resnet20" / "seed0"
    shutil.copytree(rd, copy, ignore=shutil.ignore_patterns("checkpoints"))
    assert has_final_weights(copy) and not (copy / "checkpoints").exists()
    a, b = load_final_model(copy, torch.device("cpu")), load_final_model(rd, torch.device("cpu"))
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())


def test_a_file_whose_sha256_does_not_match_is_refused_in_one_line(run, tmp_path, capsys):
    out, rd = run
    W.export(rd)
    copy = tmp_path / "smoke" / "runs" / "resnet20" / "seed0"
    shutil.copytree(rd, copy, ignore=shutil.ignore_patterns("checkpoints"))
    data = bytearray((copy / W.WEIGHTS).read_bytes())
    data[-1] ^= 0xFF
    (copy / W.WEIGHTS).write_bytes(bytes(data))
    with pytest.raises(W.WeightsError, match="does not match"):
        load_trained("resnet20", "smoke", 0, results=tmp_path)


def test_the_big_nets_are_not_published():
    assert W.publishable("resnet110") and W.publishable("plain56")
    assert not W.publishable("resnet1202") and not W.publishable("resnet34")


def test_the_readme_table_is_generated_between_its_markers(run, tmp_path):
    out, rd = run
    W.export(rd)
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{W.README_MARKERS[0]}\nold\n{W.README_MARKERS[1]}\nrest\n")
    W.update_readme(readme, out)
    text = readme.read_text()
    assert "old" not in text and "| resnet20 | `smoke` | 0 |" in text and text.endswith("rest\n")
