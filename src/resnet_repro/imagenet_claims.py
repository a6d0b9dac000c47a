"""The paper's ImageNet claims (Sec. 4.1, Fig. 4, Tables 2 and 3), each stated with its numbers and its noise.

1. Degradation: plain-34 has higher training *and* val error than plain-18.
2. ResNet-34 beats ResNet-18.
3. ResNet-34 beats plain-34.
4. Projection shortcuts (B, C) beat identity ones (A), in the order C <= B <= A.

Computed from the collected runs table (final iterates, means over seeds; val errors top-1, 10-crop, as the paper's
Tables 2 and 3); nothing here trains or reads run folders. With one seed per net, a difference is weighed against
the binomial standard error of a val error on n_val images; once some nets have a second seed, against the larger
of that and the pooled seed-to-seed std. The study that shows these claims is studies/imagenet_depth.py.
"""

from __future__ import annotations

import math

import pandas as pd

from .config import PRESETS, first_lr_step, imagenet_schedule_text, make_config
from .paper import PAPER_IMAGENET, PAPER_TABLE2, PAPER_TABLE3, imagenet_schedule
from .wording import net_name, pct


def _final(runs: pd.DataFrame, arch: str, col: str) -> float | None:
    g = runs[runs.arch == arch]
    return None if g.empty else float(g[col].mean())


def _n(runs: pd.DataFrame, arch: str) -> int:
    return int((runs.arch == arch).sum())


def _pts(a: float, b: float) -> str:
    return f"{100 * (b - a):+.2f} points"


def _gap_note(v18: float, v34: float) -> str:
    """Where the plain nets' val gap is an order of magnitude above the paper's, what that says about this budget."""
    ours, paper = 100 * (v34 - v18), PAPER_TABLE2["plain34"] - PAPER_TABLE2["plain18"]
    if ours <= 10 * paper:
        return ""
    return (f" The gap is {ours / paper:.0f}× the paper's {paper:+.2f} points: at this budget plain-34 is still far "
            "from converged (see its training curve in Fig. 4), in line with the paper's conjecture that deep plain "
            "nets have exponentially low convergence rates (Sec. 4.1), so the size of the gap measures the budget "
            "as much as the depth.")


def seed_spread(runs: pd.DataFrame, col: str = "final_val_10crop_err") -> tuple[float | None, list[str]]:
    """The seed-to-seed std of one net's final val error, pooled over the nets that have more than one seed (the
    root of their mean variance), and those nets; (None, []) while every net has one seed."""
    var = runs.groupby("arch")[col].var(ddof=1).dropna() if len(runs) else pd.Series(dtype=float)
    return (math.sqrt(float(var.mean())), list(var.index)) if len(var) else (None, [])


def _finals(runs: pd.DataFrame) -> tuple[dict, dict]:
    """Per net, the mean over seeds of the final training error and of the final val error (top-1, 10-crop)."""
    tr = {a: _final(runs, a, "final_train_err") for a in PAPER_TABLE2}
    va = {a: _final(runs, a, "final_val_10crop_err") for a in set(PAPER_TABLE2) | set(PAPER_TABLE3)}
    return tr, va


def noise(runs: pd.DataFrame) -> tuple[float, float, int, float | None, list[str]]:
    """(the standard error of one net's val error, the binomial one on n_val images, n_val, the pooled seed-to-seed
    std or None, the nets with more than one seed). The first is the larger of the binomial floor and the seed std."""
    _, va = _finals(runs)
    n_val = int(pd.to_numeric(runs.get("n_val"), errors="coerce").max()) if "n_val" in runs else 0
    known = [v for v in va.values() if v is not None]
    m = sum(known) / len(known) if known else math.nan
    binom = math.sqrt(m * (1 - m) / n_val) if known and n_val else math.nan
    spread, spread_archs = seed_spread(runs)
    return (binom if spread is None or math.isnan(binom) else max(binom, spread)), binom, n_val, spread, spread_archs


def two_se(runs: pd.DataFrame, se: float, a: str, b: str) -> float:
    """Two standard errors of the difference of the two nets' mean val errors: 2 se sqrt(1/n_a + 1/n_b), with se
    one run's standard error (noise) and n the nets' seed counts (at least 1)."""
    return 2 * se * math.sqrt(1 / max(_n(runs, a), 1) + 1 / max(_n(runs, b), 1))


