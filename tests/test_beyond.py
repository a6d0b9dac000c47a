"""Issue 8, beyond the paper: the ECCV 2016 block variants, gradient flow, block lesions, loss landscapes, and
their figures and report section (resnet_repro.studies)."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from resnet_repro import cli, hooks, notebooks, runfolder, studies
from resnet_repro.collect import collect, load_collected
from resnet_repro.figures import make_figures
from resnet_repro.report import build_report
from resnet_repro.studies import common, gradflow, identity, landscapes, lesions
from resnet_repro import data as D
from resnet_repro.models import (VARIANTS, BasicBlock, ShortcutA, block_form, build_model, count_params, parse_arch,
                                 registered_names, variant_names)


@pytest.fixture
def arrays() -> D.CifarArrays:
    rng = np.random.default_rng(0)
    tx = rng.integers(0, 256, (256, 32, 32, 3), dtype=np.uint8)
    vx = rng.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
    return D.CifarArrays(tx, np.arange(256) % 10, vx, np.arange(40) % 10, "imagefolder-jpeg (lossy)", "synthetic")


def randomize_bn(model: nn.Module) -> nn.Module:
    """Non-trivial BN statistics and affine parameters, as a trained net has."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.3, 0.3)
    return model


# ----------------------------------------------------------------------------- the variants


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


# ----------------------------------------------------------------------------- gradient flow


@pytest.mark.parametrize("arch,n_blocks,n_weights", [("resnet8", 3, 8), ("plain14", 6, 14), ("resnet8b", 3, 10),
                                                     ("resnet8-exclgate", 3, 11)])
def test_gradient_flow_gives_one_norm_per_block_and_weight_layer(arch, n_blocks, n_weights):
    torch.manual_seed(0)
    model = build_model(arch)
    batches = [(torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])) for _ in range(2)]
    df = hooks.gradient_flow(model, batches)
    b, w = df[df.kind == "block_input"], df[df.kind == "weight"]
    assert list(b["index"]) == list(range(1, n_blocks + 1)) and list(b.layer) == [2 * k for k in b["index"]]
    assert len(w) == n_weights
    main = w[w.role.isin(["stem", "conv1", "conv2", "fc"])]
    assert list(main["index"]) == list(range(1, parse_arch(arch).depth + 1))
    for col in ("grad_norm", "grad_rms", "grad_norm_std"):
        assert np.isfinite(df[col]).all() and (df[col] > 0).all(), col
    assert (w.weight_norm > 0).all() and set(df.n_batches) == {2}
    assert all(p.grad is None for p in model.parameters())  # leaves the model clean


def test_block_input_gradient_is_the_autograd_gradient():
    torch.manual_seed(0)
    model = build_model("resnet8").train()
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    df = hooks.gradient_flow(model, [(x, y)])
    inputs = []
    handles = [blk.register_forward_pre_hook(lambda m, a: inputs.append(a[0])) for *_, blk in hooks.blocks(model)]
    loss = F.cross_entropy(model(x), y)
    for h in handles:
        h.remove()
    grads = torch.autograd.grad(loss, inputs + [model.fc.weight])
    got = df[df.kind == "block_input"].grad_norm.to_numpy()
    assert np.allclose(got, [float(g.double().norm()) for g in grads[:-1]], rtol=1e-5)
    assert df[df.role == "fc"].grad_norm.item() == pytest.approx(float(grads[-1].double().norm()), rel=1e-5)


def test_gradflow_init_writes_the_table_and_its_provenance(arrays, tmp_path):
    df = gradflow.gradflow_init("smoke", ["plain8", "resnet8"], seed=0, n_batches=2, dest=tmp_path, arrays=arrays)
    saved = pd.read_csv(tmp_path / "gradflow_init.csv")
    assert list(saved.columns) == hooks.GRADFLOW_COLUMNS and len(saved) == len(df) == 2 * (3 + 8)
    assert set(saved.point) == {"init"} and set(saved.batch_size) == {128} and set(saved.n_batches) == {2}
    meta = json.loads((tmp_path / "gradflow_init.json").read_text())
    for k in ("commit", "device", "data_source", "torch", "seed", "n_batches", "archs"):
        assert k in meta, k
    assert meta["data_source"] == "imagefolder-jpeg (lossy)"


