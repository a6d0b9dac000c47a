"""Issue 18: the budget study reads collected CSVs of several presets and finds the smallest budget per claim."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from resnet_repro.collect import load_collected
from resnet_repro.studies import budget as B
from resnet_repro.claims import CLAIMS, holds


def write_preset(results: Path, preset: str, errs: dict[str, list[float]], train: dict[str, float],
                 data_source: str = "imagefolder-jpeg (lossy)") -> None:
    d = results / preset
    d.mkdir(parents=True)
    rows, curves = [], []
    for arch, es in errs.items():
        for s, e in enumerate(es):
            rows.append(dict(arch=arch, seed=s, final_test_err=e, final_train_err=train.get(arch, e),
                             precision="bf16-mixed", device="cpu", preset=preset, data_source=data_source))
            for it in (100, 200):
                curves.append(dict(arch=arch, seed=s, iteration=it, metric="train_err", value=train.get(arch, e)))
    pd.DataFrame(rows).to_csv(d / "runs.csv", index=False)
    pd.DataFrame(curves).to_csv(d / "curves.csv", index=False)


def test_the_smallest_budget_per_claim(tmp_path):
    # 1/16: ResNet-56 worse than ResNet-20 (undertrained); 1/4: better, by more than the seed spread.
    write_preset(tmp_path, "short", {"resnet20": [0.19, 0.192], "resnet56": [0.22, 0.221], "plain20": [0.23],
                                     "plain56": [0.5]}, {"plain20": 0.22, "plain56": 0.55})
    write_preset(tmp_path, "quarter", {"resnet20": [0.12, 0.121], "resnet56": [0.10, 0.102], "plain20": [0.13],
                                       "plain56": [0.2]}, {"plain20": 0.1, "plain56": 0.15})
    per_net, claims = B.tables(tmp_path, load_collected)
    assert set(per_net.preset) == {"short", "quarter"}
    r56 = per_net[(per_net.arch == "resnet56") & (per_net.preset == "quarter")].iloc[0]
    assert r56.n == 2 and abs(r56.mean_test_err_pct - 10.1) < 1e-9 and r56.fraction == 0.25
    first = B.smallest(claims)
    assert first[CLAIMS[1]] == "1/4" and first[CLAIMS[0]] == "1/16" and first[CLAIMS[3]] == "1/16"
    assert first[CLAIMS[2]] == "none of the budgets run so far"  # no ResNet-110 anywhere
    text = B.report_text(per_net, claims)
    assert "does not hold" in text and "beyond the seed spread" in text and "scaled-down" in text
    assert "| resnet56 | 1/4 | 2 | 10.10 | 0.14 | 10.00 | 10.20 | bf16-mixed | cpu |" in text  # device and precision


def test_degradation_must_hold_through_the_whole_run_not_only_at_the_end():
    runs = pd.DataFrame([dict(arch="plain20", seed=0, final_test_err=0.2, final_train_err=0.2),
                         dict(arch="plain56", seed=0, final_test_err=0.3, final_train_err=0.3)])
    curves = pd.DataFrame([dict(arch="plain20", seed=0, iteration=100, metric="train_err", value=0.5),
                           dict(arch="plain56", seed=0, iteration=100, metric="train_err", value=0.4),
                           dict(arch="plain20", seed=0, iteration=200, metric="train_err", value=0.2),
                           dict(arch="plain56", seed=0, iteration=200, metric="train_err", value=0.3)])
    ok, note = holds(dict(runs=runs, curves=curves, layer_std=pd.DataFrame()))[CLAIMS[0]]
    assert ok is False and "1 of 2 points" in note


def test_budget_writes_its_files(tmp_path):
    write_preset(tmp_path / "results", "short", {"resnet20": [0.19]}, {})
    B.write(tmp_path / "results", tmp_path / "figures", tmp_path / "report", load_collected)
    assert (tmp_path / "figures" / "budget.png").stat().st_size > 10_000
    assert (tmp_path / "results" / "budget_claims.csv").is_file() and (tmp_path / "report" / "budget.md").is_file()


def test_one_seed_claims_say_whether_the_difference_beats_the_test_set_noise():
    """With one seed per net the seed spread is unknown, but the test set's own sampling noise is not: two binomial
    standard errors of a difference on n_test images (13.77% vs 13.06% on 10,000: ±0.96 points)."""
    from resnet_repro import claims

    runs = pd.DataFrame([dict(arch="resnet20", seed=0, final_test_err=0.1377, n_test=10_000, final_train_err=0.05),
                         dict(arch="resnet56", seed=0, final_test_err=0.1306, n_test=10_000, final_train_err=0.05),
                         dict(arch="plain56", seed=0, final_test_err=0.3229, n_test=10_000, final_train_err=0.3)])
    c = claims.compare(runs, "resnet56", "resnet20")
    assert abs(c["sampling"] - 2 * ((0.1377 * 0.8623 + 0.1306 * 0.8694) / 10_000) ** 0.5) < 1e-12
    assert not c["beats_sampling"] and claims.compare(runs, "resnet56", "plain56")["beats_sampling"]
    assert "±0.96 points (two standard errors of a difference on 10,000 images" in claims.spread_text(c)
    assert "the difference is **within** it" in claims.spread_text(c)
    h = holds({"runs": runs})
    assert h[CLAIMS[1]] == (True, "-0.71 points, n=1/1, seed spread unknown, within test-set noise ±0.96")
    assert claims.compare(runs, "resnet56", "resnet20", "final_test_err")["sampling"] is not None
    assert claims.compare(runs.drop(columns="n_test"), "resnet56", "resnet20")["sampling"] is None  # n unknown


def test_a_second_seed_does_not_loosen_the_verdict_below_the_test_set_noise():
    """Two close seeds of ResNet-20 give a small seed spread; the -0.71 points of ResNet-56 beat it but not the
    test set's sampling noise (+-0.97), so the claim stays within the noise: consistent, not reproduced."""
    from resnet_repro import claims

    runs = pd.DataFrame([dict(arch="resnet20", seed=0, final_test_err=0.1377, n_test=10_000, final_train_err=0.05),
                         dict(arch="resnet20", seed=1, final_test_err=0.1387, n_test=10_000, final_train_err=0.05),
                         dict(arch="resnet56", seed=0, final_test_err=0.1311, n_test=10_000, final_train_err=0.05)])
    c = claims.compare(runs, "resnet56", "resnet20")
    assert c["beats_spread"] and not c["beats_sampling"] and claims.within_noise(c)
    assert claims.beyond_noise({"runs": runs})[CLAIMS[1]] is False
    assert "not yet reproduced" in claims.sign_verdict(c, "reproduced", "not reproduced")
    assert "larger than the spread" in claims.spread_text(c) and "**within** it" in claims.spread_text(c)
    assert holds({"runs": runs})[CLAIMS[1]] == (
        True, "-0.71 points, n=1/2, beyond the seed spread, within test-set noise ±0.97")
    wide = runs.assign(final_test_err=[0.1577, 0.1587, 0.1311])  # -2.71 points: beyond both
    assert claims.beyond_noise({"runs": wide})[CLAIMS[1]] is True