OPTIONS = {"A": "resnet34", "B": "resnet34b", "C": "resnet34c"}  # Table 3's shortcut options and their nets

CLAIMS = {  # key: (the claim as the README lists it, the nets it needs)
    "degradation": ("1. degradation: plain-34 trains and validates worse than plain-18", ["plain18", "plain34"]),
    "depth": ("2. ResNet-34 below ResNet-18 (val error)", ["resnet18", "resnet34"]),
    "shortcuts": ("3. ResNet-34 below plain-34 (val error)", ["plain34", "resnet34"]),
    "options": ("4. projection shortcuts B and C below identity A (val error)", ["resnet34", "resnet34b", "resnet34c"]),
}


def holds(runs: pd.DataFrame) -> dict[str, tuple[bool | None, str]]:
    """Each claim: (True/False, or None while a net is missing; a note with the differences, n and the noise)."""
    tr, va = _finals(runs) if not runs.empty else ({}, {})
    se = noise(runs)[0] if not runs.empty else math.nan

    def d(a: str, b: str, vals: dict | None = None) -> str:  # b - a in points
        v = va if vals is None else vals
        return f"{100 * (v[b] - v[a]):+.2f}"

    def n(*archs: str) -> str:
        return "n=" + "/".join(str(_n(runs, a)) for a in archs)

    def weighed(*pairs: tuple[str, str]) -> str:  # each pair (a, b): is b - a beyond two s.e. of a difference?
        if math.isnan(se):
            return ""
        twos = [two_se(runs, se, a, b) for a, b in pairs]
        out = [("beyond" if abs(va[b] - va[a]) >= t else "within") for (a, b), t in zip(pairs, twos)]
        where = out[0] if len(set(out)) == 1 else " and ".join(f"{k} {w}" for k, w in zip("BC", out))
        bound = "/".join(f"±{100 * t:.2f}" for t in dict.fromkeys(round(t, 6) for t in twos))
        return f"; {where} the noise, {bound} points (2 s.e. of a difference)"

    out = {}
    for key, (label, archs) in CLAIMS.items():
        if any(va.get(a) is None for a in archs):
            out[label] = (None, "missing: " + ", ".join(a for a in archs if va.get(a) is None))
        elif key == "degradation":
            ok = tr["plain34"] > tr["plain18"] and va["plain34"] > va["plain18"]
            out[label] = (ok, f"train {d('plain18', 'plain34', tr)}, val {d('plain18', 'plain34')} points, "
                              f"{n('plain34', 'plain18')}" + weighed(("plain18", "plain34")))
        elif key == "options":
            ok = va["resnet34b"] < va["resnet34"] and va["resnet34c"] < va["resnet34"]
            out[label] = (ok, f"B {d('resnet34', 'resnet34b')}, C {d('resnet34', 'resnet34c')} points against A, "
                              f"{n('resnet34', 'resnet34b', 'resnet34c')}"
                              + weighed(("resnet34", "resnet34b"), ("resnet34", "resnet34c")))
        else:
            lo, hi = ("resnet18", "resnet34") if key == "depth" else ("plain34", "resnet34")
            out[label] = (va[hi] < va[lo], f"{d(lo, hi)} points, {n(hi, lo)}" + weighed((lo, hi)))
    return out


def _reasons(runs: pd.DataFrame, tr: dict, sched: str, resnet_ok: bool) -> str:
    """Why the 18/34 ordering may not reproduce, led by what the training errors say: a ResNet-34 that also *trains*
    worse than ResNet-18 is underfitting (the budget), one that trains better but validates worse is overfitting
    (the data); where only the plain nets break the order, the paper's degradation does not show at this scale."""
    paper_m = PAPER_IMAGENET["train_images"] / 1e6
    schedule = f"a shorter schedule{sched} than the paper's {imagenet_schedule()}"
    data = f"{int(runs['n_train'].max()):,} training images instead of {paper_m:.2f}M"
    classes = "10 classes instead of 1000 (an easier task, far lower errors)"
    r34, r18 = pct(tr["resnet34"]), pct(tr["resnet18"])
    if resnet_ok:
        return f"Plain-34 does not validate worse than plain-18 here; possible reasons: {classes}, {data} and {schedule}."
    if tr["resnet34"] > tr["resnet18"]:
        proj = {o: _final(runs, f"resnet34{o.lower()}", "final_train_err") for o in ("B", "C")}
        below = [f"{o} to {pct(e)}" for o, e in proj.items() if e is not None and e < tr["resnet18"]]
        return (f"ResNet-34 also *trains* worse than ResNet-18 ({r34} against {r18}), so at this budget it is still "
                f"underfitting: first suspect, {schedule}; then {classes} and {data}."
                + (f" With projection shortcuts, ResNet-34 trains below ResNet-18 ({' and '.join(below)}): at this "
                   "budget the zero-padded shortcuts of option A look like what holds ResNet-34 back (Table 3)."
                   if below else ""))
    return (f"ResNet-34 trains better than ResNet-18 ({r34} against {r18}) but does not validate better, so it "
            f"overfits: first suspect, {data}; then {classes} and {schedule}.")