def test_training_callback_records_the_same_norms_as_offline_on_the_first_batch(arrays, tmp_path):
    from resnet_repro import train
    from resnet_repro.config import make_config

    cfg = make_config("smoke", arch="resnet8", max_steps=4, eval_every=2, milestones=(2, 3), batch_size=16,
                      gradflow_every=2, out=str(tmp_path), accelerator="cpu", channels_last=False)
    train.train(cfg, arrays=arrays, progress=False)
    rec = pd.read_csv(runfolder.run_dir(cfg) / "gradflow.csv")
    assert sorted(set(rec.iteration)) == [0, 2] and set(rec.point) == {"train"}
    stream, *_ = common.cifar_setup(cfg, arrays, torch.device("cpu"))
    torch.manual_seed(cfg.seed)
    offline = hooks.gradient_flow(build_model("resnet8"), common.first_batches(stream, 1, cfg.seed))
    first = rec[rec.iteration == 0]
    assert np.allclose(first.grad_norm.to_numpy(), offline.grad_norm.to_numpy(), rtol=1e-4)


# ----------------------------------------------------------------------------- lesions


def test_a_lesioned_block_returns_exactly_its_shortcut_and_restoring_gives_the_original_output():
    torch.manual_seed(0)
    model = randomize_bn(build_model("resnet8")).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        before = model(x)
        blk = model.stages[1][0]  # a dimension-changing block: option A's subsample + zero-pad
        h = torch.rand(2, 16, 32, 32)
        with hooks.lesioned(model, 2):
            assert torch.equal(blk(h), blk.shortcut(h))
            assert not torch.allclose(model(x), before)
        assert not blk.lesioned and torch.equal(model(x), before)
    plain = build_model("plain14").eval()
    with pytest.raises(ValueError):
        with hooks.lesioned(plain, 3):  # stage 2's first block changes the shape
            pass
    with hooks.lesioned(plain, 2), torch.no_grad():
        assert torch.equal(plain.stages[0][1](h), h)  # a plain layer pair removed: the identity


def test_lesion_table_has_a_row_per_block_and_the_intact_error():
    torch.manual_seed(0)
    batches = [(torch.randn(8, 3, 32, 32), torch.arange(8) % 10)]
    for arch, n_removed in (("resnet14", 6), ("plain14", 4)):
        model = randomize_bn(build_model(arch))
        t = lesions.lesion_table(model, batches)
        assert list(t.block) == list(range(7)) and int(t.removed.sum()) == n_removed
        loss, err, n = lesions.evaluate(model, batches)
        assert t.test_err[0] == err and t.delta_err[0] == 0 and set(t.n_test) == {8}
        assert t[t.removed].test_err.notna().all() and t[~t.removed & (t.block > 0)].test_err.isna().all()


# ----------------------------------------------------------------------------- loss landscape


def test_direction_has_the_weights_filter_norms_and_zeros_on_bn_and_biases():
    torch.manual_seed(0)
    model = randomize_bn(build_model("resnet8-exclgate"))
    d = hooks.filter_normalized_direction(model, torch.Generator().manual_seed(3))
    again = hooks.filter_normalized_direction(model, torch.Generator().manual_seed(3))
    n_filters = 0
    for (name, p), u, v in zip(model.named_parameters(), d, again):
        assert u.shape == p.shape and torch.equal(u, v)
        if p.dim() <= 1:
            assert torch.all(u == 0), name
        else:
            assert torch.allclose(u.flatten(1).norm(dim=1), p.detach().flatten(1).norm(dim=1), rtol=1e-5), name
            assert not torch.allclose(u, p.detach())
            n_filters += 1
    assert n_filters == 11  # stem, 6 convs, 3 gates, fc


def test_the_centre_of_a_3x3_grid_is_the_unperturbed_loss_and_the_weights_come_back():
    torch.manual_seed(0)
    model = randomize_bn(build_model("resnet8"))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    batches = [(torch.randn(6, 3, 32, 32), torch.arange(6))]
    loss, err, _ = lesions.evaluate(model, batches)
    one, two, info = landscapes.landscape(model, batches, grid=3)
    assert len(one) == 3 and len(two) == 9 and abs(info["cos_d1_d2"]) < 0.2
    centre = two[(two.alpha == 0) & (two.beta == 0)]
    assert centre.loss.item() == pytest.approx(loss, rel=1e-6) and centre.err.item() == err
    assert one[one.alpha == 0].loss.item() == pytest.approx(loss, rel=1e-6)
    assert (two.loss != loss).sum() == 8
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


# ----------------------------------------------------------------------------- tables, figures, report, notebook


