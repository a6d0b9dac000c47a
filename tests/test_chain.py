"""The chain after training: analyze (layer responses), collect, figures, notebooks, report."""

from __future__ import annotations

import json
import math

import nbformat
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from resnet_repro import analyze, collect, data, fig7_claims, hardware, hooks
from resnet_repro.cli import main
from resnet_repro.models import build_model
from resnet_repro.studies import degradation, responses

from conftest import randomize_bn


# ----------------------------------------------------------------------------- analyze: the hooks


def _manual_responses(model, x):
    """Recompute every block's BN outputs by hand, without hooks."""
    out = []
    h = model.stem(x)
    for stage in model.stages:
        for block in stage:
            r1 = block.conv1(h)
            r2 = block.conv2(F.relu(r1))
            out += [r1, r2]
            h = block(h)
    return out


@pytest.mark.parametrize("arch", ["resnet8", "plain8"])
def test_hooks_capture_one_response_per_3x3_conv_and_match_manual_std(arch):
    torch.manual_seed(0)
    model = randomize_bn(build_model(arch)).eval()
    x = torch.randn(12, 3, 32, 32)
    batches = [(x[:5], None), (x[5:], None)]  # two batches: the sums must accumulate across them
    df = hooks.layer_stds(model, batches)
    n_3x3 = sum(1 for m in model.stages.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3))
    assert len(df) == n_3x3 == 6
    assert list(df.columns) == hooks.LAYER_STD_COLUMNS
    assert list(df.layer) == [1, 2, 3, 4, 5, 6]
    assert list(zip(df.stage, df.block, df.conv)) == [(1, 1, 1), (1, 1, 2), (2, 1, 1), (2, 1, 2), (3, 1, 1), (3, 1, 2)]
    with torch.no_grad():
        manual = _manual_responses(model, x)
    for got, r in zip(df.itertuples(), manual):
        r = r.double()
        assert got.std == pytest.approx(r.std(unbiased=False).item(), rel=1e-9)
        per_channel = r.transpose(0, 1).reshape(r.shape[1], -1).std(1, unbiased=False).mean().item()
        assert got.std_channel_mean == pytest.approx(per_channel, rel=1e-9)
        d = (r - r.mean()).pow(2).mean((1, 2, 3)).sqrt()  # each image's rms deviation from the pooled mean
        assert got.std_image_median == pytest.approx(d.median().item(), rel=1e-9)
        assert got.top1pct_share == pytest.approx((d.max() ** 2 / (d ** 2).sum()).item(), rel=1e-9)  # 1 of 12
    # The hooks are removed afterwards.
    assert all(not m._forward_hooks for m in model.modules())


def test_a_heavy_tail_of_images_raises_the_pooled_std_but_not_the_median_image_std():
    torch.manual_seed(0)
    model = randomize_bn(build_model("resnet8")).eval()
    x = torch.randn(200, 3, 32, 32)
    calm = hooks.layer_stds(model, [(x, None)])
    x[:2] *= 100  # two images out of 200 with huge inputs: 1% of the set
    tail = hooks.layer_stds(model, [(x[:50], None), (x[50:], None)])
    assert (tail["std"] > 5 * calm["std"]).all()
    assert (tail["std_image_median"] < 1.5 * calm["std_image_median"]).all()
    assert (tail["top1pct_share"] > 0.9).all() and (calm["top1pct_share"] < 0.2).all()
    # The identity that ties the columns together: the pooled variance is the mean of the images' squared d_i.
    assert (tail["std_image_median"] < tail["std"]).all()
    # The images it consists of: their mean share over the layers names them, largest first.
    stats = hooks.ResponseStats(model)
    with torch.no_grad():
        model(x)
    stats.remove()
    shares = stats.image_shares()
    assert shares.sum() == pytest.approx(1.0) and shares[:2].sum() > 0.9
    pct = {m: np.arange(200) / (2 + k) for k, m in enumerate(analyze.INPUT_MEASURES)}
    got = analyze.tail_images(shares, torch.arange(200) % 10, pct)
    assert sorted(got["images"]) == [0, 1] and got["labels"] == [i % 10 for i in got["images"]]
    for k, m in enumerate(analyze.INPUT_MEASURES):  # each tail image's own percentiles
        assert got[f"{m}_pct"] == [round(i / (2 + k), 2) for i in got["images"]]
    assert got["shares"][0] >= got["shares"][1] and got["tail_share"] == pytest.approx(shares[:2].sum())
    assert got["n_images"] == 200 and got["fraction"] == 0.01