def _through_run(curves: pd.DataFrame | None, deep: str, shallow: str, preset: str) -> str:
    """Where the deeper net's training error sits against the shallower one's through the run (Fig. 4 shows whole
    curves, not end points): at how many evaluation points it is above, and the gap at the first lr drop and at
    the end, which says whether the deeper net was catching up."""
    if curves is None or curves.empty:
        return ""
    c = curves[(curves.metric == "train_err") & curves.arch.isin([deep, shallow])]
    m = c.groupby(["arch", "iteration"]).value.mean().unstack(0)  # mean curve over seeds, one column per net
    if deep not in m or shallow not in m:
        return ""
    gap = 100 * (m[deep] - m[shallow]).dropna()
    if gap.empty:
        return ""
    drop = first_lr_step(preset)
    before = gap[gap.index <= drop] if drop else gap.iloc[:0]
    at_drop = (f"; the gap is {before.iloc[-1]:+.2f} points at the first lr drop (iteration {drop:,}) and "
               f"{gap.iloc[-1]:+.2f} at the end" if len(before) else "")
    return (f" Through the run, {net_name(deep)}'s training error is above {net_name(shallow)}'s at "
            f"{int((gap > 0).sum())} of {len(gap)} evaluation points{at_drop}.")


def _first_loss(curves: pd.DataFrame | None, preset: str) -> str:
    """The mean training loss of ResNet-18 and ResNet-34 A/B/C over the first evaluation interval (means over seeds)
    against the loss of a uniform guess, ln(classes): where option A starts above both projections and above that
    guess, its early steps are the ones to look at (a lead, not a tested cause; ResNet-18, also option A, is given
    for scale)."""
    if curves is None or curves.empty:
        return ""
    c = curves[curves.metric == "train_loss"]
    first = c[c.iteration == c.iteration.min()].groupby("arch").value.mean()
    if any(a not in first for a in OPTIONS.values()):
        return ""
    k = make_config(preset).num_classes if preset in PRESETS else 10
    guess = math.log(k)
    ref = f"; ResNet-18 {first['resnet18']:.2f}" if "resnet18" in first else ""
    text = (f" Over the first evaluation interval ({int(c.iteration.min()):,} iterations) the mean training loss is "
            + ", ".join(f"{o} {first[a]:.2f}" for o, a in OPTIONS.items())
            + f"{ref}; a uniform guess over {k} classes scores {guess:.2f}.")
    proj = max(first["resnet34b"], first["resnet34c"])  # the worse-starting projection option
    if first["resnet34"] > max(proj, guess):
        text += (f" Option A starts highest, {first['resnet34'] - proj:.2f} above the worse projection option: a lead "
                 "for its slower training, not a tested cause.")
    return text


def _order_noise(runs: pd.DataFrame, se: float, va: dict, kind: str) -> str:
    """Where the paper's order C <= B <= A fails on the means: each reversed neighbour pair, within or beyond two
    standard errors; if every reversal is within them, how many seeds per net would resolve the paper's smallest gap
    (n with 2 se sqrt(2/n) below it)."""
    if math.isnan(se):
        return ""
    parts, within = [], True
    for lo, hi in (("C", "B"), ("B", "A")):  # the paper has lo <= hi
        gap, band = va[OPTIONS[lo]] - va[OPTIONS[hi]], two_se(runs, se, OPTIONS[lo], OPTIONS[hi])
        if gap > 0:
            within &= gap < band
            parts.append(f"{lo} sits {100 * gap:.2f} points above {hi}, {'within' if gap < band else 'beyond'} two "
                         f"standard errors of {kind} (±{100 * band:.2f})")
    if not parts:
        return ""
    text = " " + "; ".join(parts) + "."
    if within:
        top1 = [PAPER_TABLE3[OPTIONS[o]][0] for o in "CBA"]
        gap = min(b - a for a, b in zip(top1, top1[1:]))
        seeds = math.ceil(2 * (2 * 100 * se / gap) ** 2)
        text += (" Within the noise, then: the data neither contradict nor confirm the paper's order, whose options "
                 f"differ by as little as {gap:.2f} points; two standard errors fall below that only from about "
                 f"{seeds:,} seeds per net.")
    return text