def synthetic_results(root, arrays):
    """results/short/ with gradflow_init, lesion, landscape and identity-variant files from tiny real nets."""
    d = root / "short"
    gradflow.gradflow_init("smoke", ["plain20", "resnet20"], n_batches=1, dest=d, arrays=arrays)
    batches = [(torch.randn(8, 3, 32, 32), torch.arange(8) % 10)]
    frames, one, two = [], [], []
    for arch in ("resnet14", "plain14"):
        torch.manual_seed(0)
        model = randomize_bn(build_model(arch))
        t = lesions.lesion_table(model, batches)
        t["arch"], t["seed"] = arch, 0
        frames.append(t)
        a, b, _ = landscapes.landscape(model, batches, grid=5)
        a["arch"] = b["arch"] = arch
        a["seed"] = b["seed"] = 0
        one.append(a)
        two.append(b)
    pd.concat(frames).to_csv(d / "lesion.csv", index=False)
    pd.concat(one).to_csv(d / "landscape_1d.csv", index=False)
    pd.concat(two).to_csv(d / "landscape_2d.csv", index=False)
    finals = [dict(arch=a, final_test_err=e, final_train_err=e / 2) for a, e in
              (("resnet110", 0.07), ("resnet110", 0.069), ("resnet110-preact", 0.065), ("resnet110-const0.5", 0.13))]
    identity.variants_table(finals).to_csv(d / "identity_variants.csv", index=False)


FIGURE_NAMES = {k: v for st in studies.STUDIES for k, v in st.FIGURES.items()}


def test_figures_report_and_notebook_cells_from_the_tables(arrays, tmp_path):
    results, figures, report = tmp_path / "results", tmp_path / "figures", tmp_path / "report"
    synthetic_results(results, arrays)
    b = load_collected("short", results)
    assert len(b["identity_variants"]) == 3 and b["init_meta"]["archs"] == ["plain20", "resnet20"]
    paths = make_figures("short", results, figures, page="beyond")
    names = {p.name for p in paths}
    for key in ("gradflow_init", "lesion", "landscape_1d", "landscape_contour", "landscape_surface",
                "identity_variants"):
        assert f"{FIGURE_NAMES[key]}.png" in names and f"{FIGURE_NAMES[key]}.pdf" in names, key
    assert "beyond_gradflow_final.png" not in names  # no data, no figure
    assert "table6.md" not in names  # page="beyond" draws that page's studies only
    assert build_report("short", results, figures, report)[-1] == report / "short" / "beyond.md"
    md = (report / "short" / "beyond.md").read_text()
    assert "20 layers, at initialisation" in md and "plain-20" in md
    assert "at the final weights:** not run yet" in md
    assert "**resnet14** (seed 0): test error" in md and "**plain14** (seed 0)" in md
    assert "resnet14 seed 0: no lesion.json" in md  # synthetic tables without run folders
    assert "full pre-activation" in md and "paper 6.37%" in md
    assert "2-D:" in md and "beyond_lesion.png" in md
    assert "landscape.json files are missing" in md  # synthetic tables without run folders
    assert (report / "short" / "beyond.html").is_file()
    # Notebook 05: assembled from the four studies, and every <study>.<name> its cells use exists.
    nb = notebooks.build("05_beyond_the_paper", "short")
    used = {(m, n) for c in nb.cells for m, n in re.findall(r"\b(gradflow|identity|landscapes|lesions)\.(\w+)", c.source)}
    mods = dict(gradflow=gradflow, identity=identity, landscapes=landscapes, lesions=lesions)
    assert {m for m, _ in used} == set(mods) and all(hasattr(mods[m], n) for m, n in used), used
    assert "05_beyond_the_paper" in studies.notebooks("cifar") and "05_beyond_the_paper" not in studies.notebooks("imagenet")


def test_landscape_setting_flags_a_grid_coarser_than_li_et_al():
    m = dict(arch="resnet56", grid=21, grid_1d=51, subset=500, span=1.0, dir_seed=0, device="cpu", commit="abc",
             wall_time_s=600)
    text = landscapes.landscape_setting([m, {**m, "arch": "plain56"}])
    assert "plain56 seed 0, resnet56 seed 0: a 21×21 grid" in text and "scaled down" in text and "500 training images" in text
    assert "20 min" in text
    assert "scaled down" not in landscapes.landscape_setting([{**m, "grid": 51}])


