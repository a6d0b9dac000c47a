"""Claim 4 of claims.py, the paper's Fig. 7: residual responses smaller than plain ones at each depth (4a), and
smaller for deeper ResNets (4b), on the mean over layers of each net's pooled response std (as the paper measures),
seeds pooled. The seed spread is the only noise measure: the pooled std over 10,000 test images has no sampling noise
worth the name. Beside the claim, not deciding it: how the pooled std spreads over the test images (the median image's
std, the top 1%'s share of the variance; analyze.py), which tells a heavy tail of a few images from a uniformly larger
response.

Everything here reads the collected layer_std table; claims.py gathers these verdicts with the others.
"""

from __future__ import annotations

import math

import pandas as pd

from .config import PIPELINE_CHECK_TEXT, is_pipeline_check
from .models import CIFAR_DEPTHS, parse_arch
from .wording import net_name


def fig7(layer_std: pd.DataFrame, preset: str | None = None, tail: pd.DataFrame | None = None) -> str:
    """Residual vs plain mean response std per depth, and across ResNet depths (seeds pooled per net); a heavy tail
    of images named, with what its images are where `tail` (the collected response_tail table) has the run."""
    if preset is not None and is_pipeline_check(preset):
        return PIPELINE_CHECK_TEXT
    if layer_std.empty:
        return "- **4. Fig. 7:** no layer-response stds yet (they need finished runs with checkpoints: `make analyze`)."
    m = layer_std.groupby("arch")["std"].mean()
    n = layer_std.groupby("arch")["seed"].nunique()
    bad = sorted(a for a, v in m.items() if not pd.notna(v) or abs(v) == float("inf"))
    m = m.drop(bad)  # a diverged run's responses are not finite: nothing to compare
    lines = [f"- **4. Fig. 7:** left out, responses not finite (the run diverged): {', '.join(bad)}."] if bad else []
    for ra, pa in fig7_pairs(m.index)[0]:
        r, p = m[ra], m[pa]
        b = _beyond_spread(layer_std, [(ra, pa)])
        noise = ("one seed of a net, so the seed spread is not measured" if b is None else
                 f"the difference is {'larger' if b else '**not larger**'} than the seed spread")
        lines.append(f"- **4. Fig. 7, {ra[len('resnet'):]} layers:** mean response std {r:.3f} (ResNet, n={n[ra]}) vs "
                     f"{p:.3f} (plain, n={n[pa]}): residual responses are "
                     f"{'**smaller**' if r < p else '**not smaller**'} (ratio {r / p:.2f}; {noise}).")
    res = [(d, m[f"resnet{d}"]) for d in CIFAR_DEPTHS if f"resnet{d}" in m]
    if len(res) >= 2:
        decreasing = all(a[1] > b[1] for a, b in zip(res, res[1:]))
        lines.append("- **4. Fig. 7, across ResNet depths:** mean std " + ", ".join(f"ResNet-{d} {v:.3f}" for d, v in res)
                     + (": deeper ResNets have **smaller** responses, as the paper reports." if decreasing
                        else ": the paper's ordering (smaller for deeper nets) is **not** strictly followed."))
    lines += _tail(layer_std.drop(layer_std.index[layer_std["arch"].isin(bad)]), tail)
    return "\n".join(lines) if lines else "- **4. Fig. 7:** not enough runs with layer stds to compare plain and residual nets."


HEAVY_TAIL = 2.0  # a net's pooled std this many times its median image's is called a heavy tail of images


# response_tail.csv's input percentiles (analyze.input_percentiles), as the report names them
INPUTS = {"contrast_pct": "contrast", "chroma_pct": "saturation", "blue_pct": "blue excess"}
INPUTS_TEXT = ("median percentile of a run's tail images among the test images, 50 typical: contrast, the std of an "
               "image's pixel values; saturation, per pixel the largest channel minus the smallest; blue excess, mean "
               "blue minus mean red, low for red images")
TOP = 90  # a tail whose median percentile by a measure is at least this is among the top 10% of images by it


def _pcts(r: pd.Series) -> str:
    """'contrast 72, saturation 99, blue excess 100' for a row of response_tail.csv; empty before the columns."""
    return ", ".join(f"{w} {r[c]:.0f}" for c, w in INPUTS.items() if pd.notna(r.get(c)))