def test_the_test_set_noise_is_paired_where_every_run_has_its_test_outcomes():
    """Two nets that err on mostly the same images: the paired noise (each image's error difference) is far below the
    unpaired binomial one, and the same -0.71 points turn from within the noise to beyond it. Seeds are averaged per
    image; a run without outcomes falls back to the unpaired noise, as a comparison with no outcomes at all."""
    import numpy as np

    from resnet_repro import claims

    shared = list(range(0, 1300))  # both nets get these wrong
    w = pd.DataFrame([dict(arch="resnet20", seed=0, n_test=10_000, wrong=" ".join(map(str, shared + list(range(5000, 5077))))),
                      dict(arch="resnet56", seed=0, n_test=10_000, wrong=" ".join(map(str, shared + list(range(6000, 6006)))))])
    runs = pd.DataFrame([dict(arch="resnet20", seed=0, final_test_err=0.1377, n_test=10_000, final_train_err=0.05),
                         dict(arch="resnet56", seed=0, final_test_err=0.1306, n_test=10_000, final_train_err=0.05)])
    d = np.zeros(10_000)
    d[6000:6006], d[5000:5077] = 1, -1
    want = 2 * d.std(ddof=1) / 100
    c = claims.compare(runs, "resnet56", "resnet20", wrong=w)
    assert c["paired"] and abs(c["sampling"] - want) < 1e-12 and c["sampling"] < 0.5 * claims.compare(runs, "resnet56", "resnet20")["sampling"]
    assert c["beats_sampling"] and not claims.within_noise(c)
    assert claims.beyond_noise({"runs": runs, "test_wrong": w})[CLAIMS[1]] is True
    assert claims.beyond_noise({"runs": runs})[CLAIMS[1]] is False  # unpaired: within ±0.96
    assert "beyond paired test-set noise" in holds({"runs": runs, "test_wrong": w})[CLAIMS[1]][1]
    assert "of the paired difference on 10,000 images" in claims.spread_text(c)
    assert "**reproduced**" in claims.depth(runs, w).splitlines()[0]
    # a second seed of ResNet-20 without outcomes: unpaired again
    runs2 = pd.concat([runs, pd.DataFrame([dict(arch="resnet20", seed=1, final_test_err=0.1387, n_test=10_000,
                                                    final_train_err=0.05)])])
    assert not claims.compare(runs2, "resnet56", "resnet20", wrong=w)["paired"]
    # with it: each image's error is the mean over ResNet-20's two seeds
    w2 = pd.concat([w, pd.DataFrame([dict(arch="resnet20", seed=1, n_test=10_000, wrong=" ".join(map(str, shared)))])])
    d2 = np.zeros(10_000)
    d2[6000:6006], d2[5000:5077] = 1, -0.5
    assert abs(claims.compare(runs2, "resnet56", "resnet20", wrong=w2)["sampling"] - 2 * d2.std(ddof=1) / 100) < 1e-12