def test_verdicts_say_not_run_yet_without_numbers(tmp_path):
    b = load_collected("short", tmp_path)
    for text in (gradflow.gradflow_verdict(b), identity.variants_verdict(b), landscapes.landscape_verdict(b),
                 lesions.lesion_verdict(b)):
        assert "not run yet" in text and not re.search(r"\d+\.\d+%", text)


def test_variants_verdict_compares_with_the_eccv_medians():
    finals = [dict(arch="resnet110", final_test_err=0.07), dict(arch="resnet110-preact", final_test_err=0.065),
              dict(arch="resnet110-const0.5", final_test_err=0.06)]
    text = identity.variants_verdict(dict(identity_variants=identity.variants_table(finals)))
    assert "full pre-activation:** median 6.50%" in text and "-0.50 points" in text
    assert "1 of 2 variants" in text  # preact agrees (better), constant scaling does not (paper: worse)


@pytest.mark.parametrize("argv", [["gradflow", "--preset", "smoke", "--archs", "resnet21"],
                                  ["landscape", "--preset", "smoke", "--archs", "plain20-preact"]])
def test_bad_arch_exits_2(argv, tmp_path, capsys):
    assert cli.main(argv + ["--results", str(tmp_path)]) == 2
    assert "error:" in capsys.readouterr().err and not any(tmp_path.iterdir())


def test_gradflow_init_only_and_final_only_exclude_each_other(tmp_path, capsys):
    argv = ["gradflow", "--preset", "smoke", "--init-only", "--final-only", "--results", str(tmp_path)]
    assert cli.main(argv) == 2
    assert "exclude each other" in capsys.readouterr().err and not any(tmp_path.iterdir())


def _train_rows(arch: str, ratios: dict[int, float], n_blocks: int = 3) -> pd.DataFrame:
    """gradflow.csv rows whose first/last block-input norm is `ratios[iteration]` (geometric in between)."""
    rows = [dict(arch=arch, seed=1, kind="block_input", iteration=it, index=i, grad_norm=r ** (1 - i / (n_blocks - 1)))
            for it, r in ratios.items() for i in range(n_blocks)]
    return pd.DataFrame(rows)


def test_gradflow_training_lines_give_the_first_second_and_last_ratio_and_compare_the_pair():
    gf = pd.concat([_train_rows("plain56", {0: 9000.0, 250: 30.0, 500: 5.0, 750: 2.5}),
                    _train_rows("resnet56", {0: 36.0, 250: 3.0, 500: 2.2, 750: 2.0})])
    text = "\n".join(gradflow.gradflow_training_lines(gf))
    assert "plain-56 during training** (seed 1; one training batch every 250 iterations, 4 points)" in text
    assert "9e+03× at iteration 0, 30× at iteration 250, 2.5× at iteration 750" in text
    assert "from 9e+03 to 2.5 in plain-56 and from 36 to 2 in ResNet-56" in text and "evens out" in text
    gf = pd.concat([_train_rows("plain56", {0: 9000.0, 750: 500.0}), _train_rows("resnet56", {0: 36.0, 750: 2.0})])
    assert "stays far more uneven" in "\n".join(gradflow.gradflow_training_lines(gf))
    assert gradflow.gradflow_training_lines(pd.DataFrame(columns=hooks.GRADFLOW_COLUMNS)) == []


def test_lesion_setting_names_the_device_and_the_nets_without_lesion_json():
    t = pd.DataFrame(dict(arch=["resnet56", "resnet56", "plain56"], seed=[0, 1, 0], n_test=[10000] * 3))
    metas = [dict(arch="resnet56", seed=1, device="cpu (2 cores)", commit="0123456789abcdef")]
    text = lesions.lesion_setting(t, metas)
    assert "10,000 test images" in text and "resnet56 seed 1: cpu (2 cores), commit `0123456789ab`" in text
    assert "plain56 seed 0, resnet56 seed 0: no lesion.json" in text