def _images(tail: pd.DataFrame | None, arch: str, seed: int, long: bool) -> str:
    """What the run's tail images are (response_tail.csv): their commonest class, the net's error on them against
    its error on the whole test set, and their input percentiles. Empty where the run has no response_tail.json."""
    rows = pd.DataFrame() if tail is None or tail.empty else tail[(tail["arch"] == arch) & (tail["seed"] == seed)]
    if rows.empty:
        return ""
    r = rows.iloc[0]
    pcts = _pcts(r)
    if not long:
        return (f" ({100 * r['top_class_share']:.0f}% {r['top_class']}" + (f"; percentiles {pcts}" if pcts else "")
                + f"; {100 * r['tail_err']:.0f}% of them wrong, {100 * r['test_err']:.1f}% overall)")
    return (f" Those images (the {int(r['n_tail'])} with the largest share over all layers, carrying "
            f"{100 * r['tail_share']:.0f}%) are {100 * r['top_class_share']:.0f}% {r['top_class']} images (each class "
            f"is a tenth of the test set), and the net gets {100 * r['tail_err']:.0f}% of them wrong against "
            f"{100 * r['test_err']:.1f}% of all test images"
            + (f"; by median percentile among the test images: {pcts}." if pcts else "."))


def _across(tail: pd.DataFrame | None, heavy: pd.Series) -> list[str]:
    """For each run with a heavy tail, how many of its tail images each other net's top 1% holds (the most over that
    net's seeds): whether the same images lead the responses of other depths, or of plain nets."""
    if tail is None or "images" not in tail:
        return []
    sets = {(r["arch"], int(r["seed"])): set(str(r["images"]).split())
            for _, r in tail.dropna(subset=["images"]).iterrows()}
    lines = []
    for a, k in [run for run, is_heavy in heavy.items() if is_heavy and run in sets]:
        mine, shared = sets[(a, k)], {}
        for (b, _), theirs in sets.items():
            if b != a:
                shared[b] = max(shared.get(b, 0), len(mine & theirs))
        if not shared:
            continue
        n_images = int(tail["n_images"].max())
        order = sorted(shared, key=lambda b: (not parse_arch(b).residual, parse_arch(b).depth, b))
        lines.append(f"- **4. Fig. 7, {net_name(a)} seed {k}'s tail images in the other nets** (how many of its "
                     f"{len(mine)} are in each net's top 1%, the most over its seeds; two random sets would share about "
                     f"{len(mine) ** 2 / n_images:.0f}): " + ", ".join(f"{net_name(b)} {shared[b]}" for b in order) + ".")
    return lines


def _inputs(tail: pd.DataFrame | None, heavy: pd.Series) -> list[str]:
    """What sets a heavy tail's images apart among the test images (response_tail.csv's input percentiles), against
    the tails of the runs without one: the measures by which every heavy tail is among the top 10% of images, those
    by which it sits below most other runs' tails, and the runs whose tail is as high without being heavy."""
    cols = [c for c in INPUTS if tail is not None and c in tail and tail[c].notna().any()]
    if not cols:
        return []
    t = tail.dropna(subset=cols).set_index(["arch", "seed"])
    is_heavy = heavy.reindex(t.index)  # a run missing from `heavy` (no per-image columns) is in neither group
    hv, lt = t[is_heavy.eq(True)], t[is_heavy.eq(False)]
    if hv.empty or lt.empty:
        return []
    top = [c for c in cols if hv[c].min() >= TOP]
    lower = [c for c in cols if hv[c].max() < lt[c].median()]
    alike = [f"{net_name(a)} seed {k}" for (a, k), r in lt.iterrows() if top and all(r[c] >= TOP for c in top)]

    def words(cs):
        return " and ".join(INPUTS[c] for c in cs)

    verdict = (f"a heavy tail's images are among the top 10% of the test images by {words(top)}" if top else
               "no measure puts a heavy tail's images among the top 10% of the test images")
    verdict += f", and lower in {words(lower)} than most other runs' tails" if lower else ""
    verdict += (f"; the tails of {', '.join(alike)} are as high, without being heavy by the {HEAVY_TAIL:g}x rule"
                if alike else "")
    return [f"- **4. Fig. 7, what sets a heavy tail's images apart** ({INPUTS_TEXT}; not the paper's measure): runs "
            f"without a heavy tail (n={len(lt)}), median (range): " + ", ".join(
                f"{INPUTS[c]} {lt[c].median():.0f} ({lt[c].min():.0f}-{lt[c].max():.0f})" for c in cols)
            + "; with one: " + "; ".join(f"{net_name(a)} seed {k}: {_pcts(r)}" for (a, k), r in hv.iterrows())
            + f". {verdict[0].upper()}{verdict[1:]}."]