def test_input_percentiles_rank_the_images_by_contrast_saturation_and_blue():
    x = np.full((5, 4, 4, 3), 128, dtype=np.uint8)  # a flat grey image (index 0), then rising contrast, colour, blue
    x[1, :2] = 0  # contrast: half black, grey (no colour)
    x[2, :, :, 0], x[2, :, :, 2] = 200, 60  # red: saturated, blue below red
    x[3, :, :, 2], x[3, :, :, 0] = 200, 60  # blue: as saturated, blue above red
    x[4] = 0
    x[4, :, :, 2] = 255  # pure blue: the most saturated, the bluest and (0, 0, 255 pooled) the most contrasted
    raw = analyze.input_measures(x)
    assert raw["chroma"][3] == raw["chroma"][2] == pytest.approx(140) and raw["blue"][3] == -raw["blue"][2] == 140
    pct = analyze.input_percentiles(x)
    assert list(pct["blue"]) == pytest.approx([30, 50, 10, 70, 90])  # mid-ranks 100 * (rank + 0.5) / 5; ties by index
    assert list(pct["chroma"]) == pytest.approx([10, 30, 50, 70, 90])
    assert pct["contrast"][4] == pytest.approx(90) and pct["contrast"][0] == pytest.approx(10)
    assert analyze.input_percentiles(x[::-1])["blue"][0] == pytest.approx(90)  # the image, not its index, sets it


def test_a_tail_from_before_the_input_percentiles_gets_them_without_an_inference_pass(tmp_path, monkeypatch):
    from types import SimpleNamespace

    old = dict(arch="resnet110", seed=0, commit="abc", images=[2, 0], shares=[0.5, 0.2], labels=[1, 3],
               contrast_pct=[1.0, 2.0], contrast_added=dict(commit="abc"))  # a first backfill of the contrast alone
    for f, text in (("response_tail.json", json.dumps(old)), ("test_wrong.json", "{}")):
        (tmp_path / f).write_text(text)
    pd.DataFrame(columns=hooks.LAYER_STD_COLUMNS).to_csv(tmp_path / "layer_std.csv", index=False)
    assert not analyze.current(tmp_path, "response_tail.json")
    x = np.zeros((4, 2, 2, 3), dtype=np.uint8)
    x[2, :, :, 2] = 255  # the one blue image: the top percentile (87.5) by every measure; the black ones tie by index
    arrays = SimpleNamespace(test_x=x, source="imagefolder-jpeg (lossy)")
    monkeypatch.setattr(analyze, "run_config", lambda run: None)
    monkeypatch.setattr(analyze, "load_final_model", lambda *a: pytest.fail("no net is needed for the percentiles"))
    assert analyze.analyze_run(tmp_path, arrays, torch.device("cpu")) is None
    new = json.loads((tmp_path / "response_tail.json").read_text())
    assert all(new[f"{m}_pct"] == [87.5, 12.5] for m in analyze.INPUT_MEASURES)
    assert analyze.current(tmp_path, "response_tail.json") and "contrast_added" not in new
    assert {k: new[k] for k in old if not k.startswith("contrast")} == {
        k: v for k, v in old.items() if not k.startswith("contrast")}  # the measurement itself is kept as it was
    assert new["inputs_added"]["data_source"] == "imagefolder-jpeg (lossy)" and new["inputs_added"]["commit"]


