"""The paper's CIFAR-10 claims, each stated with its numbers, its n, and whether it beats the seed spread.

1. Degradation (Fig. 1): plain-56 trains worse than plain-20, through the whole run, not only at the end.
2. Depth helps with shortcuts (Table 6): ResNet-56 below ResNet-20, ResNet-110 below ResNet-56 (test error); and
   the order of every ResNet depth run, step by step (stated in the report, not one of the budget's claims).
3. Shortcuts fix the deep net: ResNet-56 below plain-56. (And, stated beside them, not a claim compared across
   budgets: plain-110's error above 60%, Fig. 6's caption.)
4. Fig. 7: residual responses smaller than plain ones, and smaller for deeper ResNets (fig7_claims.py).

Everything is computed from the collected CSVs (runs, curves, layer_std, test_wrong); nothing here trains or reads
run folders.
A difference "beats the seed spread" when it is larger than the largest range (max - min over seeds) of the two
nets compared; with one seed per net the spread is unknown, and the text says so. Test errors also carry the test-set
sampling noise (two binomial standard errors of the difference on the n_test images), a floor that seeds do not
remove: a difference is beyond the noise only when it beats both the spread (where measured) and that floor. Where
every run compared has its test outcomes (test_wrong.csv: which images it gets wrong), the floor is paired: two
standard errors of the mean over the test images of each image's error difference (each net's error on an image
averaged over its seeds), smaller than the unpaired one when the two nets err on the same images.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .config import PIPELINE_CHECK_TEXT, first_lr_step, is_pipeline_check
from .models import CIFAR_DEPTHS
from .paper import PLAIN110_ERR_ABOVE
from . import fig7_claims as F7
from .wording import net_name, pct


def seed_stats(runs: pd.DataFrame, arch: str, col: str) -> tuple[float | None, int, float | None]:
    """(mean over seeds, n, range max - min or None when n < 2)."""
    v = runs.loc[runs.arch == arch, col].dropna().astype(float) if not runs.empty else pd.Series(dtype=float)
    if v.empty:
        return None, 0, None
    return float(v.mean()), len(v), (float(v.max() - v.min()) if len(v) >= 2 else None)


def _image_errors(runs: pd.DataFrame, wrong: pd.DataFrame, arch: str, col: str) -> np.ndarray | None:
    """Each test image's error of `arch`, averaged over its seeds in `runs`; None unless every one has outcomes."""
    seeds = set(runs.loc[(runs.arch == arch) & runs[col].notna(), "seed"].astype(int))
    w = wrong[(wrong.arch == arch) & wrong.seed.astype(int).isin(seeds)]
    if not seeds or set(w.seed.astype(int)) != seeds or w.n_test.nunique() != 1:
        return None
    e = np.zeros(int(w.n_test.iloc[0]))
    for ws in w.wrong:
        e[[int(i) for i in str(ws).split()] if isinstance(ws, str) else []] += 1
    return e / len(seeds)


def paired_sampling(runs: pd.DataFrame, wrong: pd.DataFrame | None, a: str, b: str,
                    col: str = "final_test_err") -> tuple[float, int] | None:
    """(two standard errors of a's minus b's mean test error over the test images, paired; the number of images),
    from each image's error difference; None unless every run of both nets has its test outcomes."""
    if wrong is None or wrong.empty:
        return None
    ea, eb = _image_errors(runs, wrong, a, col), _image_errors(runs, wrong, b, col)
    if ea is None or eb is None or len(ea) != len(eb) or len(ea) < 2:
        return None
    return 2 * float(np.std(ea - eb, ddof=1)) / math.sqrt(len(ea)), len(ea)


def compare(runs: pd.DataFrame, a: str, b: str, col: str = "final_test_err", wrong: pd.DataFrame | None = None
            ) -> dict | None:
    """a vs b on `col`: means, n, the difference a - b and whether it is larger than the seed spread; for test
    errors also the test-set sampling noise alone (`sampling`, a floor that no number of seeds removes: paired where
    `wrong`, the collected test outcomes, covers every run of both nets, else two binomial standard errors of the
    difference on the n_test images) and whether the difference is beyond it."""
    (ma, na, ra), (mb, nb, rb) = seed_stats(runs, a, col), seed_stats(runs, b, col)
    if ma is None or mb is None:
        return None
    spreads = [r for r in (ra, rb) if r is not None]
    spread = max(spreads) if spreads else None
    d = ma - mb
    n_test = (pd.to_numeric(runs["n_test"], errors="coerce").max()
              if col == "final_test_err" and "n_test" in runs else float("nan"))
    sampling = 2 * math.sqrt((ma * (1 - ma) + mb * (1 - mb)) / n_test) if n_test > 0 else None
    paired = paired_sampling(runs, wrong, a, b, col) if sampling is not None else None
    if paired is not None:
        sampling, n_test = paired
    return dict(a=ma, b=mb, na=na, nb=nb, diff=d, spread=spread, beats_spread=None if spread is None else abs(d) > spread,
                sampling=sampling, n_test=n_test, beats_sampling=None if sampling is None else abs(d) > sampling,
                paired=paired is not None)


