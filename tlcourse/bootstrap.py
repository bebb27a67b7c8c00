"""Intervals for a binary classifier's accuracy, balanced accuracy and ROC AUC, and paired A-vs-B comparisons of them.

    r = binary_report(y, p_pos, majority=1)            # each metric with a bootstrap 95% interval; vs always-majority
    r = binary_report(y, p_pos, groups=movie_ids)      # resample whole movies: the honest bar when items cluster
    cmp = paired_metric(y, p_a, p_b, "auc", a="few-shot", b="source-only")   # a stats.Comparison with a verdict

`p_pos` is P(positive) [N] (or [N,2] probabilities). Resampling is vectorised: every resample is a weight vector over
the test items (how often each item, or each item's group, was drawn), and every metric is a weighted sum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tlcourse.stats import Comparison, _check_level, _signed, seeds_and_items

METRICS = ("accuracy", "balanced_accuracy", "auc")


def _inputs(labels, probs, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels [N] int, P(positive) [N], predicted labels [N]) with one-line errors for wrong shapes or classes."""
    y = np.asarray(labels)
    p = np.asarray(probs, dtype=np.float64)
    p = p[:, 1] if p.ndim == 2 and p.shape[1] == 2 else p
    if y.ndim != 1 or p.shape != y.shape:
        raise ValueError(
            f"pass labels [N] and P(positive) [N] (or [N,2]) for the same N items; got {y.shape}, {p.shape}"
        )
    if not set(np.unique(y)) <= {0, 1} or len(np.unique(y)) < 2:
        raise ValueError(
            f"labels must be 0/1 with both classes present (AUC needs both); got values {np.unique(y)[:5]}"
        )
    return y.astype(int), p, (p >= threshold).astype(int)


