"""The learning-rate schedule (Sec. 4.2) and the warm-up rule for the 110-layer net, plus config checks."""

from __future__ import annotations

import pytest

from resnet_repro.config import PRESETS, make_config
from resnet_repro.train import LRSchedule


def approx(v):
    return pytest.approx(v, rel=1e-12)


@pytest.mark.parametrize("preset,m1,m2,end", [("paper", 32_000, 48_000, 64_000), ("short", 2_000, 3_000, 4_000)])
def test_step_schedule(preset, m1, m2, end):
    cfg = make_config(preset, arch="resnet20")
    assert cfg.milestones == (m1, m2) and cfg.max_steps == end and not cfg.use_warmup
    s = LRSchedule(cfg)
    for it in (0, 1, m1 // 2, m1 - 1):
        assert s(it) == approx(0.1), it
    for it in (m1, m1 + 1, m2 - 1):
        assert s(it) == approx(0.01), it
    for it in (m2, m2 + 1, end - 1, end):
        assert s(it) == approx(0.001), it


def test_paper_preset_is_the_papers_protocol():
    cfg = make_config("paper")
    assert (cfg.batch_size, cfg.lr, cfg.momentum, cfg.weight_decay) == (128, 0.1, 0.9, 1e-4)
    assert cfg.max_steps == 64_000 and cfg.milestones == (32_000, 48_000) and cfg.eval_every == 400
    assert PRESETS["paper"] == {}


def warm(**kw):
    return LRSchedule(make_config("paper", arch="resnet20", warmup="on", **kw))


def test_warmup_holds_lr_at_0_01_until_error_below_80_percent():
    s = warm()
    assert s.warming and s.switched_at is None
    assert s(0) == approx(0.01) and s(399) == approx(0.01)
    assert s.observe(400, 0.85) is False  # 85% error: keep warming up
    assert s.warming and s.switched_at is None and s(401) == approx(0.01)
    assert s.observe(420, 0.80) is False  # the rule is "below 80%"
    assert s(421) == approx(0.01)
    assert s.observe(440, 0.79) is True
    assert not s.warming and s.switched_at == 440
    assert s(441) == approx(0.1) and s(31_999) == approx(0.1)
    assert s(32_000) == approx(0.01) and s(48_000) == approx(0.001)
    assert s.observe(460, 0.5) is False and s.switched_at == 440  # switches once


def test_warmup_never_raises_the_lr_after_the_first_milestone():
    s = warm(milestones=(100, 200), max_steps=300, eval_every=100)
    assert s(50) == approx(0.01)
    assert s(150) == approx(0.01) and s(250) == approx(0.001)
    # Reaching the first milestone ends the warm-up even if the net never trained.
    assert s.observe(100, 0.9) is True and s.switched_at == 100
    assert s(150) == approx(0.01)


def test_warmup_state_round_trips():
    s = warm()
    s.observe(440, 0.5)
    t = warm()
    t.load_state_dict(s.state_dict())
    assert not t.warming and t.switched_at == 440 and t(500) == approx(0.1)


def test_warmup_auto_is_on_for_110_and_off_for_56():
    assert make_config("paper", arch="resnet110").use_warmup
    assert make_config("paper", arch="plain110").use_warmup
    assert make_config("paper", arch="resnet1202").use_warmup
    assert not make_config("paper", arch="resnet56").use_warmup
    assert not make_config("paper", arch="resnet20").use_warmup
    assert not make_config("paper", arch="resnet110", warmup="off").use_warmup
    assert make_config("paper", arch="resnet56", warmup="on").use_warmup
    s110, s56 = LRSchedule(make_config("paper", arch="resnet110")), LRSchedule(make_config("paper", arch="resnet56"))
    assert s110(0) == approx(0.01) and s56(0) == approx(0.1)
    assert s56.observe(20, 0.95) is False and s56(21) == approx(0.1)


@pytest.mark.parametrize("bad", [dict(seed=-1), dict(arch="resnet21"), dict(arch="vgg16"),
                                 dict(max_steps=10, eval_every=3), dict(milestones=(48_000, 32_000)),
                                 dict(warmup="sometimes"), dict(batch_size=127, bn_groups=2)])
def test_make_config_rejects_bad_settings(bad):
    with pytest.raises(ValueError):
        make_config("paper", **bad)


def test_make_config_rejects_unknown_preset():
    with pytest.raises(ValueError, match="unknown preset"):
        make_config("huge")


def test_the_warmup_switch_takes_effect_at_the_next_update_and_the_logged_lr_is_the_one_used(tmp_path, full_cifar_dir):
    """Issue 20: Lightning steps the lr scheduler before on_train_batch_end, where the rule fires; the switch must
    still reach the very next update, and metrics.csv must log the lr that the interval's last update used."""
    import csv

    import lightning as L

    from resnet_repro import runfolder, train
    from resnet_repro.config import make_config

    used = []

    class Spy(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            used.append(trainer.optimizers[0].param_groups[0]["lr"])

    orig = L.Trainer.__init__

    def init(self, *a, **kw):
        kw["callbacks"] = list(kw.get("callbacks", [])) + [Spy()]
        orig(self, *a, **kw)

    L.Trainer.__init__ = init
    try:
        # The rule fires at the first check, after iteration 2 (error < 99.9%), at an evaluation boundary.
        cfg = make_config("smoke", arch="resnet20", warmup="on", warmup_until_err=0.999, warmup_check_every=2,
                          max_steps=4, eval_every=2, milestones=(100,), batch_size=32, test_subset=200,
                          data_dir=str(full_cifar_dir), out=str(tmp_path), accelerator="cpu")
        final = train.train(cfg)
    finally:
        L.Trainer.__init__ = orig
    assert final["warmup_switched_at"] == 2
    assert used == pytest.approx([0.01, 0.01, 0.1, 0.1])  # updates 0 and 1 warm up; update 2 already at 0.1
    with open(runfolder.run_dir(cfg) / "metrics.csv") as fh:
        lrs = [float(r["lr"]) for r in csv.DictReader(fh)]
    assert lrs == pytest.approx([0.01, 0.1])  # interval 1 ended with a warm-up update, interval 2 with 0.1