def sampling_text(c: dict) -> str:
    if c["sampling"] is None:
        return ""
    how = ("of the paired difference on {n:,} images: each image's error difference, the nets' seeds averaged"
           if c.get("paired") else
           "of a difference on {n:,} images, unpaired, so conservative: both nets see the same images")
    return (f"; the test-set sampling noise alone is ±{100 * c['sampling']:.2f} points (two standard errors "
            + how.format(n=int(c["n_test"])) + "), and the difference is "
            + ("beyond it" if c["beats_sampling"] else "**within** it"))


def spread_text(c: dict) -> str:
    n = f"n={c['na']} vs n={c['nb']}"
    if c["spread"] is None:
        return f"{n}; one seed each, so the seed spread is not measured yet" + sampling_text(c)
    verdict = "larger" if c["beats_spread"] else "**not larger**"
    return (f"{n}; seed spread up to {100 * c['spread']:.2f} points: the difference is {verdict} than the spread"
            + sampling_text(c))


def within_noise(c: dict) -> bool:
    """True when the difference is no larger than the seed spread or than the test-set sampling noise: the spread of
    a few seeds is a rough estimate, and the sampling noise a floor that no number of seeds removes (as the ImageNet
    claims take the larger of the two, imagenet_claims.noise)."""
    return c["beats_spread"] is False or c["beats_sampling"] is False


def sign_verdict(c: dict, yes: str, no: str) -> str:
    """'reproduced' only for a difference of the paper's sign beyond the noise that is measured; one of the right sign
    within it is said to be consistent with the paper, not reproduced."""
    if c["diff"] >= 0:
        return no
    return yes if not within_noise(c) else ("right sign, within the noise: **consistent with the paper, not yet "
                                            "reproduced**.")


def _missing(runs: pd.DataFrame, archs) -> str:
    have = set(runs.arch) if not runs.empty else set()
    return ", ".join(net_name(a) for a in archs if a not in have)


def whole_run(curves: pd.DataFrame, a: str, b: str, metric: str) -> tuple[int, int, list[int]]:
    """(points where a's mean curve is above b's, common evaluation points, iterations where it is not)."""
    if curves.empty:
        return 0, 0, []
    c = curves[(curves.metric == metric) & curves.arch.isin([a, b])]
    m = c.groupby(["arch", "iteration"]).value.mean().unstack(0)
    if a not in m or b not in m:
        return 0, 0, []
    m = m[[a, b]].dropna()
    above = m[a] > m[b]
    return int(above.sum()), len(m), [int(i) for i in m.index[~above]]


def degradation(runs: pd.DataFrame, curves: pd.DataFrame) -> str:
    tr = compare(runs, "plain56", "plain20", "final_train_err")
    te = compare(runs, "plain56", "plain20", "final_test_err")
    if tr is None:
        return f"- **1. Degradation (plain-56 vs plain-20):** not decidable yet; missing: {_missing(runs, ['plain20', 'plain56'])}."
    k, n, not_above = whole_run(curves, "plain56", "plain20", "train_err")
    kt, nt, _ = whole_run(curves, "plain56", "plain20", "test_err")
    through = k == n and n > 0
    where = ("at every one of its " f"{n} evaluation points" if through else
             f"at {k} of {n} evaluation points (not at iteration{'s' * (len(not_above) > 1)} "
             f"{', '.join(f'{i:,}' for i in not_above[:6])}{' ...' if len(not_above) > 6 else ''})")
    shown = tr["diff"] > 0
    return (f"- **1. Degradation:** plain-56 ends with a training error of {pct(tr['a'])} against plain-20's "
            f"{pct(tr['b'])} ({100 * tr['diff']:+.2f} points; {spread_text(tr)}), and a test error of {pct(te['a'])} "
            f"against {pct(te['b'])} ({100 * te['diff']:+.2f} points). Through the run, plain-56's training error "
            f"(mean over seeds) is above plain-20's {where}; its test error at {kt} of {nt}. "
            + ("**Reproduced**: the deeper plain net trains worse" + (" throughout." if through else " at the end, though "
               "not at every point of the run.") if shown else
               "**Not reproduced** by these runs: plain-56 does not end with a higher training error than plain-20."))