def _weights(n: int, groups, n_boot: int, rng: np.random.Generator, chunk_items: int = 4_000_000):
    """Yield blocks [m,N] of bootstrap weights: items drawn with replacement, or whole groups when groups is given."""
    if groups is None:
        draw, index, k = None, None, n
    else:
        g = np.asarray(groups)
        if g.shape != (n,):
            raise ValueError(f"groups must give one group id per test item ({n}); got shape {g.shape}")
        _, index = np.unique(g, return_inverse=True)
        k = int(index.max()) + 1
        draw = index
    chunk = max(1, chunk_items // max(n, k))
    for start in range(0, n_boot, chunk):
        m = min(chunk, n_boot - start)
        counts = rng.multinomial(k, np.full(k, 1 / k), size=m).astype(np.float64)  # [m,K]
        yield counts if draw is None else counts[:, draw]  # [m,N]


def _weighted(w: np.ndarray, y: np.ndarray, p: np.ndarray, pred: np.ndarray, order, starts) -> dict[str, np.ndarray]:
    """Accuracy, balanced accuracy and AUC for each row of item weights w [m,N] (NaN where a class drew no item)."""
    right = (pred == y).astype(np.float64)
    pos, neg = (y == 1).astype(np.float64), (y == 0).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = (w @ right) / w.sum(1)
        recall_pos = (w @ (right * pos)) / (w @ pos)
        recall_neg = (w @ (right * neg)) / (w @ neg)
        # AUC: sort once by score; per tie group, the weight of negatives below it (ties count one half)
        wp, wn = (w * pos)[:, order], (w * neg)[:, order]  # [m,N] in score order
        gp, gn = np.add.reduceat(wp, starts, axis=1), np.add.reduceat(wn, starts, axis=1)  # [m,G]
        below = np.cumsum(gn, axis=1) - gn  # negatives with a strictly lower score
        auc = (gp * (below + 0.5 * gn)).sum(1) / (gp.sum(1) * gn.sum(1))
    return {"accuracy": acc, "balanced_accuracy": (recall_pos + recall_neg) / 2, "auc": auc}


def _sign_p(boot: np.ndarray) -> float:
    """Two-sided p of "the difference is 0" from bootstrap differences: twice the smaller tail at 0 (at most 1)."""
    return float(min(1.0, 2 * min((boot <= 0).mean(), (boot >= 0).mean())))


def _sorter(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(order that sorts p, start index of each run of equal scores in that order)."""
    order = np.argsort(p, kind="stable")
    sp = p[order]
    return order, np.flatnonzero(np.r_[True, sp[1:] != sp[:-1]])


@dataclass(frozen=True)
class BinaryReport:
    """Accuracy, balanced accuracy and AUC with intervals; and accuracy minus the always-majority guess's."""

    values: dict  # metric -> point estimate
    intervals: dict  # metric -> (lo, hi)
    majority: float  # accuracy of always predicting the majority class (nan when not asked)
    vs_majority: Comparison | None
    n_items: int
    n_groups: int  # resampled units: n_items, or the number of groups (e.g. movies)
    level: float = 0.95

    def row(self, digits: int = 3) -> dict:
        """One table row of strings, e.g. {"accuracy": "0.827 (0.812–0.841)", ..., "vs majority": "beats (+23.3)"}."""
        out = {}
        for m in METRICS:
            lo, hi = self.intervals[m]
            out[{"balanced_accuracy": "balanced acc", "auc": "AUC"}.get(m, m)] = (
                f"{self.values[m]:.{digits}f} ({lo:.{digits}f}–{hi:.{digits}f})"
            )
        if self.vs_majority is not None:
            c = self.vs_majority
            word = "beats" if c.lo > 0 else "loses to" if c.hi < 0 else "ties"
            out["vs majority"] = f"{word} ({_signed(100 * c.diff)})"
        return out

    def __str__(self) -> str:
        unit = f"{self.n_groups:,} groups" if self.n_groups != self.n_items else f"{self.n_items:,} items"
        body = ", ".join(f"{k} {v}" for k, v in self.row().items())
        return f"{body}  [{100 * self.level:g}% bootstrap over {unit}]"


def binary_report(labels, probs, *, threshold: float = 0.5, majority: int | None = None, groups=None,
                  level: float = 0.95, n_boot: int = 1000, seed: int = 0) -> BinaryReport:  # fmt: skip
    """Accuracy, balanced accuracy and ROC AUC of P(positive) scores, each with a percentile bootstrap interval.

    groups: one id per item (e.g. the movie a snippet is about): whole groups are resampled, so items that share a
    group are not counted as independent evidence. majority: the class a trivial model always predicts (the
    training set's most common label); the report then compares accuracy with it, paired on the same resamples.
    """
    _check_level(level)
    y, p, pred = _inputs(labels, probs, threshold)
    order, starts = _sorter(p)
    point = {k: float(v[0]) for k, v in _weighted(np.ones((1, len(y))), y, p, pred, order, starts).items()}
    rng = np.random.default_rng(seed)
    boots = {m: [] for m in METRICS}
    maj_d = []
    if majority is not None and majority not in (0, 1):
        raise ValueError(f"majority must be the class 0 or 1 that a trivial model always predicts; got {majority!r}")
    d_items = (pred == y).astype(float) - (y == majority) if majority is not None else None  # [N]
    for w in _weights(len(y), groups, n_boot, rng):
        for m, v in _weighted(w, y, p, pred, order, starts).items():
            boots[m].append(v)
        if d_items is not None:
            maj_d.append((w @ d_items) / w.sum(1))
    q = [(1 - level) / 2, (1 + level) / 2]
    intervals = {m: tuple(map(float, np.nanquantile(np.concatenate(boots[m]), q))) for m in METRICS}
    n_groups = len(y) if groups is None else len(np.unique(np.asarray(groups)))
    vs, maj_acc = None, float("nan")
    if d_items is not None:
        maj_acc = float(np.mean(y == majority))
        d = np.concatenate(maj_d)
        lo, hi = np.quantile(d, q)
        vs = Comparison("model", "majority class", float(d_items.mean()), float(lo), float(hi), _sign_p(d), 1, len(y),
                        (float(d_items.mean()),), level)  # fmt: skip
    return BinaryReport(point, intervals, maj_acc, vs, len(y), n_groups, level)


def paired_metric(labels, probs_a, probs_b, metric: str = "auc", *, a: str = "A", b: str = "B", threshold: float = 0.5,
                  groups=None, level: float = 0.95, n_boot: int = 1000, seed: int = 0) -> Comparison:  # fmt: skip
    """A − B in `metric` ("accuracy", "balanced_accuracy" or "auc") of two scorers on one shared test set.

    probs_a / probs_b: one P(positive) vector [N] per seed or draw (a single vector = one seed; seed i of A is paired
    with seed i of B — pass the same vector S times for an arm without seeds). One seed: paired percentile bootstrap
    over items (or groups), p from the bootstrap's sign. Several seeds: as `stats.paired_compare`, a t interval with
    S − 1 degrees of freedom over the seeds' spread plus the test items' bootstrap error of the seed-mean difference.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {list(METRICS)}")
    _check_level(level)
    rows_a, rows_b = _rows(probs_a, "probs_a"), _rows(probs_b, "probs_b")
    if len(rows_a) != len(rows_b):
        raise ValueError(f"probs_a has {len(rows_a)} seeds but probs_b has {len(rows_b)}; pass the same number, paired")
    arms = [[_inputs(labels, r, threshold) for r in rows] for rows in (rows_a, rows_b)]
    y = arms[0][0][0]
    sorters = [[_sorter(x[1]) for x in arm] for arm in arms]
    ones = np.ones((1, len(y)))

    def values(w):  # [S, m]: metric of A minus metric of B, per seed, for weight rows w [m,N]
        return np.stack([_weighted(w, *xa, *sa)[metric] - _weighted(w, *xb, *sb)[metric]
                         for xa, sa, xb, sb in zip(arms[0], sorters[0], arms[1], sorters[1], strict=True)])  # fmt: skip

    per_seed = values(ones)[:, 0]  # [S]
    diff, s = float(per_seed.mean()), len(per_seed)
    boot = np.concatenate([values(w).mean(0) for w in _weights(len(y), groups, n_boot, np.random.default_rng(seed))])
    boot = boot[~np.isnan(boot)]
    n = len(y)
    if s == 1:
        lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
        return Comparison(a, b, diff, float(lo), float(hi), _sign_p(boot), 1, n, (diff,), level)
    return seeds_and_items(per_seed, boot.var(ddof=1), a=a, b=b, n_items=n, level=level)


def _rows(probs, name: str) -> list[np.ndarray]:
    """One score vector per seed: a single [N] (or [N,2]) array is one seed; a list of them is several."""
    if isinstance(probs, np.ndarray) and probs.ndim >= 1 and np.ndim(probs[0]) == 0:
        return [probs]
    if isinstance(probs, np.ndarray) and probs.ndim == 2 and probs.shape[1] == 2:
        return [probs]
    rows = list(probs)
    if not rows:
        raise ValueError(f"{name} is empty; pass P(positive) per test item, or one such vector per seed")
    if np.ndim(rows[0]) == 0:
        return [np.asarray(rows)]
    return [np.asarray(r) for r in rows]
