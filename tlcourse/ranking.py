"""Transferability scores checked against transfer measured on the same labelled images: probes, picks, rank agreement.

    gt = probe_ground_truth(feats, labels, splits)       # C chosen on validation; test accuracy per labelled subset
    sc = score_table(feats, logits, labels, splits)      # {score: [value per subset]} and seconds per call
    top = within_noise({source: accs})                   # the best source and every source tied with it (stats)
    kendall_tau(score_means, acc_means)                  # rank agreement over sources

A "split" is (train, val, test) index arrays from `targets.split`: the scores see exactly the train images the probe
is fitted on; val only chooses the probe's C; test only measures. Every source gets the same splits, so sources can be
compared subset by subset (`stats.compare_scores`: a paired t interval over the subsets).
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from tlcourse import data, stats
from tlcourse.transferability import SCORES

C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0)  # strengths of the scaled logistic probe, chosen on validation
Split = tuple[np.ndarray, np.ndarray, np.ndarray]


class SpanProbe:
    """`features.logistic_probe` (StandardScaler, then L2-regularised multinomial logistic regression), fitted in the
    span of its standardised training rows. The L2 penalty makes the optimal weights a combination of those rows, so
    it is the same optimum (the predictions agree up to the solver's tolerance), but a probe on N ≪ D images solves
    an N-dimensional problem instead of a D-dimensional one. `at(C)` refits at another C on the same span."""

    def __init__(self, train_x: np.ndarray, train_y: np.ndarray, C: float = 0.1, max_iter: int = 500):
        from sklearn.preprocessing import StandardScaler

        train_x, self.train_y = data.labelled(train_x, train_y)
        self.scaler = StandardScaler().fit(train_x)
        z = self.scaler.transform(train_x)  # [N,D]
        _, s, vt = np.linalg.svd(z, full_matrices=False)
        self.basis = vt[s > s.max() * max(z.shape) * np.finfo(np.float64).eps]  # [r,D] orthonormal rows
        self.train_coords = z @ self.basis.T  # [N,r]
        self.max_iter = max_iter
        self._fit(C)

    def _fit(self, C: float) -> None:
        from sklearn.linear_model import LogisticRegression

        self.C = float(C)
        self.model = LogisticRegression(C=C, max_iter=self.max_iter).fit(self.train_coords, self.train_y)

    def at(self, C: float) -> SpanProbe:
        """The same probe refitted at another C (a new object sharing the scaler and the span)."""
        other = copy.copy(self)
        other._fit(C)
        return other

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted labels [N]."""
        return self.model.predict(self.scaler.transform(np.asarray(x)) @ self.basis.T)

    def score(self, x: np.ndarray, y: np.ndarray) -> float:
        """Accuracy on (x, y)."""
        return float((self.predict(x) == np.asarray(y)).mean())


@dataclass(frozen=True)
class ProbeResult:
    """A source's linear probe on one target, per labelled subset: the C chosen on that subset's validation images,
    its validation accuracy per C, the test accuracy and predictions; seconds spent (choosing C included)."""

    C: tuple[float, ...]
    val_by_C: tuple[dict[float, float], ...]
    test_acc: tuple[float, ...]
    test_pred: tuple[np.ndarray, ...]
    seconds: float

    @property
    def mean(self) -> float:
        """Mean test accuracy over the labelled subsets."""
        return float(np.mean(self.test_acc))


def probe_ground_truth(feats: np.ndarray, labels: np.ndarray, splits: Sequence[Split],
                       grid: Sequence[float] = C_GRID) -> ProbeResult:  # fmt: skip
    """Scaled logistic probe per labelled subset, its C chosen on that subset's own validation images (ties go to the
    smaller C), then tested once. Each subset chooses alone because one subset's validation images can be another's
    test images: a C chosen on all of them together would have seen some of every subset's test images."""
    start = time.perf_counter()
    labels = np.asarray(labels)
    grid = sorted(float(c) for c in grid)
    chosen, vals, preds = [], [], []
    for tr, va, te in splits:
        probe = SpanProbe(feats[tr], labels[tr], grid[0])  # one span per labelled subset, every C from it
        val = {C: float(probe.at(C).score(feats[va], labels[va])) for C in grid}
        best = max(val, key=lambda c: (val[c], -c))
        chosen.append(best)
        vals.append(val)
        preds.append(probe.at(best).predict(feats[te]))
    accs = tuple(float((p == labels[te]).mean()) for p, (_, _, te) in zip(preds, splits, strict=True))
    return ProbeResult(tuple(chosen), tuple(vals), accs, tuple(preds), time.perf_counter() - start)


def score_table(feats: np.ndarray, logits: np.ndarray, labels: np.ndarray, splits: Sequence[Split],
                scores: Mapping[str, Callable] | None = None) -> tuple[dict[str, list[float]], dict[str, float]]:  # fmt: skip
    """({score: [value on each subset's train images]}, {score: mean seconds per call}) for one source on one target."""
    scores = SCORES if scores is None else scores
    labels = np.asarray(labels)
    values: dict[str, list[float]] = {name: [] for name in scores}
    seconds: dict[str, list[float]] = {name: [] for name in scores}
    for tr, _, _ in splits:
        for name, fn in scores.items():
            start = time.perf_counter()
            values[name].append(float(fn(feats[tr], logits[tr], labels[tr])))
            seconds[name].append(time.perf_counter() - start)
    return values, {name: float(np.mean(s)) for name, s in seconds.items()}


@dataclass(frozen=True)
class FineTuneResult:
    """A source fine-tuned on one target: the body learning rate chosen on the first subset's validation images,
    then per labelled subset the test accuracy and predictions, and the seconds of each training run."""

    lr: float
    val_by_lr: dict[float, float]
    test_acc: tuple[float, ...]
    test_pred: tuple[np.ndarray, ...]
    train_seconds: tuple[float, ...]  # every run, the learning-rate trials included

    @property
    def mean(self) -> float:
        """Mean test accuracy over the labelled subsets."""
        return float(np.mean(self.test_acc))


def fine_tune_ground_truth(source: str, images: np.ndarray, labels: np.ndarray, splits: Sequence[Split],
                           lrs: Sequence[float] = (1e-4, 3e-4), **kwargs) -> FineTuneResult:  # fmt: skip
    """`sources.fine_tune` per labelled subset. The first subset trains once per rate in `lrs` and keeps the one with
    the best validation accuracy; the other subsets train at that rate. Each run is tested once (kwargs: size, epochs,
    progress, ...)."""
    from tlcourse import sources

    labels = np.asarray(labels)
    size = kwargs.get("size", 112)
    (tr0, va0, te0), seconds, val_by_lr, models = splits[0], [], {}, {}
    for lr in lrs:  # choose the rate on the first subset's validation images
        models[lr], hist = sources.fine_tune(source, (images[tr0], labels[tr0]), lr=lr, seed=0, **kwargs)
        seconds.append(float(sum(hist["seconds"])))
        val_by_lr[float(lr)] = float((sources.predict_images(models[lr], images[va0], size) == labels[va0]).mean())
    lr = max(val_by_lr, key=lambda r: (val_by_lr[r], -r))  # ties go to the smaller rate
    preds = [sources.predict_images(models[lr], images[te0], size)]
    del models
    for i, (tr, _, te) in enumerate(splits[1:], start=1):
        model, hist = sources.fine_tune(source, (images[tr], labels[tr]), lr=lr, seed=i, **kwargs)
        seconds.append(float(sum(hist["seconds"])))
        preds.append(sources.predict_images(model, images[te], size))
    accs = tuple(float((p == labels[te]).mean()) for p, (_, _, te) in zip(preds, splits, strict=True))
    return FineTuneResult(lr, val_by_lr, accs, tuple(preds), tuple(seconds))


@dataclass(frozen=True)
class Top:
    """The source with the best mean accuracy, the sources tied with it (itself included), and each comparison."""

    best: str
    tied: tuple[str, ...]
    comparisons: dict[str, stats.Comparison]  # other source -> best minus it, over the paired subsets
    level: float = 0.95  # the truly best source is wrongly called beaten with at most 1 − level chance

    def ok(self, source: str) -> bool:
        """Is `source` the best or within noise of it?"""
        return source in self.tied

    def family(self) -> str:
        """How the intervals were adjusted, e.g. 'Bonferroni: 3 comparisons with the best, each interval at 98.33% …'."""
        m = len(self.comparisons)
        each = next(iter(self.comparisons.values())).level
        return (
            f"Bonferroni: {m} comparison{'s' if m != 1 else ''} with the best, each interval at {100 * each:.4g}% and "
            f"each p × {m}, so the truly best is wrongly called beaten with at most {1 - self.level:.0%} chance"
        )


def bonferroni(level: float, m: int) -> float:
    """The level of each of m intervals so that all m hold together with probability ≥ `level`: 1 − (1 − level)/m."""
    return 1 - (1 - level) / max(1, m)


def within_noise(accs: Mapping[str, Sequence[float]], level: float = 0.95) -> Top:
    """The best source by mean accuracy and every source whose paired difference from it (one accuracy per labelled
    subset, the same subsets for all) is a tie within noise by `stats.compare_scores`.

    The best is picked after looking, and it is compared with every other source: m comparisons, each of which could
    come out "beats" by chance. So each interval is taken at 1 − (1 − level)/m and each p-value multiplied by m
    (Bonferroni): the chance that the truly best source is wrongly called beaten is then at most 1 − `level`. The
    best's lead stays a little optimistic (the winner's curse); with several sources within noise of it, "the best" is
    only the one that happened to come first.
    """
    if len(accs) < 2:
        raise ValueError(f"need at least two sources to compare, got {list(accs)}")
    best = max(accs, key=lambda s: np.mean(accs[s]))
    m = len(accs) - 1
    each = bonferroni(level, m)
    comparisons = {  # each interval at the adjusted level, and its p-value multiplied by m (capped at 1) to match
        s: dataclasses.replace(c, p=min(1.0, m * c.p))
        for s, a in accs.items()
        if s != best
        for c in [stats.compare_scores(accs[best], a, a=best, b=s, level=each)]
    }
    tied = (best, *(s for s, c in comparisons.items() if c.verdict == "tie within noise"))
    return Top(best, tied, comparisons, level)


def pick_rate(values: Mapping[str, Sequence[float]], top: Top) -> tuple[int, int]:
    """(labelled subsets on which the source with the highest score is `top.ok`, subsets): a score's pick per subset,
    from {source: [score on each subset]}."""
    names = list(values)
    table = np.array([values[s] for s in names])  # [sources, subsets]
    picks = [names[i] for i in table.argmax(0)]
    return sum(top.ok(p) for p in picks), len(picks)


def chance_of_hits(chances: Sequence[float], hits: int) -> float:
    """P(at least `hits` successes) when trial i succeeds with probability chances[i], independently: how often a
    source drawn at random would have done as well as a score whose pick was right on `hits` targets (on target i a
    random pick is right with chance[i] = tied sources / sources). Exact (the Poisson-binomial tail)."""
    p = np.asarray(chances, dtype=float)
    if ((p < 0) | (p > 1)).any() or not 0 <= hits <= len(p):
        raise ValueError(f"chances must lie in [0, 1] and hits in 0..{len(p)}; got {list(p)}, {hits}")
    dist = np.zeros(len(p) + 1)  # dist[k] = P(k successes so far)
    dist[0] = 1.0
    for q in p:
        dist[1:] = dist[1:] * (1 - q) + dist[:-1] * q
        dist[0] *= 1 - q
    return float(dist[hits:].sum())


def kendall_tau(score: Mapping[str, float], truth: Mapping[str, float]) -> float:
    """Kendall's τ-b between a score and the measured accuracy over the same sources (1: same order, −1: reversed)."""
    from scipy.stats import kendalltau

    names = sorted(truth)
    if sorted(score) != names or len(names) < 2:
        raise ValueError(f"score and truth must cover the same ≥ 2 sources; got {sorted(score)} and {names}")
    return float(kendalltau([score[n] for n in names], [truth[n] for n in names]).statistic)


def resolved_pairs(score: Mapping[str, float], accs: Mapping[str, Sequence[float]],
                   level: float = 0.95) -> tuple[int, int]:  # fmt: skip
    """(pairs ordered like the measurement, pairs the measurement resolves): of all source pairs whose paired
    accuracy difference is not a tie within noise, how many the score puts in the same order. Every pair is tested,
    so each interval is at 1 − (1 − level)/pairs (Bonferroni), as within_noise does for its comparisons."""
    names = sorted(accs)
    each = bonferroni(level, len(names) * (len(names) - 1) // 2)
    agree = total = 0
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            cmp = stats.compare_scores(accs[a], accs[b], a=a, b=b, level=each)
            if cmp.verdict != "tie within noise":
                total += 1
                agree += (cmp.diff > 0) == (score[a] > score[b])
    return agree, total


def ranking(values: Mapping[str, float]) -> list[str]:
    """Names sorted from the highest value to the lowest."""
    return sorted(values, key=lambda k: -values[k])


def agreement(accs: Mapping[str, Sequence[float]], values: Mapping[str, Mapping[str, Sequence[float]]],
              floor: str = "random") -> dict[str, dict]:  # fmt: skip
    """How well each score ranks the sources of one target: {score: row}, from the measured accuracies {source:
    [per labelled subset]} and the scores {source: {score: [per subset]}}.

    A row holds Kendall's τ over all sources and over all but `floor`; of the source pairs the measurement resolves,
    how many the score orders the same way; the score's pick (highest mean) and whether it is the best or tied with
    it; on how many labelled subsets the per-subset pick was; and whether the score puts `floor` last.
    """
    top = within_noise(accs)
    truth = {s: float(np.mean(a)) for s, a in accs.items()}
    others = [s for s in accs if s != floor]
    rows = {}
    for name in next(iter(values.values())):
        mean = {s: float(np.mean(values[s][name])) for s in accs}
        agree, resolved = resolved_pairs(mean, accs)
        hits, subsets = pick_rate({s: values[s][name] for s in accs}, top)
        pick = ranking(mean)[0]
        rows[name] = {"τ": kendall_tau(mean, truth),
                      f"τ without {floor}": kendall_tau({s: mean[s] for s in others}, {s: truth[s] for s in others}),
                      "pairs in order": agree, "pairs resolved": resolved, "pick": pick, "pick ok": top.ok(pick),
                      "subset picks ok": hits, "subsets": subsets, f"{floor} last": ranking(mean)[-1] == floor}  # fmt: skip
    return rows
