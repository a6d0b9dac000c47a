"""Loss landscapes (studies.landscapes, Li et al. 2018): filter-normalised directions, the grid, its setting,
verdict and figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from resnet_repro import hooks
from resnet_repro.studies import landscapes, lesions
from resnet_repro.models import build_model

from conftest import randomize_bn


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


def test_landscape_setting_flags_a_grid_coarser_than_li_et_al():
    m = dict(arch="resnet56", grid=21, grid_1d=51, subset=500, span=1.0, dir_seed=0, device="cpu", commit="abc",
             wall_time_s=600)
    text = landscapes.landscape_setting([m, {**m, "arch": "plain56"}])
    assert "plain56 seed 0, resnet56 seed 0: a 21×21 grid" in text and "scaled down" in text and "500 training images" in text
    assert "20 min" in text
    assert "scaled down" not in landscapes.landscape_setting([{**m, "grid": 51}])


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
    assert "1 strict local minimum, " in text and "4 strict local minima, " in text  # the bowl's one, the pits
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


def test_a_landscape_figure_names_the_devices_of_its_own_runs_only():
    """The footer's 'trained on' lists the devices of the runs drawn, not of every run of the preset."""
    from resnet_repro.studies.common import runs_frame

    runs = pd.DataFrame(dict(arch=["resnet20", "resnet56", "resnet56"], seed=[0, 0, 1], data_source="jpeg",
                             device=["cpu (old)", "cpu (Xeon)", "cuda (H100)"]))
    l2 = pd.DataFrame(dict(arch=["resnet56"] * 2, seed=[0, 0], alpha=[0.0, 1.0], beta=0.0, loss=1.0, err=0.1))
    b = dict(runs=runs)
    assert list(runs_frame(b, l2).device) == ["cpu (Xeon)"]
    assert len(runs_frame(b)) == 3 and runs_frame(dict(runs=pd.DataFrame()), l2).empty
