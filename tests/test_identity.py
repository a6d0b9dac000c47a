"""ECCV 2016 identity-mapping variants (models.VARIANTS) and their study (studies.identity): the block
forms, the grid that trains them, the verdict against the ECCV medians."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from resnet_repro import cli
from resnet_repro.studies import identity
from resnet_repro.models import (VARIANTS, BasicBlock, ShortcutA, block_form, build_model, count_params, parse_arch,
                                 registered_names, variant_names)

from conftest import randomize_bn


def test_variant_names_parse_and_the_registry_is_unchanged():
    assert all(parse_arch(n).variant == "original" for n in registered_names())
    names = variant_names(110)
    assert len(names) == len(VARIANTS) - 1 == 9
    for n in names:
        cfg = parse_arch(n)
        assert cfg.residual and cfg.depth == 110 and cfg.variant == n.split("-", 1)[1]
    assert parse_arch("resnet110-const0.25").variant == "const0.25"
    assert block_form("const0.25").scale == 0.25 and block_form("scdrop0.3").drop == 0.3


@pytest.mark.parametrize("bad", ["resnet20-foo", "plain20-preact", "resnet20-scdrop1.5", "resnet20-const0",
                                 "resnet20-"])
def test_bad_variants_are_rejected_listing_the_valid_ones(bad):
    with pytest.raises(ValueError) as e:
        parse_arch(bad)
    msg = str(e.value)
    assert all(v in msg for v in VARIANTS) and "resnet110" in msg and "plain20" in msg


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_variant_builds_runs_and_every_parameter_gets_a_gradient(variant):
    torch.manual_seed(0)
    name = "resnet8" if variant == "original" else f"resnet8-{variant}"
    model = build_model(name).train()
    out = model(torch.randn(4, 3, 32, 32))
    assert out.shape == (4, 10) and torch.isfinite(out).all()
    F.cross_entropy(out, torch.tensor([0, 1, 2, 3])).backward()
    for n, p in model.named_parameters():
        assert p.grad is not None, n
        assert torch.isfinite(p.grad).all(), n
        assert p.grad.abs().sum() > 0, n


def test_conv1x1_variant_is_option_c_and_gates_add_only_their_1x1_convs():
    assert count_params(build_model("resnet8-conv1x1")) == count_params(build_model("resnet8c"))
    assert all(isinstance(b.shortcut, nn.Sequential) for b in build_model("resnet8-conv1x1").modules()
               if isinstance(b, BasicBlock))
    base, gated = build_model("resnet8"), build_model("resnet8-exclgate")
    gates = [b.gate for b in gated.modules() if isinstance(b, BasicBlock)]
    assert count_params(gated) - count_params(base) == sum(count_params(g) for g in gates)
    assert all(g.kernel_size == (1, 1) and torch.all(g.bias == -6.0) for g in gates)
    # Option A stays on the dimension-changing blocks of every other variant.
    for v in ("preact", "exclgate", "const0.5", "bnafter"):
        assert all(isinstance(b.shortcut, ShortcutA) for b in build_model(f"resnet8-{v}").modules()
                   if isinstance(b, BasicBlock))


def test_full_preact_block_is_x_plus_f_without_relu_after_the_addition():
    model = randomize_bn(build_model("resnet14-preact")).eval()
    blk = model.stages[0][1]
    x = torch.randn(3, 16, 32, 32)
    with torch.no_grad():
        f = blk.conv2(F.relu(blk.conv1(blk.pre(x))))  # BN-ReLU-conv-BN-ReLU-conv
        y = blk(x)
    assert isinstance(blk.pre, nn.Sequential) and isinstance(blk.pre[0], nn.BatchNorm2d)
    assert len(blk.conv2) == 1 and isinstance(blk.conv2[0], nn.Conv2d)  # the branch ends with a conv
    assert torch.allclose(y, x + f, atol=1e-6)
    assert (y < 0).any()  # no ReLU after the addition
    # The block after the stem has no pre-activation of its own; the last addition is followed by BN+ReLU.
    assert model.stages[0][0].pre is None
    assert isinstance(model.head[0], nn.BatchNorm2d) and isinstance(model.head[1], nn.ReLU)
    # A dimension-changing block shares its pre-activation between both paths.
    down = model.stages[1][0]
    with torch.no_grad():
        h = down.pre(x)
        assert torch.allclose(down(x), down.shortcut(h) + down.conv2(F.relu(down.conv1(h))), atol=1e-6)


def branch(blk: BasicBlock, x: torch.Tensor) -> torch.Tensor:
    return blk.conv2(F.relu(blk.conv1(x)))


@pytest.mark.parametrize("variant,expected", [
    ("original", lambda f, x, blk: F.relu(f + x)),
    ("const0.5", lambda f, x, blk: F.relu(0.5 * f + 0.5 * x)),
    ("relubefore", lambda f, x, blk: x + F.relu(f)),
    ("bnafter", lambda f, x, blk: F.relu(blk.post_bn(f + x))),
    ("relupreact", lambda f, x, blk: x + f),  # f: the branch of ReLU(x); no ReLU after the addition
])
def test_block_forms_follow_the_eccv_figures(variant, expected):
    torch.manual_seed(0)
    model = randomize_bn(build_model(f"resnet14-{variant}")).eval()
    blk = model.stages[0][1]  # neither the first block nor a dimension-changing one
    # A block input: non-negative as after a ReLU, except for the pre-activation forms, whose stream is not.
    x = torch.rand(3, 16, 32, 32) - (0.5 if variant == "relupreact" else 0.0)
    with torch.no_grad():
        f = branch(blk, F.relu(x) if variant == "relupreact" else x)
        assert torch.allclose(blk(x), expected(f, x, blk), atol=1e-6)
        if variant == "relupreact":
            assert isinstance(blk.pre, nn.ReLU) and isinstance(model.head, nn.ReLU) and (blk(x) < 0).any()
        if variant == "original":
            assert model.head is None and blk.pre is None and blk.gate is None and blk.post_bn is None
    if variant == "bnafter":
        assert len(blk.conv2) == 1  # no BN inside the branch after the second conv


def test_gating_with_bias_minus_6_starts_close_to_the_shortcut():
    x = torch.rand(4, 16, 32, 32)
    torch.manual_seed(0)
    excl = randomize_bn(build_model("resnet14-exclgate")).eval().stages[0][1]
    torch.manual_seed(0)
    sc = randomize_bn(build_model("resnet14-scgate")).eval().stages[0][1]
    with torch.no_grad():
        g = torch.sigmoid(excl.gate(x))
        assert g.mean() < 0.02  # sigmoid(-6) = 0.0025, spread by W_g x
        f = branch(excl, x)
        # exclusive gating: (1-g) x + g F, close to the identity (the shortcut alone) at the start
        assert torch.allclose(excl(x), F.relu((1 - g) * x + g * f), atol=1e-6)
        assert (excl(x) - F.relu(x)).norm() / F.relu(x).norm() < 0.05
        # shortcut-only gating: (1-g) x + F, close to the original block x + F at the start
        g2, f2 = torch.sigmoid(sc.gate(x)), branch(sc, x)
        assert torch.allclose(sc(x), F.relu((1 - g2) * x + f2), atol=1e-6)
        orig = F.relu(f2 + x)
        assert (sc(x) - orig).norm() / orig.norm() < 0.05
        assert not torch.allclose(sc(x), orig)


def test_dropout_shortcut_only_while_training():
    torch.manual_seed(0)
    blk = randomize_bn(build_model("resnet14-scdrop0.5")).stages[0][1]
    x = torch.rand(2, 16, 32, 32)
    with torch.no_grad():
        blk.eval()
        assert torch.allclose(blk(x), F.relu(branch(blk, x) + x), atol=1e-6)
        blk.train()
        for m in blk.modules():  # BN in inference mode, so only the dropout differs between the two modes
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        torch.manual_seed(1)
        y = blk(x)
        torch.manual_seed(1)
        assert torch.allclose(y, F.relu(branch(blk, x) + F.dropout(x, 0.5, True)), atol=1e-6)
        assert not torch.allclose(y, F.relu(branch(blk, x) + x))


def test_variants_verdict_compares_with_the_eccv_medians():
    finals = [dict(arch="resnet110", final_test_err=0.07), dict(arch="resnet110-preact", final_test_err=0.065),
              dict(arch="resnet110-const0.5", final_test_err=0.06)]
    text = identity.variants_verdict(dict(identity_variants=identity.variants_table(finals)))
    assert "full pre-activation:** median 6.50%" in text and "-0.50 points" in text
    assert "1 of 2 variants" in text  # preact agrees (better), constant scaling does not (paper: worse)


def test_identity_grid_trains_the_eccv_variants_original_first(monkeypatch):
    from resnet_repro import experiments
    from resnet_repro.paper import PAPER_ECCV_MEDIANS
    from resnet_repro import train as T

    runs = experiments.grid_runs("paper", "identity")
    assert len(runs) == 50 and runs[0] == ("resnet110", 0) and {s for _, s in runs} == {0, 1, 2, 3, 4}
    assert {a for a, _ in runs} == set(experiments.IDENTITY_VARIANTS) == set(PAPER_ECCV_MEDIANS)
    assert all(parse_arch(a).depth == 110 for a, _ in runs)
    trained = []
    monkeypatch.setattr(T, "load_data", lambda cfg: None)
    monkeypatch.setattr(T, "train", lambda cfg, arrays=None: trained.append((cfg.arch, cfg.seed, cfg.preset)))
    argv = ["grid", "--experiment", "identity", "--preset", "short", "--only", "resnet110-preact,resnet110-scgate"]
    assert cli.main(argv) == 0
    assert trained == [("resnet110-scgate", 0, "short"), ("resnet110-preact", 0, "short")]


def test_identity_grid_without_that_preset_exits_2(capsys):
    assert cli.main(["grid", "--experiment", "identity", "--preset", "smoke"]) == 2
    assert "no identity grid for preset 'smoke'" in capsys.readouterr().err