def test_the_tail_gallery_says_where_the_test_images_are_missing(tmp_path):
    tail = pd.DataFrame([dict(arch="resnet110", seed=k, tail_share=share) for k, share in ((0, 0.3), (1, 0.8))])
    for k, where in ((0, str(tmp_path)), (1, str(tmp_path / "gone"))):
        rd = tmp_path / "results" / "quarter" / "runs" / "resnet110" / f"seed{k}"
        rd.mkdir(parents=True)
        (rd / "response_tail.json").write_text(json.dumps(dict(images=[1, 2], data_path=where)))
    # the run whose tail carries the largest share is shown: seed 1, whose data folder this machine lacks
    assert responses.tail_gallery(tmp_path / "results", "quarter", tail) == (
        f"_The test images are not on this machine (`{tmp_path / 'gone'}`, where the analysis of resnet110 seed 1 read "
        "them)._")
    assert "No run has" in responses.tail_gallery(tmp_path / "results", "quarter", tail.iloc[:0])
    # a folder at that path that holds no CIFAR-10: said, not a failed notebook
    assert responses.tail_gallery(tmp_path / "results", "quarter", tail.iloc[:1]).startswith(
        f"_The test images could not be read from `{tmp_path}`: ")


def test_a_layer_std_table_from_before_the_tail_columns_is_measured_again_and_test_wrong_kept(tmp_path):
    (tmp_path / "test_wrong.json").write_text("{}")
    old = pd.DataFrame(dict(layer=[1], stage=[1], block=[1], conv=[1], std=[1.0], std_channel_mean=[0.9]))
    old.to_csv(tmp_path / "layer_std.csv", index=False)
    assert not analyze.current(tmp_path, "layer_std.csv") and analyze.current(tmp_path, "test_wrong.json")
    old.assign(std_image_median=0.8, top1pct_share=0.02).to_csv(tmp_path / "layer_std.csv", index=False)
    assert analyze.current(tmp_path, "layer_std.csv") and not analyze.current(tmp_path, "lesion.csv")
    assert not analyze.current(tmp_path, "response_tail.json") and "response_tail.json" in analyze.OUTPUTS


def test_analyze_measures_layer_stds_and_wrong_images_in_one_pass():
    torch.manual_seed(0)
    model = build_model("resnet8").eval()
    x, y = torch.randn(12, 3, 32, 32), torch.randint(0, 10, (12,))
    batches = [(x[:5], y[:5]), (x[5:], y[5:])]
    calls = []
    model.register_forward_pre_hook(lambda m, a: calls.append(len(a[0])))
    df, shares, wrong, n = analyze.measure(model, batches)
    assert calls == [5, 7], "one forward pass per batch for all measurements"
    assert shares.shape == (12,) and shares.sum() == pytest.approx(1.0) and (shares > 0).all()
    with torch.no_grad():
        expect = torch.nonzero(model(x).argmax(1) != y).flatten().tolist()
    assert n == 12 and wrong == expect and 0 < len(wrong) < 12
    pd.testing.assert_frame_equal(df, hooks.layer_stds(model, batches))
    df_none, shares_none, wrong2, _ = analyze.measure(model, batches, stds=False)
    assert df_none is None and shares_none is None and wrong2 == wrong


# ----------------------------------------------------------------------------- collect on synthetic runs


def _fake_run(root, preset, arch, seed, test_err, train_err, iters=(10, 20), with_layers=True):
    rd = root / preset / "runs" / arch / f"seed{seed}"
    rd.mkdir(parents=True)
    (rd / "config.json").write_text(json.dumps(dict(arch=arch, seed=seed, preset=preset)))
    rows = [dict(iteration=i, lr=0.1, train_loss=1.0, train_err=train_err + 0.1 * (i < iters[-1]),
                 test_loss=1.1, test_err=test_err + 0.1 * (i < iters[-1]), elapsed_s=float(i)) for i in iters]
    pd.DataFrame(rows).to_csv(rd / "metrics.csv", index=False)
    from resnet_repro.models import parse_arch

    cfg = parse_arch(arch)
    (rd / "final.json").write_text(json.dumps(dict(
        arch=arch, seed=seed, depth=cfg.depth, residual=cfg.residual, shortcut=cfg.shortcut, params=123,
        final_test_err=test_err, final_train_err=train_err, iterations=iters[-1], wall_time_s=60.0,
        iters_per_s=1.0, warmup_switched_at=None, device="cpu", commit="abc", data_source="imagefolder-jpeg (lossy)",
        torch="x", lightning="y", preset=preset, scaled_down=True, n_train=100, n_test=50)))
    if with_layers:
        pd.DataFrame(dict(layer=[1, 2], stage=[1, 1], block=[1, 1], conv=[1, 2], std=[1.0, 2.0],
                          std_channel_mean=[0.9, 1.8])).to_csv(rd / "layer_std.csv", index=False)
    return rd