def test_the_figure_marks_where_the_full_schedule_lands_in_the_final_iterate_reproduction(tmp_path):
    """Each drawn net that the final-iterate reproduction trained gets its mean +- std at fraction 1; others none."""
    from resnet_repro.paper import FINAL_REPRO

    write_preset(tmp_path / "results", "short", {"resnet20": [0.19], "resnet32": [0.18]}, {})
    per_net, _ = B.tables(tmp_path / "results", load_collected)
    plain_ax, resnet_ax = B.figure(per_net).axes
    assert len(resnet_ax.containers) == 1 and "resnet32" not in FINAL_REPRO  # ResNet-20's diamond only
    (bar,) = resnet_ax.containers
    assert bar.lines[0].get_ydata()[0] == FINAL_REPRO["resnet20"][0] and bar.lines[0].get_xdata()[0] == 1.0
    assert "public repro, final iterate (n=5)" in [t.get_text() for t in resnet_ax.get_legend().get_texts()]
    assert not plain_ax.containers  # no plain net drawn, so no diamond
    text = B.report_text(per_net, B.tables(tmp_path / "results", load_collected)[1])
    assert "Hollow diamonds at 1" in text and "nabla0001/resnet" in text


def test_the_data_named_is_the_data_the_runs_recorded(tmp_path):
    """No fixed 'lossy JPEG' wording: a user's runs on the official CIFAR-10 are labelled as such."""
    write_preset(tmp_path / "results", "short", {"resnet20": [0.19]}, {}, data_source="official-python-batches")
    per_net, claims = B.tables(tmp_path / "results", load_collected)
    text = B.report_text(per_net, claims)
    assert "lossy" not in text and "data: CIFAR-10 (official-python-batches)" in text
    assert "lossy" not in B.figure(per_net)._suptitle.get_text()