def _shared(tail: pd.DataFrame | None, arch: str, seeds: list[int]) -> str:
    """How many tail images each pair of the net's seeds share (response_tail.csv's `images`), whether or not a seed's
    tail is heavy: the same images in every seed make the tail a property of those images; different ones, of each
    run."""
    if tail is None or "images" not in tail:
        return ""
    rows = tail[(tail["arch"] == arch) & tail["seed"].isin(seeds) & tail["images"].notna()]
    sets = {int(r["seed"]): set(str(r["images"]).split()) for _, r in rows.iterrows()}
    pairs = [(a, b) for i, a in enumerate(sorted(sets)) for b in sorted(sets)[i + 1:]]
    if not pairs:
        return ""
    return " Tail images that two seeds share: " + ", ".join(
        f"{len(sets[a] & sets[b])} of {min(len(sets[a]), len(sets[b]))} (seeds {a} and {b})" for a, b in pairs) + "."


def _tail(ls: pd.DataFrame, tail: pd.DataFrame | None = None) -> list[str]:
    """How the pooled std (the paper's measure) spreads over the test images: the median image's std per ResNet
    depth, and the nets whose pooled std is a heavy tail of images, judged run by run (with several seeds, each seed's
    numbers and how many show it). Nothing where the runs predate the columns."""
    if "std_image_median" not in ls or ls["std_image_median"].isna().all():
        return []
    measured = ls.dropna(subset=["std_image_median"])  # runs without final weights here keep their old table
    g = measured.groupby("arch")[["std", "std_image_median", "top1pct_share"]].mean()
    n = measured.groupby("arch")["seed"].nunique()
    res = [(d, g.loc[f"resnet{d}", "std_image_median"]) for d in CIFAR_DEPTHS if f"resnet{d}" in g.index]
    lines = []
    if len(res) >= 2:
        decreasing = all(a[1] > b[1] for a, b in zip(res, res[1:]))
        lines.append("- **4. Fig. 7, the median test image** (robust to a tail of images; not the paper's measure): "
                     "mean over layers of the median image's response std, " + ", ".join(
                         f"ResNet-{d} {v:.3f} (n={n[f'resnet{d}']})" for d, v in res) + ": deeper ResNets "
                     + ("**smaller** on this measure." if decreasing else "**not** strictly smaller on this measure."))
    per_run = measured.groupby(["arch", "seed"])[["std", "std_image_median", "top1pct_share"]].mean()
    heavy = per_run["std"] > HEAVY_TAIL * per_run["std_image_median"]  # run by run: a mean over seeds hides which
    for a in sorted(set(heavy[heavy].index.get_level_values("arch")), key=lambda a: (parse_arch(a).depth, a)):
        runs = per_run.loc[a]
        if len(runs) == 1:
            r = runs.iloc[0]
            lines.append(f"- **4. Fig. 7, {net_name(a)}** (n=1): mean response std {r['std']:.3f} pooled, but "
                         f"{r['std_image_median']:.3f} for the median image; the top 1% of test images carry "
                         f"{100 * r['top1pct_share']:.0f}% of the response variance (mean over layers): a heavy tail "
                         "of images, not a uniformly larger response." + _images(tail, a, int(runs.index[0]), True))
            continue
        tailed = [int(k) for k in runs.index if heavy[(a, k)]]
        seeds = "; ".join(f"seed {int(k)}: {r['std']:.3f} pooled, {r['std_image_median']:.3f} for the median image, "
                          f"top 1% {100 * r['top1pct_share']:.0f}%" + _images(tail, a, int(k), False)
                          for k, r in runs.iterrows())
        lines.append(f"- **4. Fig. 7, {net_name(a)}** (heavy tail in {len(tailed)} of {len(runs)} seeds; mean response "
                     f"std over layers, and the share of the response variance carried by the top 1% of test images): "
                     f"{seeds}: " + ("a heavy tail of images in every seed, not a uniformly larger response."
                                     if len(tailed) == len(runs) else
                                     f"a heavy tail of images in seed {', '.join(map(str, tailed))} only: it does not "
                                     "repeat in every seed.") + _shared(tail, a, [int(k) for k in runs.index]))
    return lines + _across(tail, heavy) + _inputs(tail, heavy)


def finite_mean_std(ls: pd.DataFrame) -> pd.Series:
    """Mean response std per arch (seeds pooled); NaN and inf (a diverged run) left out: they compare as nothing."""
    m = ls.groupby("arch")["std"].mean() if not ls.empty else pd.Series(dtype=float)
    return m[m.abs() < float("inf")]