def test_collect_builds_the_tables(tmp_path):
    _fake_run(tmp_path, "short", "resnet20", 0, 0.10, 0.05)
    _fake_run(tmp_path, "short", "resnet20", 1, 0.12, 0.04)
    _fake_run(tmp_path, "short", "resnet20", 2, 0.14, 0.03, with_layers=False)
    _fake_run(tmp_path, "short", "plain56", 0, 0.20, 0.15)
    # an interrupted run: metrics but no final.json
    part = tmp_path / "short" / "runs" / "plain20" / "seed0"
    part.mkdir(parents=True)
    pd.DataFrame([dict(iteration=200, lr=0.1, train_loss=1, train_err=0.5, test_loss=1, test_err=0.5,
                       elapsed_s=1.0)]).to_csv(part / "metrics.csv", index=False)

    collect.collect("short", tmp_path)
    for name in ("runs", "table6", "curves", "layer_std", "status"):
        assert (tmp_path / "short" / f"{name}.csv").is_file()
    label = (tmp_path / "short" / "LABEL.md").read_text()
    assert "scaled-down" in label and "1/16" in label and "lossy JPEG copy" in label
    runs = pd.read_csv(tmp_path / "short" / "runs.csv")
    assert list(runs.columns) == collect.RUN_COLUMNS
    assert len(runs) == 4 and set(runs.arch) == {"resnet20", "plain56"}

    t6 = pd.read_csv(tmp_path / "short" / "table6.csv").set_index("arch")
    assert list(t6.reset_index().columns) == degradation.TABLE6_COLUMNS
    r20 = t6.loc["resnet20"]
    assert r20.n == 3
    assert r20.mean_test_err_pct == pytest.approx(12.0)
    assert r20.std_test_err_pct == pytest.approx(np.std([10, 12, 14], ddof=1))
    assert r20.min_test_err_pct == pytest.approx(10.0) and r20.max_test_err_pct == pytest.approx(14.0)
    assert r20.paper_test_err_pct == pytest.approx(8.75)
    assert t6.loc["plain56"].n == 1 and math.isnan(t6.loc["plain56"].std_test_err_pct)
    assert math.isnan(t6.loc["plain56"].paper_test_err_pct)

    curves = pd.read_csv(tmp_path / "short" / "curves.csv")
    assert list(curves.columns) == collect.CURVE_COLUMNS
    one = curves[(curves.arch == "resnet20") & (curves.seed == 1) & (curves.metric == "test_err")]
    assert list(one.iteration) == [10, 20] and list(one.value) == pytest.approx([0.22, 0.12])
    assert "elapsed_s" not in set(curves.metric)
    assert "plain20" not in set(curves.arch)  # an unfinished run adds no curve: its folder is never committed

    ls = pd.read_csv(tmp_path / "short" / "layer_std.csv")
    assert len(ls) == 6  # three finished runs with layer_std.csv, two layers each
    assert set(zip(ls.arch, ls.seed)) == {("resnet20", 0), ("resnet20", 1), ("plain56", 0)}

    status = pd.read_csv(tmp_path / "short" / "status.csv").set_index(["arch", "seed"])
    assert status.loc[("plain20", 0)].status == "partial"
    assert status.loc[("plain20", 0)].iterations_logged == 200
    assert status.loc[("resnet56", 0)].status == "missing"
    assert status.loc[("resnet20", 0)].status == "done"

    # FINISHED_ONLY=1, for committing while a campaign trains: the unfinished folder is as absent as from a clone
    collect.collect("short", tmp_path, finished_only=True)
    status = pd.read_csv(tmp_path / "short" / "status.csv").set_index(["arch", "seed"])
    assert status.loc[("plain20", 0)].status == "missing" and status.loc[("plain20", 0)].iterations_logged == 0
    assert status.loc[("resnet20", 0)].status == "done"


def test_collect_on_nothing_writes_empty_tables(tmp_path):
    t = collect.collect("short", tmp_path)
    assert t["runs"].empty and t["table6"].empty
    assert set(t["status"].status) == {"missing"}
    loaded = collect.load_collected("paper", tmp_path)  # never collected: empty frames, right columns
    assert list(loaded["runs"].columns) == collect.RUN_COLUMNS