def test_make_budget_executes_its_notebook_from_the_csvs(tmp_path, monkeypatch):
    """`make budget` (cli budget --notebook) writes notebooks/budget.ipynb, executed, with the report's verdicts."""
    import nbformat

    from resnet_repro import cli

    write_preset(tmp_path / "results", "short", {"resnet20": [0.19, 0.2], "resnet56": [0.22]}, {})
    monkeypatch.chdir(tmp_path)
    assert cli.main(["budget", "--notebook"]) == 0
    nb = nbformat.read(tmp_path / "notebooks" / "budget.ipynb", as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "\n".join(o.get("data", {}).get("text/markdown", "") for o in outputs)
    assert "smallest budget at which it holds" in text and "| resnet20 | 1/16 | 2 | 19.50 |" in text
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the figure itself


def test_a_difference_within_the_noise_is_not_called_reproduced():
    """Right sign but within the measured noise (seed spread, or test-set noise with one seed): 'consistent with the
    paper, not yet reproduced'; beyond it: 'reproduced'; wrong sign: 'not reproduced'."""
    from resnet_repro import claims

    def runs(errs):
        return pd.DataFrame([dict(arch=a, seed=s, final_test_err=e, final_train_err=e, n_test=10_000)
                             for a, es in errs.items() for s, e in enumerate(es)])

    one_seed = runs({"resnet20": [0.1377], "resnet56": [0.1306], "plain56": [0.3229]})
    assert "**consistent with the paper, not yet reproduced**" in claims.depth(one_seed).splitlines()[0]
    assert claims.shortcuts(one_seed).endswith("**reproduced**.")
    spread = runs({"resnet20": [0.12, 0.14], "resnet56": [0.125, 0.126]})  # -0.45 points, spread 2 points
    assert "not yet reproduced" in claims.depth(spread).splitlines()[0]
    clear = runs({"resnet20": [0.12, 0.121], "resnet56": [0.10, 0.101]})
    assert "**reproduced**, ResNet-56 is better." in claims.depth(clear).splitlines()[0]
    worse = runs({"resnet20": [0.12], "resnet56": [0.13]})
    assert "**not reproduced**" in claims.depth(worse).splitlines()[0]


def test_a_claim_that_holds_within_the_noise_is_told_apart_from_one_beyond_it(tmp_path):
    """ResNet-56 below ResNet-20 by 0.5 points on one seed each (test-set noise about ±0.9) at 1/4, by 2 points at 1:
    it holds from 1/4, beyond the noise only at 1; Fig. 7's comparisons have no noise measure and say so."""
    for preset, r56 in (("quarter", 0.125), ("paper", 0.11)):
        write_preset(tmp_path, preset, {"resnet20": [0.13], "resnet56": [r56]}, {})
        runs = pd.read_csv(tmp_path / preset / "runs.csv").assign(n_test=10_000)
        runs.to_csv(tmp_path / preset / "runs.csv", index=False)
    pd.DataFrame([dict(arch=a, seed=0, layer=1, std=v) for a, v in (("resnet20", 0.7), ("plain20", 0.9))]).to_csv(
        tmp_path / "quarter" / "layer_std.csv", index=False)
    per_net, claims = B.tables(tmp_path, load_collected)
    assert B.smallest(claims)[CLAIMS[1]] == "1/4" and B.smallest(claims, beyond=True)[CLAIMS[1]] == "1"
    text = B.claims_markdown(claims)
    assert f"- **{CLAIMS[1]}:** smallest budget at which it holds: **1/4**; beyond the noise: **1**." in text
    assert (f"- **{CLAIMS[4]}:** smallest budget at which it holds: **1/4**; beyond the noise: **none of the budgets "
            "run so far**.") in text  # one seed of each net: a layer std has no noise measure
    assert f"- **{CLAIMS[2]}:** smallest budget at which it holds: **none of the budgets run so far**.\n" in text
    # read back from budget_claims.csv (as the notebook does), the verdicts are the same
    B.write(tmp_path, tmp_path / "fig", tmp_path / "rep", load_collected)
    back = pd.read_csv(tmp_path / "budget_claims.csv")
    assert B.smallest(back, beyond=True) == B.smallest(claims, beyond=True)


def test_fig7_is_beyond_the_noise_only_when_each_difference_beats_the_seed_spread_of_mean_layer_stds():
    from resnet_repro.claims import beyond_noise

    def ls(stds):
        return pd.DataFrame([dict(arch=a, seed=k, layer=l, std=v) for a, vs in stds.items() for k, v in enumerate(vs)
                             for l in (1, 2)])

    runs = pd.DataFrame(columns=["arch", "final_test_err", "final_train_err"])
    clear = {"resnet20": [0.70, 0.72], "plain20": [0.90, 0.91], "resnet56": [0.50, 0.52]}
    b = beyond_noise(dict(runs=runs, layer_std=ls(clear)))
    assert b[CLAIMS[4]] is True and b[CLAIMS[5]] is True
    noisy = dict(clear, plain20=[0.90, 0.60])  # ResNet-20 vs plain-20 differs by 0.04, plain-20's seeds by 0.30
    assert beyond_noise(dict(runs=runs, layer_std=ls(noisy)))[CLAIMS[4]] is False
    one_seed = {a: v[:1] for a, v in clear.items()}
    b1 = beyond_noise(dict(runs=runs, layer_std=ls(one_seed)))
    assert b1[CLAIMS[4]] is None and b1[CLAIMS[5]] is None
    # the notes of `holds` (README headline, budget) say the same
    assert holds(dict(runs=runs, layer_std=ls(clear)))[CLAIMS[4]] == (True, "1 of 1 depths, beyond the seed spread")
    assert holds(dict(runs=runs, layer_std=ls(noisy)))[CLAIMS[4]][1].endswith(", within the seed spread")
    assert holds(dict(runs=runs, layer_std=ls(one_seed)))[CLAIMS[5]] == (
        True, "2 depths, seed spread unknown: a net has one seed")
    # and the report's Fig. 7 section
    from resnet_repro.fig7_claims import fig7
    assert "(ratio 0.78; the difference is larger than the seed spread)" in fig7(ls(clear))
    assert "the difference is **not larger** than the seed spread" in fig7(ls(noisy))
    assert "one seed of a net, so the seed spread is not measured" in fig7(ls(one_seed))
    # some depths with seeds, some without (quarter at 1/4: 20 and 56 have 3, 32 and 44 one): each pair named, and a
    # measured pair within its spread decides "not beyond" whatever the unmeasured ones show
    mixed = dict(noisy, resnet32=[0.60], plain32=[0.80], resnet44=[0.55], plain44=[0.85], resnet56=[0.50, 0.52],
                 plain56=[0.95, 0.97])
    assert holds(dict(runs=runs, layer_std=ls(mixed)))[CLAIMS[4]] == (
        True, "4 of 4 depths, beyond the seed spread at 56 layers; within the seed spread at 20 layers; "
              "one seed at 32 and 44 layers")
    assert beyond_noise(dict(runs=runs, layer_std=ls(mixed)))[CLAIMS[4]] is False
    measured_beyond = dict(mixed, plain20=[0.90, 0.91])
    assert beyond_noise(dict(runs=runs, layer_std=ls(measured_beyond)))[CLAIMS[4]] is None
    # across ResNet depths, every step touches the one-seed ResNet-32: unknown as a whole
    assert holds(dict(runs=runs, layer_std=ls(measured_beyond)))[CLAIMS[5]] == (
        True, "4 depths, seed spread unknown: a net has one seed")
    steps = {"resnet20": [0.70, 0.72], "resnet56": [0.50, 0.52], "resnet110": [0.45]}
    assert holds(dict(runs=runs, layer_std=ls(steps)))[CLAIMS[5]] == (
        True, "3 depths, beyond the seed spread at 20\u219256; one seed at 56\u2192110")


def test_the_full_schedule_gap_names_the_measured_precision_difference_and_the_unmeasured_rest():
    """At budget 1 each net stands beside the public final-iterate reproduction, with the bf16 check's difference
    (measured at 1/16) for that net; a net the check lacks says so, and a preset below 1 gives no gap."""
    from resnet_repro.paper import FINAL_REPRO

    per_net = pd.DataFrame([dict(arch="resnet20", fraction=1.0, n=1, mean_test_err_pct=12.0, precision="bf16-mixed",
                                 data="lossy JPEG copy of CIFAR-10"),
                            dict(arch="resnet56", fraction=1.0, n=1, mean_test_err_pct=9.0, precision="bf16-mixed",
                                 data="lossy JPEG copy of CIFAR-10"),
                            dict(arch="plain20", fraction=0.25, n=2, mean_test_err_pct=15.0, precision="bf16-mixed",
                                 data="lossy JPEG copy of CIFAR-10")])
    check = pd.DataFrame([dict(arch="resnet20", seed=s, preset=p, final_test_err=e)
                          for p, es in (("short", (0.19, 0.20)), ("short-bf16", (0.195, 0.201))) for s, e in enumerate(es)])
    text = B.gap_markdown(per_net, check)
    d = 12.0 - FINAL_REPRO["resnet20"][0]
    assert f"ours 12.00% (n=1) against {FINAL_REPRO['resnet20'][0]:.2f}" in text and f"{d:+.2f} points" in text
    assert "bf16 − fp32 = +0.30 points at 1/16" in text and "within the seed spread, up to 1.00 points" in text
    assert "ResNet-56:** ours 9.00%" in text and "bf16 against fp32 not measured for this net" in text
    assert "plain-20" not in text  # only at 1/4
    assert "cost of the compression is not measured" in text
    assert "No net of the public reproduction" in B.gap_markdown(per_net[per_net.fraction < 1], check)


def test_the_table6_order_names_each_step_of_depth_and_a_rise_beyond_the_noise():
    """Three or more ResNet depths: each consecutive step is listed with its n and noise; a rise within the noise is
    told apart from one beyond it; fewer than three depths give nothing (claim 2 covers two)."""
    from resnet_repro import claims

    def runs(errs):
        return pd.DataFrame([dict(arch=a, seed=s, final_test_err=e, final_train_err=e, n_test=10_000)
                             for a, es in errs.items() for s, e in enumerate(es)])

    assert claims.ordering(runs({"resnet20": [0.14], "resnet56": [0.12]})) == ""
    falls = claims.ordering(runs({"resnet20": [0.14], "resnet32": [0.12], "resnet56": [0.10]}))
    assert "20→32 -2.00 (n=1→1, beyond the noise); 32→56 -2.00" in falls and "falls at every step" in falls
    flat = claims.ordering(runs({"resnet20": [0.1377] * 3, "resnet44": [0.1241], "resnet56": [0.1266] * 3}))
    assert "44→56 +0.25 (n=1→3, within the noise)" in flat
    assert "**not monotone**: it does not fall from ResNet-44 to ResNet-56, within the noise, so no" in flat
    worse = claims.ordering(runs({"resnet20": [0.14], "resnet32": [0.12], "resnet56": [0.16]}))
    assert "; beyond the noise from ResNet-32 to ResNet-56." in worse
    assert "Table 6 order" in claims.claims_text({"runs": runs({"resnet20": [0.14], "resnet32": [0.12],
                                                                 "resnet56": [0.10]})})


def test_fig7_tells_a_heavy_tail_of_images_from_a_larger_response_and_is_silent_on_old_tables():
    from resnet_repro.fig7_claims import fig7

    def ls(rows):  # arch: (pooled std, median image std, top 1% share), two layers each
        return pd.DataFrame([dict(arch=a, seed=0, layer=l, std=s, std_image_median=m, top1pct_share=t)
                             for a, (s, m, t) in rows.items() for l in (1, 2)])

    tail = ls({"resnet20": (0.8, 0.7, 0.03), "resnet56": (0.55, 0.5, 0.04), "resnet110": (5.14, 0.45, 0.71),
               "plain20": (0.9, 0.85, 0.02)})
    text = fig7(tail)
    assert "the paper's ordering (smaller for deeper nets) is **not** strictly followed" in text  # pooled: 110 > 56
    assert ("mean over layers of the median image's response std, ResNet-20 0.700 (n=1), ResNet-56 0.500 (n=1), "
            "ResNet-110 0.450 (n=1): deeper ResNets **smaller** on this measure.") in text
    assert ("- **4. Fig. 7, ResNet-110** (n=1): mean response std 5.140 pooled, but 0.450 for the median image; the "
            "top 1% of test images carry 71% of the response variance") in text
    assert "ResNet-56** (n" not in text and "plain-20** (n" not in text  # no tail: pooled within 2x of the median
    uniform = ls({"resnet20": (0.8, 0.7, 0.03), "resnet56": (0.9, 0.85, 0.04)})
    assert "deeper ResNets **not** strictly smaller on this measure." in fig7(uniform)
    # the headline's note of claim 4b says the same, where every ResNet has the per-image columns
    assert holds(dict(runs=pd.DataFrame(columns=["arch"]), layer_std=tail))[CLAIMS[5]] == (
        False, "3 depths, seed spread unknown: a net has one seed; median test image: smaller for deeper ResNets")
    assert holds(dict(runs=pd.DataFrame(columns=["arch"]), layer_std=uniform))[CLAIMS[5]][1].endswith(
        "; median test image: not smaller for deeper ResNets")
    old = tail.drop(columns=["std_image_median", "top1pct_share"])  # runs measured before the columns existed
    assert holds(dict(runs=pd.DataFrame(columns=["arch"]), layer_std=old))[CLAIMS[5]][1].endswith("has one seed")
    partly = tail.assign(std_image_median=tail["std_image_median"].where(tail["arch"] != "resnet56"))
    assert holds(dict(runs=pd.DataFrame(columns=["arch"]), layer_std=partly))[CLAIMS[5]][1].endswith("has one seed")
    assert "median" not in fig7(old) and "heavy tail" not in fig7(old)
    assert "median" not in fig7(tail.assign(std_image_median=float("nan"), top1pct_share=float("nan")))
    # several seeds: judged run by run, each seed's numbers stated, and whether the tail repeats
    seed1 = ls({"resnet110": (0.6, 0.44, 0.05)}).assign(seed=1)
    once = fig7(pd.concat([tail, seed1]))
    assert ("- **4. Fig. 7, ResNet-110** (heavy tail in 1 of 2 seeds; mean response std over layers, and the share of "
            "the response variance carried by the top 1% of test images): seed 0: 5.140 pooled, 0.450 for the median "
            "image, top 1% 71%; seed 1: 0.600 pooled, 0.440 for the median image, top 1% 5%: a heavy tail of images "
            "in seed 0 only: it does not repeat in every seed.") in once
    twice = fig7(pd.concat([tail, seed1.assign(std=4.0, top1pct_share=0.6)]))
    assert "(heavy tail in 2 of 2 seeds;" in twice and twice.endswith("in every seed, not a uniformly larger response.")
    shared = pd.DataFrame([dict(arch="resnet110", seed=k, n_images=10000, n_tail=3, tail_share=0.7, tail_err=0.3,
                                test_err=0.13, top_class="airplane", top_class_share=0.5, images=ims)
                           for k, ims in ((0, "1742 442 294"), (1, "442 1742 7"))])
    assert fig7(pd.concat([tail, seed1.assign(std=4.0, top1pct_share=0.6)]), tail=shared).endswith(
        "in every seed, not a uniformly larger response. Tail images that two seeds share: 2 of 3 (seeds 0 and 1).")
    # one seed's tail heavy, the other's not: the images they share are said all the same
    assert fig7(pd.concat([tail, seed1]), tail=shared).endswith(
        "it does not repeat in every seed. Tail images that two seeds share: 2 of 3 (seeds 0 and 1).")
    assert "shared" not in fig7(pd.concat([tail, seed1]), tail=shared[shared.seed == 0])  # one seed measured
    assert "ResNet-110**" not in fig7(pd.concat([tail[tail.arch != "resnet110"], seed1, seed1.assign(seed=2)]))
    # what the tail images are, where the run has its response_tail (collected from response_tail.json)
    images = pd.DataFrame([dict(arch="resnet110", seed=0, n_images=10000, n_tail=100, tail_share=0.78, tail_err=0.35,
                                test_err=0.1286, top_class="airplane", top_class_share=0.56),
                           dict(arch="resnet110", seed=1, n_images=10000, n_tail=100, tail_share=0.05, tail_err=0.2,
                                test_err=0.125, top_class="ship", top_class_share=0.3)])
    assert ("not a uniformly larger response. Those images (the 100 with the largest share over all layers, carrying "
            "78%) are 56% airplane images (each class is a tenth of the test set), and the net gets 35% of them wrong "
            "against 12.9% of all test images.") in fig7(tail, tail=images)
    assert ("seed 0: 5.140 pooled, 0.450 for the median image, top 1% 71% (56% airplane; 35% of them wrong, 12.9% "
            "overall); seed 1: 0.600 pooled, 0.440 for the median image, top 1% 5% (30% ship; 20% of them wrong, "
            "12.5% overall): a heavy tail") in fig7(pd.concat([tail, seed1]), tail=images)
    assert fig7(tail, tail=images.iloc[:0]) == fig7(tail)  # no response_tail.json: nothing said of the images
    # where its images sit among the test images by contrast, saturation and blue excess: beside the other runs' tails
    pct = images.assign(contrast_pct=[72.0, 95.0], chroma_pct=[99.0, 40.0], blue_pct=[100.0, 70.0])
    both = pd.concat([pct, pct.iloc[[1]].assign(arch="resnet20", seed=0, contrast_pct=93.0, chroma_pct=46.0,
                                                blue_pct=98.0)])
    text = fig7(pd.concat([tail, seed1]), tail=both)
    assert ("top 1% 71% (56% airplane; percentiles contrast 72, saturation 99, blue excess 100; 35% of them wrong, "
            "12.9% overall)") in text
    assert text.endswith(
        "red images; not the paper's measure): runs without a heavy tail (n=2), median (range): contrast 94 (93-95), "
        "saturation 43 (40-46), blue excess 84 (70-98); with one: ResNet-110 seed 0: contrast 72, saturation 99, blue excess 100. A "
        "heavy tail's images are among the top 10% of the test images by saturation and blue excess, and lower in "
        "contrast than most other runs' tails.")
    alike = fig7(pd.concat([tail, seed1]), tail=both.assign(chroma_pct=[99.0, 40.0, 95.0]))
    assert alike.endswith("; the tails of ResNet-20 seed 0 are as high, without being heavy by the 2x rule.")
    plain = fig7(pd.concat([tail, seed1]), tail=both.assign(contrast_pct=50.0, chroma_pct=50.0, blue_pct=50.0))
    assert plain.endswith("blue excess 50. No measure puts a heavy tail's images among the top 10% of the test images.")
    assert ("; by median percentile among the test images: contrast 72, saturation 99, blue excess 100.") in fig7(
        tail, tail=pct.iloc[[0]])
    nan = {c: float("nan") for c in ("contrast_pct", "chroma_pct", "blue_pct")}
    assert "percentile" not in fig7(pd.concat([tail, seed1]), tail=pct.iloc[[0]].assign(**nan))
    # the heavy tail's images in the other nets' top 1%: the most over each net's seeds, ResNets first, by depth
    others = pd.concat([shared, shared.assign(arch="resnet56", seed=[0, 1], images=["1742 442 8", "9 10 11"]),
                        shared.iloc[[0]].assign(arch="plain110", images="5 6 7")])
    assert ("- **4. Fig. 7, ResNet-110 seed 0's tail images in the other nets** (how many of its 3 are in each net's "
            "top 1%, the most over its seeds; two random sets would share about 0): ResNet-56 2, plain-110 0.") in fig7(
        pd.concat([tail, seed1]), tail=others)
    assert "in the other nets" not in fig7(pd.concat([tail, seed1]), tail=shared.iloc[[0]])  # no other net's tail
    unmeasured = pd.concat([both, both.iloc[[2]].assign(arch="resnet32")])  # no layer stds: in neither group
    assert fig7(pd.concat([tail, seed1]), tail=unmeasured) == text


def test_plain110_is_stated_against_the_papers_60_percent_as_a_result_and_only_once_it_ran():
    from resnet_repro.claims import claims_text, plain110

    def runs(rows):
        return pd.DataFrame([dict(arch=a, seed=k, final_test_err=te, final_train_err=tr, warmup_switched_at=sw,
                                  diverged=d) for a, k, te, tr, sw, d in rows])

    assert plain110(runs([("resnet20", 0, 0.14, 0.08, None, False)]), "quarter") == ""
    assert plain110(pd.DataFrame(), "quarter") == ""
    stuck = runs([("plain110", 0, 0.90, 0.90, 8000, False)])  # never below 80%: the warm-up ends at the first lr step
    assert plain110(stuck, "quarter") == (
        "- **plain-110 (Fig. 6 caption: its error is above 60%, not plotted):** 90.00% test error and 90.00% training "
        "error (n=1); its warm-up (lr 0.01 until the training error is below 80%) ended at iteration 8,000 (the first "
        "lr step: the training error never fell below 80%): **reproduced**, above 60%.")
    trained = runs([("plain110", 0, 0.30, 0.25, 400, False), ("plain110", 1, 0.40, 0.35, 600, False)])
    text = plain110(trained, "quarter")
    assert "35.00% test error and 30.00% training error (n=2)" in text and "iteration 400, 600:" in text
    assert text.endswith("**not reproduced**: below 60% here.") and "first lr step" not in text
    assert "diverged" in plain110(runs([("plain110", 0, None, None, None, True)]), "quarter")
    t = dict(runs=stuck.assign(depth=110), curves=pd.DataFrame(columns=["arch", "seed", "iteration", "metric", "value"]))
    assert "plain-110 (Fig. 6 caption" in claims_text(t, "quarter")