def depth(runs: pd.DataFrame, wrong: pd.DataFrame | None = None) -> str:
    lines = []
    for deep, shallow in (("resnet56", "resnet20"), ("resnet110", "resnet56")):
        c = compare(runs, deep, shallow, wrong=wrong)
        label = f"{net_name(deep)} vs {net_name(shallow)}"
        if c is None:
            lines.append(f"- **2. Depth helps with shortcuts ({label}):** not decidable yet; missing: "
                         f"{_missing(runs, [shallow, deep])}.")
            continue
        lines.append(f"- **2. Depth helps with shortcuts ({label}):** {net_name(deep)} ends at {pct(c['a'])} test error "
                     f"against {net_name(shallow)}'s {pct(c['b'])} ({100 * c['diff']:+.2f} points; {spread_text(c)}): "
                     + sign_verdict(c, f"**reproduced**, {net_name(deep)} is better.",
                               f"**not reproduced**, {net_name(deep)} is not better at this budget."))
    return "\n".join(lines)


def ordering(runs: pd.DataFrame, wrong: pd.DataFrame | None = None) -> str:
    """Table 6's ResNet column falls at every step of depth in the paper: each step between consecutive ResNet depths
    run here, with its n and whether it beats the noise; empty with fewer than three depths (two are claim 2)."""
    have = [d for d in CIFAR_DEPTHS if not runs.empty and (runs.arch == f"resnet{d}").any()]
    if len(have) < 3:
        return ""
    steps = [(s, d, compare(runs, f"resnet{d}", f"resnet{s}", wrong=wrong)) for s, d in zip(have, have[1:])]
    text = "; ".join(f"{s}→{d} {100 * c['diff']:+.2f} (n={c['nb']}→{c['na']}, "
                     f"{'within' if within_noise(c) else 'beyond'} the noise)" for s, d, c in steps)
    rises = [f"ResNet-{s} to ResNet-{d}" for s, d, c in steps if c["diff"] >= 0]
    clear = [f"ResNet-{s} to ResNet-{d}" for s, d, c in steps if c["diff"] >= 0 and not within_noise(c)]
    verdict = ("it falls at every step, as in the paper's Table 6." if not rises else
               f"**not monotone**: it does not fall from {' nor from '.join(rises)}"
               + (f"; beyond the noise from {' and from '.join(clear)}." if clear else
                  ", within the noise, so no contradiction of the paper either."))
    return ("- **2. Table 6 order, every ResNet depth run:** change in test error per step of depth, in points (the "
            f"noise: the seed spread where measured and the test-set noise, as above): {text}: {verdict}")


def shortcuts(runs: pd.DataFrame, wrong: pd.DataFrame | None = None) -> str:
    c = compare(runs, "resnet56", "plain56", wrong=wrong)
    if c is None:
        return f"- **3. Shortcuts fix the deep net:** not decidable yet; missing: {_missing(runs, ['resnet56', 'plain56'])}."
    t = compare(runs, "resnet56", "plain56", "final_train_err")
    return (f"- **3. Shortcuts fix the deep net:** ResNet-56 {pct(c['a'])} test / {pct(t['a'])} train against "
            f"plain-56's {pct(c['b'])} / {pct(t['b'])} ({100 * c['diff']:+.2f} points in test error; {spread_text(c)}): "
            + sign_verdict(c, "**reproduced**.", "**not reproduced**."))


def plain110(runs: pd.DataFrame, preset: str | None = None) -> str:
    """The paper's Fig. 6 caption: plain-110's error is above 60% (it is not plotted). Shown, as a result, once a
    plain-110 has finished; '' before. Not one of CLAIMS: the paper gives a bound, not a comparison."""
    r = runs[runs["arch"] == "plain110"] if not runs.empty else runs
    if r.empty:
        return ""
    te, n, _ = seed_stats(runs, "plain110", "final_test_err")
    tr, _, _ = seed_stats(runs, "plain110", "final_train_err")
    div = int(r["diverged"].eq(True).sum()) if "diverged" in r else 0  # a column of bools, or NaN where unknown
    head = "- **plain-110 (Fig. 6 caption: its error is above 60%, not plotted):** "
    if te is None:
        return head + f"no final error: {div} of {len(r)} runs diverged."
    first_step = first_lr_step(preset)
    sw = sorted({int(v) for v in r["warmup_switched_at"].dropna()}) if "warmup_switched_at" in r else []
    warm = ("; its warm-up (lr 0.01 until the training error is below 80%) ended at iteration "
            + ", ".join(f"{v:,}" for v in sw)
            + (" (the first lr step: the training error never fell below 80%)" if first_step in sw else "")) if sw else ""
    return (head + f"{pct(te)} test error and {pct(tr)} training error (n={n}){warm}"
            + (f"; {div} run(s) diverged" if div else "") + ": "
            + ("**reproduced**, above 60%." if te > PLAIN110_ERR_ABOVE else "**not reproduced**: below 60% here."))