# ----------------------------------------------------------------------------- the whole smoke chain


def test_smoke_chain_writes_notebooks_and_report(full_cifar_dir, tmp_path, capsys):
    results, figures, report = tmp_path / "results", tmp_path / "figures", tmp_path / "report"
    common = ["--preset", "smoke", "--data-dir", str(full_cifar_dir), "--out", str(results), "--accelerator", "cpu",
              "--max-steps", "4", "--eval-every", "2", "--milestones", "2,3", "--train-subset", "512",
              "--test-subset", "256"]
    for arch in ("plain20", "resnet20"):
        assert main(["train", "--arch", arch] + common) == 0
    assert main(["analyze", "--preset", "smoke", "--results", str(results), "--data-dir", str(full_cifar_dir)]) == 0
    for arch in ("plain20", "resnet20"):
        ls = pd.read_csv(results / "smoke" / "runs" / arch / "seed0" / "layer_std.csv")
        assert len(ls) == 18 and (ls["std"] > 0).all()
        # the test images it gets wrong, in test-set order: as many as its error on the whole test set says
        w = json.loads((results / "smoke" / "runs" / arch / "seed0" / "test_wrong.json").read_text())
        assert w["n_test"] == 10_000 and len(w["wrong"]) == round(w["test_err"] * 10_000) > 0
        assert w["wrong"] == sorted(set(w["wrong"])) and 0 <= min(w["wrong"]) and max(w["wrong"]) < 10_000
        # provenance, as every measurement on final weights records it; the device names the CPU model
        final = json.loads((results / "smoke" / "runs" / arch / "seed0" / "final.json").read_text())
        assert w["commit"] == final["commit"] and w["data_source"] == final["data_source"] and w["torch"]
        assert w["device"] == final["device"] == hardware.device_name(torch.device("cpu"))
        assert hardware.cpu_model() in w["device"] and final["session_devices"] == [final["device"]]
        # the 1% of test images with the largest share of the response variance, largest first, with their labels
        rt = json.loads((results / "smoke" / "runs" / arch / "seed0" / "response_tail.json").read_text())
        assert rt["n_images"] == 10_000 and len(rt["images"]) == len(set(rt["images"])) == 100 == len(rt["labels"])
        assert rt["shares"] == sorted(rt["shares"], reverse=True) and rt["tail_share"] == pytest.approx(
            sum(rt["shares"]), rel=1e-5) and 0.01 < rt["tail_share"] < 1 and rt["commit"] == final["commit"]
        assert all(len(rt[f"{m}_pct"]) == 100 and all(0 < p <= 100 for p in rt[f"{m}_pct"])
                   for m in analyze.INPUT_MEASURES)
    assert main(["collect", "--preset", "smoke", "--results", str(results)]) == 0
    tails = collect.load_collected("smoke", results)["response_tail"].set_index("arch")
    assert sorted(tails.index) == ["plain20", "resnet20"] and (tails.n_tail == 100).all()
    r = tails.loc["resnet20"]
    wrong = set(json.loads((results / "smoke" / "runs" / "resnet20" / "seed0" / "test_wrong.json").read_text())["wrong"])
    rt = json.loads((results / "smoke" / "runs" / "resnet20" / "seed0" / "response_tail.json").read_text())
    assert r.tail_err == pytest.approx(sum(i in wrong for i in rt["images"]) / 100)
    assert r.test_err == pytest.approx(len(wrong) / 10_000) and r.top_class in data.CIFAR10_CLASSES
    assert r.top_class_share == pytest.approx(max(rt["labels"].count(c) for c in set(rt["labels"])) / 100)
    assert [int(i) for i in r.images.split()] == rt["images"]
    assert all(r[f"{m}_pct"] == pytest.approx(np.median(rt[f"{m}_pct"])) for m in analyze.INPUT_MEASURES)
    # what the tail looks like: the images, read from the data folder the analysis read (notebook 03)
    png = responses.tail_gallery(results, "smoke", collect.load_collected("smoke", results)["response_tail"])
    assert isinstance(png, bytes) and png[:8] == b"\x89PNG\r\n\x1a\n"
    tw = collect.load_collected("smoke", results)["test_wrong"]
    assert sorted(tw.arch) == ["plain20", "resnet20"] and (tw.n_test == 10_000).all()
    assert len(tw.wrong.iloc[0].split()) == round(json.loads((results / "smoke" / "runs" / tw.arch.iloc[0] / "seed0"
                                                               / "test_wrong.json").read_text())["test_err"] * 10_000)
    assert main(["figures", "--preset", "smoke", "--results", str(results), "--figures", str(figures)]) == 0
    nb_dir = tmp_path / "notebooks"
    assert main(["notebooks", "--preset", "smoke", "--results", str(results), "--figures", str(figures),
                 "--notebooks", str(nb_dir)]) == 0
    assert main(["report", "--preset", "smoke", "--results", str(results), "--figures", str(figures),
                 "--report", str(report)]) == 0

    written = sorted((nb_dir / "smoke").glob("*.ipynb"))
    assert len(written) >= 3
    for f in written:
        name = f.stem
        nb = nbformat.read(f, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code and all(c.get("execution_count") for c in code), f"{name} not executed"
        errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{name} has error cells: {errors[:1]}"
        assert any(c.get("outputs") for c in code)
        # a rerun on the same CSVs writes the same file: fixed cell ids, no execution timestamps
        assert [c.id for c in nb.cells] == [f"cell-{i}" for i in range(len(nb.cells))]
        assert not any("execution" in c.metadata for c in nb.cells)

    md = (report / "smoke" / "report.md").read_text()
    assert "| resnet20" in md or "ResNet-20" in md  # the Table 6 rows
    assert "±" in md and "8.75" in md  # our column format and the paper's number
    assert "scaled-down" in md and "official CIFAR-10 python batches" in md  # scale and data labels
    # Issue 20: a pipeline check evaluates no claim.
    assert "No claim is evaluated" in md and "reproduced**" not in md.lower() and "beats" not in md
    links = [l.split("](", 1)[1].split(")", 1)[0] for l in md.splitlines() if "](" in l]
    pngs = [l for l in links if l.endswith((".png", ".pdf"))]
    assert pngs, "the report links no figures"
    for link in pngs:
        assert (report / "smoke" / link).resolve().is_file(), f"broken link {link}"
    html = (report / "smoke" / "report.html").read_text()
    assert "data:image/png;base64," in html and "<table" in html


def test_a_diverged_run_is_a_result_not_a_crash(full_cifar_dir, tmp_path):
    """Issue 18 (plain-110 may not train): a run whose loss turns NaN goes through analysis, collect, figures and
    report, and is reported as diverged, its responses left out of Fig. 7's comparison."""
    results = tmp_path / "results"
    common = ["--preset", "smoke", "--data-dir", str(full_cifar_dir), "--accelerator", "cpu"]
    assert main(["train", "--arch", "plain20", "--lr", "1e37", "--max-steps", "4", "--eval-every", "2",
                 "--milestones", "2,3", "--train-subset", "512", "--test-subset", "256", "--out", str(results)]
                + common) == 0
    rest = ["--preset", "smoke", "--results", str(results)]
    for cmd in (["analyze"], ["lesion"], ["gradflow", "--final-only"]):
        assert main(cmd + rest + ["--data-dir", str(full_cifar_dir)]) == 0, cmd
    assert main(["collect"] + rest) == 0
    assert main(["figures"] + rest + ["--figures", str(tmp_path / "fig")]) == 0
    assert main(["report"] + rest + ["--figures", str(tmp_path / "fig"), "--report", str(tmp_path / "rep")]) == 0
    t = collect.load_collected("smoke", results)
    assert t["runs"]["diverged"].tolist() == [True] and t["runs"]["final_test_err"].iloc[0] > 0.8
    assert "diverged (training loss not finite" in (tmp_path / "fig" / "smoke" / "table6.md").read_text()
    assert "plain20 seed 0 (diverged)" in (tmp_path / "rep" / "smoke" / "report.md").read_text()
    ls = pd.concat([t["layer_std"], t["layer_std"].assign(arch="resnet20", std=1.0)])
    text = fig7_claims.fig7(ls, "short")
    assert "left out, responses not finite (the run diverged): plain20" in text and "nan" not in text
