"""Block lesions (studies.lesions): a removed block is exactly its shortcut; the table, its setting and verdict."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from resnet_repro import hooks
from resnet_repro.studies import lesions
from resnet_repro.models import build_model

from conftest import randomize_bn


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


def test_lesion_setting_names_the_device_and_the_nets_without_lesion_json():
    t = pd.DataFrame(dict(arch=["resnet56", "resnet56", "plain56"], seed=[0, 1, 0], n_test=[10000] * 3))
    metas = [dict(arch="resnet56", seed=1, device="cpu (2 cores)", commit="0123456789abcdef")]
    text = lesions.lesion_setting(t, metas)
    assert "10,000 test images" in text and "resnet56 seed 1: cpu (2 cores), commit `0123456789ab`" in text
    assert "plain56 seed 0, resnet56 seed 0: no lesion.json" in text


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
    two = [dict(r, seed=1) for r in _lesion_rows("resnet20", [0.3, 0.1, 0.005])]
    text = lesions.lesion_verdict(dict(lesion=pd.DataFrame(_lesion_rows("resnet20", [0.3, 0.1, 0.005]) + two
                                                           + _lesion_rows("resnet56", [0.02]))))
    assert "(ResNet-20, n=2)" in text and "with one seed of ResNet-56, a pattern to confirm" in text
    assert "one seed per net" not in text
    t = pd.DataFrame(_lesion_rows("resnet20", [0.01]) + _lesion_rows("resnet56", [0.05]))
    assert "not monotone in depth" in lesions.lesion_verdict(dict(lesion=t))
    assert "ResNets by depth" not in lesions.lesion_verdict(dict(lesion=pd.DataFrame(_lesion_rows("resnet56", [0.1]))))