def fig7_pairs(archs) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The Fig. 7 comparisons among `archs`: (ResNet vs plain at each depth with both, consecutive ResNet depths)."""
    have = set(archs)
    vs_plain = [(f"resnet{d}", f"plain{d}") for d in CIFAR_DEPTHS if f"resnet{d}" in have and f"plain{d}" in have]
    res = [f"resnet{d}" for d in CIFAR_DEPTHS if f"resnet{d}" in have]
    return vs_plain, list(zip(res, res[1:]))


def _median_image_order(ls: pd.DataFrame, across: list[tuple[str, str]]) -> bool | None:
    """Claim 4b on the median image's std (_tail) instead of the pooled one; None unless every net has it."""
    if not across or "std_image_median" not in ls:
        return None
    g = ls.groupby("arch")["std_image_median"].agg(lambda v: v.mean() if v.notna().all() else math.nan)
    nets = {a for pair in across for a in pair}
    return None if g.reindex(list(nets)).isna().any() else all(g[a] > g[b] for a, b in across)


def _noise(ls: pd.DataFrame, pairs: list[tuple[str, str]]) -> str:
    by_pair = _pair_spreads(ls, pairs)
    kinds = set(by_pair.values())
    if kinds == {None} or not kinds:
        return ", seed spread unknown: a net has one seed"
    if len(kinds) == 1:
        return ", beyond the seed spread" if kinds == {True} else ", within the seed spread"
    # Mixed: say which pair is which, as a verdict over all of them would hide the measured ones.
    same_depth = all(parse_arch(a).depth == parse_arch(b).depth for a, b in by_pair)
    parts = []
    for v, what in ((True, "beyond the seed spread"), (False, "within the seed spread"), (None, "one seed")):
        names = [str(parse_arch(a).depth) if same_depth else f"{parse_arch(a).depth}\u2192{parse_arch(b).depth}"
                 for (a, b), k in by_pair.items() if k is v]
        if names:
            listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
            parts.append(f"{what} at {listed}" + (" layers" if same_depth else ""))
    return ", " + "; ".join(parts)


def _pair_spreads(ls: pd.DataFrame, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], bool | None]:
    """Fig. 7 (4a, 4b), each pair: is its difference of mean response std larger than the seed spread (max - min over
    seeds of a net's mean std) of its two nets? None with fewer than two seeds of a net: the pooled std over 10,000
    test images has no sampling noise worth the name, so the seeds are the only noise measure."""
    if ls.empty or not pairs:
        return {}
    per_seed = ls.groupby(["arch", "seed"])["std"].mean().groupby("arch")
    spread = (per_seed.max() - per_seed.min()).where(per_seed.size() >= 2)
    mean = per_seed.mean()
    return {(a, b): None if pd.isna(spread.get(a)) or pd.isna(spread.get(b)) else
            bool(abs(mean[a] - mean[b]) > max(spread[a], spread[b])) for a, b in pairs}


def _beyond_spread(ls: pd.DataFrame, pairs: list[tuple[str, str]]) -> bool | None:
    """Is every pair beyond its seed spread? False as soon as one measured pair is not (whatever the unmeasured ones
    show), None while a pair is unmeasured and none has failed."""
    by_pair = _pair_spreads(ls, pairs)
    if not by_pair:
        return None
    if False in by_pair.values():
        return False
    return None if None in by_pair.values() else True


def holds(ls: pd.DataFrame) -> tuple[tuple[bool | None, str], tuple[bool | None, str]]:
    """Claims 4a and 4b (claims.CLAIMS) on one preset's layer_std table: (True/False, or None when undecidable; a note
    with n and whether the difference beats the seed spread), as claims.holds gives the others."""
    m = finite_mean_std(ls)
    vs_plain, across = fig7_pairs(m.index)
    a4 = (None, "no plain/ResNet pair with layer stds") if not vs_plain else (
        all(m[r] < m[p] for r, p in vs_plain),
        f"{sum(m[r] < m[p] for r, p in vs_plain)} of {len(vs_plain)} depths" + _noise(ls, vs_plain))
    med = _median_image_order(ls, across)
    b4 = (None, "fewer than two ResNet depths") if not across else (
        all(m[a] > m[b] for a, b in across), f"{len(across) + 1} depths" + _noise(ls, across) + (
            "" if med is None else f"; median test image: {'smaller' if med else 'not smaller'} for deeper ResNets"))
    return a4, b4


def beyond_spread(ls: pd.DataFrame) -> tuple[bool | None, bool | None]:
    """Claims 4a and 4b: is each beyond the seed spread (the only noise measure of a layer std)? As claims.beyond_noise."""
    vs_plain, across = fig7_pairs(finite_mean_std(ls).index)
    return _beyond_spread(ls, vs_plain), _beyond_spread(ls, across)