def imagenet_verdict(runs: pd.DataFrame, preset: str | None = None, curves: pd.DataFrame | None = None) -> str:
    """The Fig. 4 / Table 2 / Table 3 claims, checked on the final iterates (means over seeds): does plain-34
    train and validate worse than plain-18, does ResNet-34 beat ResNet-18, and how do options A, B, C order.
    Val errors are top-1, 10-crop (the paper's Tables 2 and 3)."""
    if runs.empty:
        return "- No finished runs yet: nothing can be decided."
    preset = preset or str(runs["preset"].iloc[0])
    tr, va = _finals(runs)
    se, binom, n_val, spread, spread_archs = noise(runs)
    missing = lambda archs: ", ".join(a for a in archs if _n(runs, a) == 0)  # noqa: E731
    lines, order = [], {}

    kind = "sampling noise" if spread is None else "noise"

    def noisy(a: str, b: str) -> str:  # the two nets' mean val errors within two standard errors of each other
        small = not math.isnan(se) and abs(va[b] - va[a]) < two_se(runs, se, a, b)
        return f", within two standard errors of {kind}" if small else ""

    def paper(a, b):
        return f"paper: {PAPER_TABLE2[a]:.2f}% vs {PAPER_TABLE2[b]:.2f}%"

    if tr["plain18"] is None or tr["plain34"] is None:
        lines.append(f"- **Plain-34 vs plain-18 (degradation):** not decidable yet; missing: "
                     f"{missing(['plain18', 'plain34'])}.")
    else:
        worse_tr, worse_va = tr["plain34"] > tr["plain18"], va["plain34"] > va["plain18"]
        order["plain"] = worse_va
        verdict = {(True, True): "**Reproduced**: the deeper plain net trains *and* validates worse.",
                   (True, False): "**Partly reproduced**: plain-34 trains worse but does not validate worse.",
                   (False, True): "**Partly reproduced**: plain-34 validates worse but does not train worse (the "
                                  "paper's point is the higher *training* error).",
                   (False, False): "**Not reproduced**: plain-34 is not worse than plain-18 here.",
                   }[(worse_tr, worse_va)]
        lines.append(f"- **Plain-34 vs plain-18 (degradation):** plain-34 ends with a training error of "
                     f"{pct(tr['plain34'])} against {pct(tr['plain18'])} ({_pts(tr['plain18'], tr['plain34'])}) and "
                     f"a val error of {pct(va['plain34'])} against {pct(va['plain18'])} "
                     f"({_pts(va['plain18'], va['plain34'])}{noisy('plain18', 'plain34')}; "
                     f"{paper('plain34', 'plain18')}). {verdict}" + _gap_note(va["plain18"], va["plain34"])
                     + _through_run(curves, "plain34", "plain18", preset))
    if tr["resnet18"] is None or tr["resnet34"] is None:
        lines.append(f"- **ResNet-34 vs ResNet-18:** not decidable yet; missing: {missing(['resnet18', 'resnet34'])}.")
    else:
        beats = va["resnet34"] < va["resnet18"]
        order["resnet"] = beats
        lines.append(f"- **ResNet-34 vs ResNet-18:** val error {pct(va['resnet34'])} against {pct(va['resnet18'])} "
                     f"({_pts(va['resnet18'], va['resnet34'])}{noisy('resnet18', 'resnet34')}; "
                     f"{paper('resnet34', 'resnet18')}), training error "
                     f"{pct(tr['resnet34'])} against {pct(tr['resnet18'])}: ResNet-34 "
                     + ("**beats** ResNet-18, as in the paper." if beats else "does **not** beat ResNet-18.")
                     + _through_run(curves, "resnet34", "resnet18", preset))
    if tr["plain34"] is not None and tr["resnet34"] is not None:
        p34 = f"paper: {PAPER_TABLE2['resnet34']:.2f}% vs {PAPER_TABLE2['plain34']:.2f}% val"
        lines.append(f"- **Shortcuts at 34 layers:** ResNet-34 {pct(va['resnet34'])} val / {pct(tr['resnet34'])} "
                     f"train against plain-34's {pct(va['plain34'])} / {pct(tr['plain34'])} ({p34}): ResNet-34 "
                     + ("**beats** plain-34." if va["resnet34"] < va["plain34"] else "does **not** beat plain-34."))
    noise_text = "" if math.isnan(se) else (
        f" The binomial standard error of one val error on {n_val:,} images is about ±{100 * binom:.2f} points"
        + (f"; the seed-to-seed std of one net's val error, from a second seed of {', '.join(spread_archs)}, is "
           f"{100 * spread:.2f} points (two seeds per net: a rough estimate). A difference of two nets' mean "
           f"errors counts here beyond two standard errors of a difference, 2 × {100 * se:.2f} × √(1/n₁ + 1/n₂) "
           f"points for nets of n₁ and n₂ seeds (±{200 * se * math.sqrt(2):.2f} for two nets of one seed)."
           if spread is not None else
           f", ±{100 * se * math.sqrt(2):.2f} for a difference of two (conservative: both nets see the same images). "
           "One seed per net: seed-to-seed variation, not measured, adds to it."))
    if len(order) == 2:
        if order["plain"] and order["resnet"]:
            lines.append("- **Overall: the 18/34 ordering of Table 2 reproduces on this data** (val error, "
                         "10-crop): deeper is worse for plain nets and better for ResNets." + noise_text)
        else:
            c = make_config(preset) if preset in PRESETS else None
            sched = f" ({imagenet_schedule_text(preset)})" if c else ""
            lines.append("- **Overall: the 18/34 ordering of Table 2 does not fully reproduce on this data** "
                         "(val error, 10-crop). "
                         + _reasons(runs, tr, sched, order["resnet"]) + noise_text)
    opts = [(k, va[a]) for k, a in OPTIONS.items() if va[a] is not None]
    if len(opts) < 3:
        lines.append(f"- **Shortcut options (Table 3):** not decidable yet; missing: "
                     f"{missing(['resnet34', 'resnet34b', 'resnet34c'])}.")
    else:
        (_, a), (_, b), (_, c) = opts
        by_err = sorted((va[x], x) for x in OPTIONS.values())
        gap_two = two_se(runs, se, by_err[0][1], by_err[-1][1]) if not math.isnan(se) else math.nan
        top1 = [PAPER_TABLE3[n][0] for n in OPTIONS.values()]
        paper_abc, paper_gap = ", ".join(f"{v:.2f}%" for v in top1), max(top1) - min(top1)
        ranked = " < ".join(k for k, _ in sorted(opts, key=lambda kv: kv[1]))
        holds, beat = c <= b <= a, {k: v < a for k, v in (("B", b), ("C", c))}
        lines.append(f"- **Shortcut options (Table 3):** ResNet-34 A {pct(a)}, B {pct(b)}, C {pct(c)} val error "
                     f"(paper: {paper_abc}, i.e. C < B < A by at most {paper_gap:.2f} points). "
                     + ("B and C both **beat** A, as in the paper. " if all(beat.values()) else
                        " and ".join(k for k, v in beat.items() if not v)
                        + (" do" if not any(beat.values()) else " does") + " **not** beat A. ")
                     + f"Ours rank {ranked}: "
                     + ("the paper's order C ≤ B ≤ A **holds**." if holds else "the paper's order C ≤ B ≤ A "
                        "does **not** hold on the means." + _order_noise(runs, se, va, kind))
                     + (f" The largest gap, {100 * (max(a, b, c) - min(a, b, c)):.2f} points, is "
                        + ("within" if max(a, b, c) - min(a, b, c) < gap_two else "beyond")
                        + f" two standard errors of {kind} (±{100 * gap_two:.2f})."
                        if not math.isnan(se) else "")
                     + _first_loss(curves, preset))
    lines.append("- Top-5 errors (Table 3 analogue) are over 10 classes (chance: 50%), not comparable with the "
                 "paper's top-5 over 1000.")
    return "\n".join(lines)