def test_landscape_verdict_and_figures_keep_each_seeds_surface_apart(tmp_path):
    """Two seeds of one net: a line and a panel each, never a mean of two different nets' surfaces."""
    a = np.linspace(-1, 1, 5)
    A, B = np.meshgrid(a, a)
    bowl = pd.DataFrame(dict(alpha=A.ravel(), beta=B.ravel(), loss=0.5 + A.ravel() ** 2 + B.ravel() ** 2, err=0.1))
    pits = (np.abs(bowl.alpha) == 0.5) & (np.abs(bowl.beta) == 0.5)  # 4 strict local minima, 16% below ln 10
    bumpy = bowl.assign(loss=np.where(pits, 1.5, 4.0))
    l2 = pd.concat([bowl.assign(arch="resnet56", seed=0), bumpy.assign(arch="resnet56", seed=1),
                    bumpy.assign(arch="plain56", seed=0), bumpy.assign(arch="plain56", seed=1)], ignore_index=True)
    l1 = l2[l2.beta == 0].drop(columns="beta")
    b = dict(landscape_1d=l1, landscape_2d=l2, landscape_meta=[])
    text = landscapes.landscape_verdict(b)
    assert "**resnet56** (seed 0): 1-D: loss 0.5 at the trained weights" in text
    assert "**resnet56** (seed 1): 1-D: loss 4 at the trained weights" in text
    assert "resnet56 vs plain56, seed 0:** the residual net's surface is wider" in text
    assert "resnet56 vs plain56, seed 1:** the residual net's surface is **not**" in text
    assert landscapes._surface(l2, "resnet56", 1)[2][1, 1] == pytest.approx(1.5)  # seed 1's own surface, not a mean
    runs = pd.DataFrame(columns=["data_source"])
    fig = landscapes.fig_landscape_2d(l2, "short", runs)
    assert len([ax for ax in fig.axes if ax.get_title()]) == 4
    assert len(landscapes.fig_landscape_1d(l1, "short", runs).axes[0].lines) == 4
    fig.canvas.draw()  # issue 20: nine ticks of "-0.75" collided on the alpha axis; at most five now
    ticks = [t for t in fig.axes[0].get_xticks() if -1 <= t <= 1]
    assert len(ticks) <= 5 and 0.0 in ticks


def test_gradflow_training_figure_colours_lines_by_iteration_with_a_colour_bar():
    """Issue 20: the lines' colour is the iteration, so the figure needs a colour bar that says so."""
    gf = pd.concat([_train_rows("plain56", {0: 9000.0, 250: 30.0, 500: 5.0}),
                    _train_rows("resnet56", {0: 36.0, 250: 3.0, 500: 2.2})])
    fig = gradflow.fig_gradflow_training(gf, "short", pd.DataFrame(columns=["data_source"]))
    bars = [ax for ax in fig.axes if ax.get_ylabel() == "training iteration"]
    assert len(bars) == 1
    lines = [ln for ax in fig.axes for ln in ax.get_lines()]
    assert len({tuple(ln.get_color()) for ln in lines}) == 3  # one colour per recorded iteration, same in both nets


def test_gradflow_verdict_at_the_final_weights_says_which_seeds_it_averages():
    gf = pd.concat([_train_rows(a, {4000: 2.0}).assign(seed=s) for a in ("plain20", "resnet20") for s in (0, 1)])
    empty = pd.DataFrame(columns=hooks.GRADFLOW_COLUMNS)
    text = gradflow.gradflow_verdict(dict(gradflow_init=empty, gradflow_final=gf, gradflow_train=empty))
    assert "**20 layers, at the final weights (mean over seeds 0, 1):** the gradient norm" in text
    assert "2× that at the last block in plain-20" in text


def _final_json(arch: str) -> str:
    """A finished run's final.json with the fields collect and the report read."""
    return json.dumps(dict(arch=arch, seed=0, depth=parse_arch(arch).depth, residual=parse_arch(arch).residual,
                           params=1, iterations=4000, final_test_err=0.2, final_train_err=0.1, wall_time_s=60.0,
                           device="cpu", commit="0" * 40, data_source="imagefolder-jpeg (lossy)", precision="bf16-mixed"))


def test_collect_takes_only_finished_runs_so_a_run_in_training_is_not_read_as_its_whole_record(tmp_path):
    runs = tmp_path / "short" / "runs"
    for arch, finished in (("resnet20", True), ("resnet110", False)):
        d = runs / arch / "seed0"
        d.mkdir(parents=True)
        _train_rows(arch, {0: 9.0, 250: 2.0}).to_csv(d / "gradflow.csv", index=False)
        if finished:
            (d / "final.json").write_text(_final_json(arch))
    tables = collect("short", tmp_path)
    assert set(tables["gradflow_train"].arch) == {"resnet20"}
    assert set(pd.read_csv(tmp_path / "short" / "gradflow_train.csv").arch) == {"resnet20"}
    one = "\n".join(gradflow.gradflow_training_lines(_train_rows("resnet20", {0: 9.0})))
    assert "one training batch 1 point)" in one


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


