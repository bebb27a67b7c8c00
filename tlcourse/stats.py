"""The statistics every conclusion in the course rests on: error bars on accuracies and paired A-vs-B comparisons.

    accuracy_ci(0.86, 2000)                          # Wilson 95% interval of one test accuracy
    summarize([0.851, 0.856, 0.861])                 # "0.856 ± 0.005 (0.851–0.861, n=3)" over seeds
    paired_compare(y, pred_a, pred_b, a="LP-FT", b="probe")   # same test set: McNemar, or seeds + items (t)
    compare_scores(accs_a, accs_b, a="LP-FT", b="probe")      # only per-seed accuracies: paired t

Differences are A minus B in accuracy units (0.012 = 1.2 points); strings show them in points with "+"/"−" signs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


def _check_level(level: float) -> None:
    """Raise a one-line ValueError unless level is in (0, 1)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"pass level as a fraction in (0, 1), e.g. 0.95; got {level}")


def _check_acc(acc: float, n: int) -> None:
    """Raise a one-line ValueError unless acc is a fraction in [0, 1] and n ≥ 1."""
    if not (n >= 1 and 0.0 <= acc <= 1.0):
        raise ValueError(f"pass acc as a fraction in [0, 1] (not a percentage) and n ≥ 1 test items; got {acc}, {n}")


def accuracy_se(acc: float, n: int) -> float:
    """Binomial standard error sqrt(acc (1 − acc) / n) of an accuracy measured on n test items."""
    _check_acc(acc, n)
    return float(np.sqrt(acc * (1.0 - acc) / n))