def claims_text(t: dict, preset: str | None = None) -> str:
    """The claims 1-3, one paragraph each, from load_collected's tables (none for a pipeline-check preset)."""
    if preset is not None and is_pipeline_check(preset):
        return PIPELINE_CHECK_TEXT
    runs, curves = t["runs"], t.get("curves", pd.DataFrame())
    wrong = t.get("test_wrong")
    return "\n".join(x for x in [degradation(runs, curves), depth(runs, wrong), ordering(runs, wrong),
                                  shortcuts(runs, wrong), plain110(runs, preset)] if x)


CLAIMS = ["1. degradation: plain-56 trains worse than plain-20 through the whole run",
          "2a. ResNet-56 below ResNet-20 (test error)",
          "2b. ResNet-110 below ResNet-56 (test error)",
          "3. ResNet-56 below plain-56 (test error)",
          "4a. Fig. 7: residual responses smaller than plain ones at every depth with both",
          "4b. Fig. 7: smaller responses for deeper ResNets"]
# The comparisons behind claims 1-3: (a, b, column); the claim is a - b > 0 for claim 1, < 0 for the others.
COMPARED = {CLAIMS[0]: ("plain56", "plain20", "final_train_err"), CLAIMS[1]: ("resnet56", "resnet20", "final_test_err"),
            CLAIMS[2]: ("resnet110", "resnet56", "final_test_err"), CLAIMS[3]: ("resnet56", "plain56", "final_test_err")}


def holds(t: dict) -> dict[str, tuple[bool | None, str]]:
    """Each claim of CLAIMS on one preset's collected tables: (True/False, or None when undecidable; a note with n
    and whether the difference beats the seed spread)."""
    runs, curves, ls = t["runs"], t.get("curves", pd.DataFrame()), t.get("layer_std", pd.DataFrame())
    out: dict[str, tuple[bool | None, str]] = {}

    def note(c: dict) -> str:
        sp = "seed spread unknown" if c["spread"] is None else (
            "beyond the seed spread" if c["beats_spread"] else "within the seed spread")
        if c["sampling"] is not None:
            sp += ((", beyond" if c["beats_sampling"] else ", within") + (" paired" if c["paired"] else "")
                   + f" test-set noise ±{100 * c['sampling']:.2f}")
        return f"{100 * c['diff']:+.2f} points, n={c['na']}/{c['nb']}, {sp}"

    a, b, col = COMPARED[CLAIMS[0]]
    c = compare(runs, a, b, col)
    k, n, _ = whole_run(curves, a, b, "train_err")
    out[CLAIMS[0]] = (None, "missing runs") if c is None else (
        c["diff"] > 0 and n > 0 and k == n, f"final train error {note(c)}; above at {k} of {n} points")
    for claim in CLAIMS[1:4]:
        c = compare(runs, *COMPARED[claim], wrong=t.get("test_wrong"))
        out[claim] = (None, "missing runs") if c is None else (c["diff"] < 0, note(c))
    out[CLAIMS[4]], out[CLAIMS[5]] = F7.holds(ls)
    return out


def beyond_noise(t: dict) -> dict[str, bool | None]:
    """Each claim of CLAIMS: is its difference beyond the measured noise (the seed spread where measured and, for test
    errors, the test-set sampling noise; for Fig. 7, the seed spread only)? None where no noise is measured (one seed of a
    training error or of a layer std) or a run is missing. Read beside `holds`: a claim that holds within the noise
    is consistent with the paper, not shown."""
    runs, ls = t["runs"], t.get("layer_std", pd.DataFrame())
    out: dict[str, bool | None] = dict.fromkeys(CLAIMS)
    for claim, (a, b, col) in COMPARED.items():
        c = compare(runs, a, b, col, t.get("test_wrong"))
        if c is not None and (c["spread"] is not None or c["sampling"] is not None):
            out[claim] = not within_noise(c)
    if not ls.empty:
        out[CLAIMS[4]], out[CLAIMS[5]] = F7.beyond_spread(ls)
    return out