def _lesion_rows(arch: str, deltas: list[float], base: float = 0.2) -> list[dict]:
    """lesion.csv rows: the intact net (block 0), then one same-shape block per entry of `deltas`."""
    rows = [dict(arch=arch, seed=0, block=0, reshape=False, removed=False, test_err=base, delta_err=0.0, n_test=100)]
    rows += [dict(arch=arch, seed=0, block=i + 1, reshape=False, removed=True, test_err=base + d, delta_err=d,
                  n_test=100) for i, d in enumerate(deltas)]
    return rows


def test_lesion_verdict_counts_the_blocks_that_cost_under_a_point_and_compares_resnet_depths():
    t = pd.DataFrame(_lesion_rows("resnet20", [0.3, 0.1, 0.005]) + _lesion_rows("resnet56", [0.02, 0.005, 0.001, 0.0]))
    text = lesions.lesion_verdict(dict(lesion=t))
    assert "**resnet20** (seed 0): test error 20.00% intact" in text and "1 of 3 cost less than 1 point" in text
    assert "3 of 4 cost less than 1 point" in text
    assert "13.50 (ResNet-20, n=1), 0.65 (ResNet-56, n=1) points on average: falling with depth" in text
    assert "with one seed per net, a pattern to confirm, not yet a finding" in text  # issue 20: says its n
    t = pd.DataFrame(_lesion_rows("resnet20", [0.01]) + _lesion_rows("resnet56", [0.05]))
    assert "not monotone in depth" in lesions.lesion_verdict(dict(lesion=t))
    assert "ResNets by depth" not in lesions.lesion_verdict(dict(lesion=pd.DataFrame(_lesion_rows("resnet56", [0.1]))))


def test_spread_wording_calls_only_near_equal_spreads_similar():
    """Issue 20: 4.72 vs 3.03 (ratio 1.56) is not 'similar'."""
    assert "similar" not in gradflow._spread_text(4.72 / 3.03) and "1.56× as much" in gradflow._spread_text(4.72 / 3.03)
    assert "similar" in gradflow._spread_text(1.1)
    assert "ResNet's gradient varies 2× more" in gradflow._spread_text(0.5)


def test_a_new_study_is_one_module_and_one_registry_entry(tmp_path, monkeypatch):
    """Issue 19: collect, figures, report and notebooks loop over STUDIES; a toy study registered there gets its
    table collected, its figure drawn and linked, its report field filled and its notebook cells run, with no other
    change."""
    import types

    from matplotlib.figure import Figure
    from nbformat.v4 import new_code_cell, new_markdown_cell

    def draw(t, preset):
        fig = Figure()
        fig.subplots().plot(t["toy"]["x"], t["toy"]["y"])
        return [(fig, "beyond_toy")]

    toy = types.SimpleNamespace(
        FAMILY="cifar", PAGE="beyond", TABLES={"toy": ["x", "y"]}, FIGURES={"toy": "beyond_toy"}, draw=draw,
        CAPTIONS={"toy": "A toy curve: y against x, drawn to check the registry."},
        collect=lambda rs: {"toy": pd.DataFrame({"x": [0, 1], "y": [len(rs.dirs), 0]})},
        report_fields=lambda t, preset, figures_dir: {"lesion": f"TOY SAYS {int(t['toy']['y'].iloc[0])} RUNS"},
        NOTEBOOKS={"06_toy": [new_markdown_cell("# Toy"), new_code_cell("print(len(t['toy']))")]})
    monkeypatch.setattr(studies, "STUDIES", studies.STUDIES + [toy])
    d = tmp_path / "results" / "short" / "runs" / "resnet20" / "seed0"
    d.mkdir(parents=True)
    (d / "final.json").write_text(_final_json("resnet20"))
    collect("short", tmp_path / "results")
    assert pd.read_csv(tmp_path / "results" / "short" / "toy.csv").y.tolist() == [1, 0]
    paths = make_figures("short", tmp_path / "results", tmp_path / "figures")
    assert tmp_path / "figures" / "short" / "beyond_toy.png" in paths
    build_report("short", tmp_path / "results", tmp_path / "figures", tmp_path / "report")
    md = (tmp_path / "report" / "short" / "beyond.md").read_text()
    assert "beyond_toy.png" in md and "TOY SAYS 1 RUNS" in md and "*A toy curve: y against x" in md
    nb = notebooks.build("06_toy", "short", str(tmp_path / "results"))
    assert [c.source for c in nb.cells][0] == "# Toy" and "print(len(t['toy']))" in nb.cells[-1].source