def accuracy_ci(acc: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of an accuracy measured on n test items (scipy's binomtest)."""
    _check_acc(acc, n)
    _check_level(level)
    ci = stats.binomtest(round(acc * n), n).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


def _signed(x: float) -> str:
    """x to one decimal with an explicit "+" or a true minus sign "−" (zero after rounding counts as +)."""
    return ("−" if round(x, 1) < 0 else "+") + f"{abs(x):.1f}"


@dataclass(frozen=True)
class Summary:
    """Mean, sample sd (ddof=1; 0.0 for one value), range and count of a metric over seeds or labelled subsets."""

    mean: float
    sd: float
    min: float
    max: float
    n: int
    values: tuple[float, ...]

    def __str__(self) -> str:
        """E.g. '0.856 ± 0.004 (0.851–0.861, n=3)'."""
        return f"{self.mean:.3f} ± {self.sd:.3f} ({self.min:.3f}–{self.max:.3f}, n={self.n})".replace("-", "−")


def summarize(values: Sequence[float] | np.ndarray) -> Summary:
    """Summary of a list of numbers (e.g. one accuracy per seed); ValueError on empty input or NaN."""
    x = np.asarray(values, dtype=float).ravel()
    if x.size == 0 or np.isnan(x).any():
        raise ValueError(f"pass a non-empty list of numbers without NaN; got {x.size} values, {np.isnan(x).sum()} NaN")
    sd = float(x.std(ddof=1)) if x.size > 1 else 0.0
    return Summary(float(x.mean()), sd, float(x.min()), float(x.max()), int(x.size), tuple(map(float, x)))


@dataclass(frozen=True)
class Comparison:
    """A minus B in accuracy units (0.012 = 1.2 points), its interval at `level`, a p-value and what went in."""

    a: str
    b: str
    diff: float
    lo: float
    hi: float
    p: float
    n_seeds: int
    n_items: int
    per_seed: tuple[float, ...]
    level: float = 0.95

    @property
    def verdict(self) -> str:
        """'a beats b' if the whole interval is above 0, 'b beats a' if below, else 'tie within noise'."""
        if self.lo > 0:
            return f"{self.a} beats {self.b}"
        if self.hi < 0:
            return f"{self.b} beats {self.a}"
        return "tie within noise"

    def ci(self) -> str:
        """The interval in points, e.g. '+0.4 to +2.8'."""
        return f"{_signed(100 * self.lo)} to {_signed(100 * self.hi)}"

    def points(self) -> str:
        """E.g. '+1.6 points (95% CI +0.4 to +2.8)'."""
        return f"{_signed(100 * self.diff)} points ({100 * self.level:.4g}% CI {self.ci()})"

    def __str__(self) -> str:
        """One line, e.g. 'LP-FT beats probe: +1.6 points (95% CI +0.4 to +2.8, p=0.01, 3 seeds × 2,000 test items)'.

        The difference is told from the winner's side (so always positive when one arm wins); `points()` keeps A − B.
        """
        p = "p<0.001" if self.p < 0.001 else f"p={self.p:.3f}" if self.p < 0.01 else f"p={self.p:.2f}"
        design = f"{self.n_seeds} seed{'s' if self.n_seeds != 1 else ''}"
        design += f" × {self.n_items:,} test items" if self.n_items else ""  # n_items=0: unknown, not shown
        details = f"{self.points()[:-1]}, {p}, {design})"
        if self.lo > 0:
            return f"{self.verdict}: {details}"
        if self.hi < 0:  # told from the winner's side: "B beats A: +x points", the interval flipped with it
            flipped = f"{_signed(-100 * self.diff)} points ({100 * self.level:.4g}% CI {_signed(-100 * self.hi)} to "
            return f"{self.verdict}: {flipped}{_signed(-100 * self.lo)}, {p}, {design})"
        return f"{self.a} vs {self.b}: tie within noise, {details}"

    def row(self) -> dict:
        """One row for a pandas table: comparison, A − B in points, the interval, p and the verdict."""
        return {"comparison": f"{self.a} vs {self.b}", "A − B (points)": round(100 * self.diff, 1),
                f"{100 * self.level:.4g}% CI": self.ci(), "p": self.p, "verdict": self.verdict}  # fmt: skip


def verdict(cmp: Comparison) -> str:
    """The verdict of a comparison (same as cmp.verdict)."""
    return cmp.verdict


def _seed_rows(pred, n_items: int, name: str) -> np.ndarray:
    """Predictions as a [seeds, items] array: one 1-D array of labels is one seed."""
    if len(pred) == 0:
        raise ValueError(f"{name} is empty; pass one predicted label per test item (or one such row per seed)")
    rows = [pred] if np.ndim(next(iter(pred))) == 0 else list(pred)
    for i, r in enumerate(rows):
        if np.ndim(r) != 1 or len(r) != n_items:
            raise ValueError(f"{name} seed {i} has shape {np.shape(r)}, y_true {n_items} items; pass a label per item")
    return np.stack([np.asarray(r) for r in rows])  # [S,N]


def paired_compare(y_true, pred_a, pred_b, *, a: str = "A", b: str = "B", level: float = 0.95,
                   n_boot: int = 2000, seed: int = 0) -> Comparison:  # fmt: skip
    """A − B accuracy of two classifiers on one shared test set, one or more seeds each (seed i of A ↔ seed i of B).

    One seed: percentile bootstrap over test items for the interval, exact McNemar for p (two-sided binomial test on
    the discordant items; 1.0 when there are none).
    Several seeds: the mean of the per-seed differences has two sources of noise, the seeds (their spread s, over
    S seeds) and the shared test items (the standard error of the seed-averaged per-item difference, se_items). The
    interval is mean ± t(S − 1) · sqrt(s²/S + se_items²) and p the matching two-sided t test: with three seeds the
    t quantile (4.3) keeps the interval honest, where a bootstrap over three seeds would be far too narrow.
    """
    y = np.asarray(y_true)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"pass y_true as a non-empty 1-D array of labels; got shape {y.shape}")
    _check_level(level)
    if n_boot < 1:
        raise ValueError(f"pass n_boot ≥ 1 bootstrap resamples; got {n_boot}")
    n = y.size
    right_a, right_b = _seed_rows(pred_a, n, "pred_a") == y, _seed_rows(pred_b, n, "pred_b") == y  # [S,N] bool
    if len(right_a) != len(right_b):
        raise ValueError(f"pred_a has {len(right_a)} seeds but pred_b has {len(right_b)}; pass the same number, paired")
    s = len(right_a)
    d = right_a.astype(float) - right_b  # [S,N] per-item difference in {-1, 0, 1}
    per_seed = d.mean(axis=1)  # [S]
    diff = float(per_seed.mean())
    if s > 1:
        return seeds_and_items(per_seed, d.mean(axis=0).var(ddof=1) / n, a=a, b=b, n_items=n, level=level)
    rng = np.random.default_rng(seed)
    boot = np.empty(n_boot)
    chunk = max(1, 4_000_000 // n)  # resamples per block: bounds memory at ~32 MB whatever the test-set size
    for start in range(0, n_boot, chunk):
        m = min(chunk, n_boot - start)
        w_items = rng.multinomial(n, np.full(n, 1 / n), size=m) / n  # [m,N] resampled item weights
        boot[start : start + m] = w_items @ d[0]
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    only_a, only_b = int((right_a & ~right_b).sum()), int((~right_a & right_b).sum())
    p = stats.binomtest(only_a, only_a + only_b).pvalue if only_a + only_b else 1.0
    return Comparison(a, b, diff, float(lo), float(hi), float(p), s, n, tuple(map(float, per_seed)), level)


def seeds_and_items(per_seed, item_var: float, *, a: str, b: str, n_items: int, level: float = 0.95) -> Comparison:
    """A − B over S ≥ 2 paired seeds on one shared test set: the mean of the per-seed differences, with a t interval
    (S − 1 degrees of freedom) whose standard error adds the seeds' spread (s²/S) and the test items' variance of the
    seed-mean difference (`item_var`); p is the matching two-sided t test. Used by `paired_compare` and by
    `tlcourse.bootstrap.paired_metric`, which estimate `item_var` analytically and by bootstrap respectively."""
    per_seed = np.asarray(per_seed, dtype=float)
    s, diff = len(per_seed), float(per_seed.mean())
    se = float(np.sqrt(per_seed.var(ddof=1) / s + item_var))
    if se == 0.0:
        lo = hi = diff
        p = 1.0 if diff == 0 else 0.0
    else:
        half = float(stats.t.ppf((1 + level) / 2, s - 1)) * se
        lo, hi = diff - half, diff + half
        p = float(2 * stats.t.sf(abs(diff) / se, s - 1))
    return Comparison(a, b, diff, lo, hi, p, s, n_items, tuple(map(float, per_seed)), level)


def compare_scores(scores_a, scores_b, *, a: str = "A", b: str = "B", level: float = 0.95,
                   n_items: int = 0) -> Comparison:  # fmt: skip
    """A − B from per-seed accuracies (each seed may have its own test set): paired t test and t interval, n−1 df."""
    xa, xb = np.asarray(scores_a, dtype=float).ravel(), np.asarray(scores_b, dtype=float).ravel()
    _check_level(level)
    if xa.size != xb.size:
        raise ValueError(f"scores_a has {xa.size} seeds but scores_b has {xb.size}; pass one accuracy per seed, paired")
    if xa.size < 2:
        raise ValueError("compare_scores needs ≥ 2 paired seeds; for one seed pass predictions to paired_compare")
    if np.isnan(xa).any() or np.isnan(xb).any():
        raise ValueError("pass accuracies without NaN")
    d = xa - xb
    mean = float(d.mean())
    if np.allclose(d, d[0], rtol=0, atol=1e-12):  # sd 0: t undefined, the interval collapses to the point
        lo, hi, p = mean, mean, 0.0 if abs(mean) > 1e-12 else 1.0
    else:
        res = stats.ttest_rel(xa, xb)
        ci = res.confidence_interval(confidence_level=level)
        lo, hi, p = float(ci.low), float(ci.high), float(res.pvalue)
    return Comparison(a, b, mean, lo, hi, p, int(d.size), int(n_items), tuple(map(float, d)), level)
