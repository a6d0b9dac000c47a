"""The nets of He et al. 2016: shapes, gradients, Table 6 parameter counts, the shortcut options."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from conftest import param_count
from resnet_repro import models
from resnet_repro.models import BasicBlock, ShortcutA, build_model, count_params, parse_arch, registered_names

ALL = registered_names()


def input_size(name: str) -> int:
    # ImageNet-style nets end in global pooling, so 64x64 exercises them as well as 224x224 would.
    return 64 if parse_arch(name).family == "imagenet" else 32


def test_registry_holds_the_paper_nets():
    for d in (20, 32, 44, 56, 110, 1202):
        assert f"resnet{d}" in ALL and f"plain{d}" in ALL
    for d in (18, 34):
        assert {f"plain{d}", f"resnet{d}", f"resnet{d}b", f"resnet{d}c"} <= set(ALL)
    assert len(ALL) == len(set(ALL))


@pytest.mark.parametrize("name", ALL)
def test_forward_backward(name):
    torch.manual_seed(0)
    cfg = parse_arch(name)
    model = build_model(name).train()
    s = input_size(name)
    x = torch.randn(2, 3, s, s)
    out = model(x)
    assert out.shape == (2, cfg.num_classes)
    assert cfg.num_classes == (10 if cfg.family == "cifar" else 1000)
    assert torch.isfinite(out).all()
    F.cross_entropy(out, torch.tensor([0, 1])).backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert len(grads) > 0
    missing = [n for n, g in grads.items() if g is None]
    assert not missing, f"parameters without a gradient: {missing[:5]}"
    if name == "plain1202":
        # A 1202-layer *plain* BN net's gradient grows geometrically towards the input (inherent to
        # deep BN+ReLU stacks, Yang et al. 2019) and overflows float32 in the first stages: the kind
        # of optimisation difficulty the paper is about, not a defect of the code. So every parameter
        # must get a gradient, but only the output end (fc + last blocks) must be finite and nonzero.
        grads = {n: g for n, g in grads.items() if n.startswith(("fc.", "stages.2.19"))}
        assert len(grads) > 10
    bad = [n for n, g in grads.items() if not torch.isfinite(g).all()]
    assert not bad, f"non-finite gradients: {bad[:5]}"
    zero = [n for n, g in grads.items() if g.abs().sum() == 0]
    assert not zero, f"all-zero gradients: {zero[:5]}"


def test_depth_is_the_paper_count():
    for name in ALL:
        digits = int("".join(c for c in name if c.isdigit()))
        assert parse_arch(name).depth == digits, name


# ----------------------------------------------------------------------------- parameter counts


TABLE6 = {20: (0.27, 2), 32: (0.46, 2), 44: (0.66, 2), 56: (0.85, 2), 110: (1.7, 1), 1202: (19.4, 1)}


@pytest.mark.parametrize("depth", sorted(TABLE6))
def test_table6_param_counts(depth):
    millions, digits = TABLE6[depth]
    assert round(param_count(f"resnet{depth}") / 1e6, digits) == millions


@pytest.mark.parametrize("depth", [20, 32, 44, 56, 110, 1202, 18, 34])
def test_plain_has_exactly_the_params_of_its_option_a_twin(depth):
    assert param_count(f"plain{depth}") == param_count(f"resnet{depth}")


def test_resnet20_exact_count():
    assert param_count("resnet20") == 269_722


@pytest.mark.parametrize("depth,expected", [(18, 11_689_512), (34, 21_797_672)])
def test_option_b_matches_torchvision(depth, expected):
    import torchvision

    tv = getattr(torchvision.models, f"resnet{depth}")(weights=None)
    assert param_count(f"resnet{depth}b") == expected
    assert count_params(tv) == expected


def test_option_c_has_more_params_than_b_than_a():
    for d in (18, 34):
        assert param_count(f"resnet{d}") < param_count(f"resnet{d}b") < param_count(f"resnet{d}c")


# ----------------------------------------------------------------------------- option A


def test_shortcut_a_has_no_parameters():
    assert count_params(ShortcutA(16, 32, 2)) == 0
    assert count_params(ShortcutA(16, 16, 1)) == 0
    assert len(list(ShortcutA(16, 32, 2).buffers())) == 0


def test_shortcut_a_identity_where_shapes_match():
    x = torch.randn(3, 16, 8, 8)
    assert torch.equal(ShortcutA(16, 16, 1)(x), x)


@pytest.mark.parametrize("in_ch,out_ch", [(16, 32), (32, 64), (64, 128)])
def test_shortcut_a_subsamples_and_zero_pads(in_ch, out_ch):
    x = torch.randn(2, in_ch, 16, 16) + 5.0  # nonzero everywhere, so padding zeros are unambiguous
    y = ShortcutA(in_ch, out_ch, 2)(x)
    assert y.shape == (2, out_ch, 8, 8)
    assert torch.equal(y[:, :in_ch], x[:, :, ::2, ::2])
    assert torch.equal(y[:, in_ch:], torch.zeros(2, out_ch - in_ch, 8, 8))


def test_cifar_option_a_nets_use_only_parameter_free_shortcuts():
    model = build_model("resnet20")
    blocks = [m for m in model.modules() if isinstance(m, BasicBlock)]
    assert len(blocks) == 9
    assert all(isinstance(b.shortcut, ShortcutA) for b in blocks)
    assert sum(isinstance(b.shortcut, ShortcutA) and b.shortcut.pad > 0 for b in blocks) == 2
    assert n_1x1_convs(model) == 0


def test_plain_blocks_have_no_shortcut():
    model = build_model("plain20")
    blocks = [m for m in model.modules() if isinstance(m, BasicBlock)]
    assert len(blocks) == 9 and all(b.shortcut is None for b in blocks)


# ----------------------------------------------------------------------------- plain vs residual


def test_plain_and_residual_share_weights_and_differ_in_output():
    torch.manual_seed(0)
    res = build_model("resnet20")
    torch.manual_seed(0)
    plain = build_model("plain20")
    sd_r, sd_p = res.state_dict(), plain.state_dict()
    assert list(sd_r) == list(sd_p)
    # Same seed, same init: the plain net is the residual net minus the additions, nothing else.
    assert all(torch.equal(sd_r[k], sd_p[k]) for k in sd_r)
    torch.manual_seed(1)
    other = build_model("resnet20")
    other.load_state_dict(plain.state_dict(), strict=True)
    plain.load_state_dict(other.state_dict(), strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(other.eval()(x), plain.eval()(x))


@pytest.mark.parametrize("stage,block", [(0, 1), (1, 0), (2, 0), (2, 2)])  # plain and shape-changing blocks
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_block_is_relu_of_residual_plus_shortcut(stage, block, mode):
    torch.manual_seed(0)
    res = build_model("resnet20")
    plain = build_model("plain20")
    plain.load_state_dict(res.state_dict(), strict=True)
    rb, pb = res.stages[stage][block], plain.stages[stage][block]
    for m in (rb, pb):
        m.train(mode == "train")
    in_ch = rb.conv1[0].in_channels
    size = 32 // (2 ** max(stage - (1 if block == 0 else 0), 0))
    x = torch.randn(4, in_ch, size, size)
    with torch.no_grad():
        pre = rb.conv2(F.relu(rb.conv1(x)))
        assert torch.allclose(rb(x), F.relu(pre + rb.shortcut(x)), atol=1e-6)
        assert torch.allclose(pb(x), F.relu(pb.conv2(F.relu(pb.conv1(x)))), atol=1e-6)
        assert torch.allclose(pb(x), F.relu(pre), atol=1e-6)  # the same weights, without the addition
        assert not torch.allclose(rb(x), pb(x))


# ----------------------------------------------------------------------------- options B and C


def n_1x1_convs(model: nn.Module) -> int:
    return sum(isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) for m in model.modules())


@pytest.mark.parametrize("name,n_blocks", [("resnet18", 8), ("resnet34", 16)])
def test_option_b_projects_only_where_shapes_change_and_c_everywhere(name, n_blocks):
    a, b, c = build_model(name), build_model(name + "b"), build_model(name + "c")
    assert n_1x1_convs(a) == 0
    assert n_1x1_convs(b) == 3  # the first block of stages 2, 3, 4
    assert n_1x1_convs(c) == n_blocks
    for block in (m for m in b.modules() if isinstance(m, BasicBlock)):
        conv1 = block.conv1[0]
        reshape = conv1.stride != (1, 1) or conv1.in_channels != conv1.out_channels
        if reshape:
            assert isinstance(block.shortcut, nn.Sequential)
            proj = block.shortcut[0]
            assert proj.kernel_size == (1, 1) and proj.stride == conv1.stride
        else:
            assert isinstance(block.shortcut, ShortcutA) and block.shortcut.pad == 0 and block.shortcut.stride == 1


def test_option_b_and_c_on_a_cifar_net():
    assert n_1x1_convs(build_model("resnet20b")) == 2
    assert n_1x1_convs(build_model("resnet20c")) == 9


# ----------------------------------------------------------------------------- parse_arch


@pytest.mark.parametrize("bad", ["vgg16", "resnet21", "plain20b", "resnet", "resnet2", "resnet20d", "plain34c"])
def test_parse_arch_rejects_unknown_names_listing_valid_ones(bad):
    with pytest.raises(ValueError) as e:
        parse_arch(bad)
    msg = str(e.value)
    for name in ALL:
        assert name in msg, f"{bad!r}: message does not list {name}: {msg}"


def test_parse_arch_accepts_any_6n_plus_2_depth():
    cfg = parse_arch("resnet38")
    assert cfg.family == "cifar" and cfg.blocks == (6, 6, 6) and cfg.depth == 38
    cfg = parse_arch("plain56")
    assert not cfg.residual and cfg.shortcut == "A"
    assert parse_arch("resnet34b").shortcut == "B" and parse_arch("ResNet18C").shortcut == "C"


def test_bn_groups_normalise_each_slice():
    bn = models.GroupBatchNorm2d(4, groups=2).train()
    x = torch.cat([torch.randn(3, 4, 5, 5), torch.randn(3, 4, 5, 5) * 10 + 7])
    y = bn(x)
    for half in y.chunk(2):
        assert torch.allclose(half.mean((0, 2, 3)), torch.zeros(4), atol=1e-5)


@pytest.mark.parametrize("ours,theirs", [("resnet18b", "resnet18"), ("resnet34b", "resnet34")])
def test_outputs_equal_torchvisions_after_copying_the_weights(ours, theirs):
    """Issue 20: not only the parameter counts: the same weights give the same outputs, exactly."""
    import torchvision

    a, b = build_model(ours, num_classes=1000).eval(), getattr(torchvision.models, theirs)().eval()
    sa, sb = a.state_dict(), b.state_dict()
    assert len(sa) == len(sb) and all(sa[x].shape == sb[y].shape for x, y in zip(sa, sb))
    a.load_state_dict({x: sb[y] for x, y in zip(sa, sb)})  # the same modules in the same order
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(a(x), b(x))


def test_weight_decay_reaches_every_parameter_bn_included():
    """Issue 20: as in Caffe and fb.resnet.torch, weight decay 1e-4 applies to BN's scale and shift too."""
    from resnet_repro.config import make_config
    from resnet_repro.train import LitResNet

    m = LitResNet(make_config("smoke").to_dict())
    opt = m.configure_optimizers()["optimizer"]
    decayed = {id(p) for g in opt.param_groups if g["weight_decay"] == pytest.approx(1e-4) for p in g["params"]}
    bn = [p for mod in m.model.modules() if isinstance(mod, torch.nn.BatchNorm2d) for p in mod.parameters()]
    assert bn and all(id(p) in decayed for p in bn)
    assert decayed == {id(p) for p in m.model.parameters()}


def test_bn_groups_keep_the_first_slices_running_statistics_as_a_ddp_run_keeps_rank_0s():
    """Issue 20: DDP broadcasts rank 0's BN buffers; with groups=2 the running statistics follow the first slice,
    updated once per step."""
    torch.manual_seed(0)
    grouped, alone = models.GroupBatchNorm2d(4, groups=2).train(), nn.BatchNorm2d(4).train()
    for _ in range(3):
        x = torch.cat([torch.randn(3, 4, 5, 5), torch.randn(3, 4, 5, 5) * 10 + 7])
        grouped(x)
        alone(x[:3])
    assert torch.allclose(grouped.running_mean, alone.running_mean)
    assert torch.allclose(grouped.running_var, alone.running_var)
    assert grouped.num_batches_tracked.item() == 3
