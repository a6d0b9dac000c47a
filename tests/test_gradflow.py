"""Gradient flow (studies.gradflow, hooks): the norms per block and layer, at initialisation, during training and
at the final weights; its verdict and figures."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from resnet_repro import cli, hooks, runfolder
from resnet_repro.collect import collect
from resnet_repro.studies import common, gradflow
from resnet_repro.models import build_model, parse_arch

from conftest import final_json


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


def test_gradflow_init_writes_the_table_and_its_provenance(tiny_cifar, tmp_path):
    df = gradflow.gradflow_init("smoke", ["plain8", "resnet8"], seed=0, n_batches=2, dest=tmp_path, arrays=tiny_cifar)
    saved = pd.read_csv(tmp_path / "gradflow_init.csv")
    assert list(saved.columns) == hooks.GRADFLOW_COLUMNS and len(saved) == len(df) == 2 * (3 + 8)
    assert set(saved.point) == {"init"} and set(saved.batch_size) == {128} and set(saved.n_batches) == {2}
    meta = json.loads((tmp_path / "gradflow_init.json").read_text())
    for k in ("commit", "device", "data_source", "torch", "seed", "n_batches", "archs"):
        assert k in meta, k
    assert meta["data_source"] == "imagefolder-jpeg (lossy)"


def test_training_callback_records_the_same_norms_as_offline_on_the_first_batch(tiny_cifar, tmp_path):
    from resnet_repro import train
    from resnet_repro.config import make_config

    cfg = make_config("smoke", arch="resnet8", max_steps=4, eval_every=2, milestones=(2, 3), batch_size=16,
                      gradflow_every=2, out=str(tmp_path), accelerator="cpu", channels_last=False)
    train.train(cfg, arrays=tiny_cifar, progress=False)
    rec = pd.read_csv(runfolder.run_dir(cfg) / "gradflow.csv")
    assert sorted(set(rec.iteration)) == [0, 2] and set(rec.point) == {"train"}
    stream, *_ = common.cifar_setup(cfg, tiny_cifar, torch.device("cpu"))
    torch.manual_seed(cfg.seed)
    offline = hooks.gradient_flow(build_model("resnet8"), common.first_batches(stream, 1, cfg.seed))
    first = rec[rec.iteration == 0]
    assert np.allclose(first.grad_norm.to_numpy(), offline.grad_norm.to_numpy(), rtol=1e-4)


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


def test_collect_takes_only_finished_runs_so_a_run_in_training_is_not_read_as_its_whole_record(tmp_path):
    runs = tmp_path / "short" / "runs"
    for arch, finished in (("resnet20", True), ("resnet110", False)):
        d = runs / arch / "seed0"
        d.mkdir(parents=True)
        _train_rows(arch, {0: 9.0, 250: 2.0}).to_csv(d / "gradflow.csv", index=False)
        if finished:
            (d / "final.json").write_text(final_json(arch))
    tables = collect("short", tmp_path)
    assert set(tables["gradflow_train"].arch) == {"resnet20"}
    assert set(pd.read_csv(tmp_path / "short" / "gradflow_train.csv").arch) == {"resnet20"}
    one = "\n".join(gradflow.gradflow_training_lines(_train_rows("resnet20", {0: 9.0})))
    assert "one training batch 1 point)" in one


def test_spread_wording_calls_only_near_equal_spreads_similar():
    """Issue 20: 4.72 vs 3.03 (ratio 1.56) is not 'similar'."""
    assert "similar" not in gradflow._spread_text(4.72 / 3.03) and "1.56× as much" in gradflow._spread_text(4.72 / 3.03)
    assert "similar" in gradflow._spread_text(1.1)
    assert "3× as much" in gradflow._spread_text(3.0) and "far more uneven" in gradflow._spread_text(12.0)
    assert "ResNet's gradient varies 2× as much" in gradflow._spread_text(0.5)
