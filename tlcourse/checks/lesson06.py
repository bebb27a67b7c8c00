"""Exercise checks of lesson 06 (choosing a source): each calls the learner's function, compares it with a reference or
with what was measured, and prints one friendly verdict (never a traceback)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from tlcourse import ranking, transferability
from tlcourse.checks.base import CheckFailed, call, expect, expect_type, run_check

# ---- 6.1 H-score from its formula ------------------------------------------------------------------------------------


def _h_toys() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(what, features, labels): more images than dimensions, unequal classes, a duplicated (collinear) feature."""
    rng = np.random.default_rng(6)
    y = np.repeat(np.arange(3), 30)
    centres = rng.normal(0, 1, (3, 5))
    blobs = centres[y] + rng.normal(0, 1, (90, 5))
    y_uneven = np.repeat(np.arange(3), [50, 25, 15])
    uneven = centres[y_uneven] * 1.5 + rng.normal(0, 1, (90, 5))
    singular = np.hstack([blobs, blobs[:, :1]])  # cov(f) has a zero eigenvalue
    return [("3 equal classes in 5 dimensions", blobs, y), ("classes of 50, 25 and 15 images", uneven, y_uneven),
            ("a feature repeated twice (cov(f) is singular)", singular, y)]  # fmt: skip


def check_h_score(fn: Callable, lesson_features: Mapping[str, np.ndarray] | None = None,
                  lesson_labels: np.ndarray | None = None) -> bool:  # fmt: skip
    """Exercise 6.1: fn(features [N,D], labels [N]) -> tr(cov(f)⁺ cov(E[f | y])), the original H-score.

    Toy features with known answers first; then, if given, the lesson's features of a few sources on one target's
    labelled images (fewer images than dimensions), whose values the ✅ line reports next to K − 1.
    """

    def body():
        for what, f, y in _h_toys():
            got = call(fn, f.copy(), y.copy())
            expect_type(got, (float, np.floating), "h_score(...)")
            want = transferability.h_score(f, y, shrinkage=False)
            if abs(float(got) - want) <= 1e-6 * max(1.0, abs(want)):
                continue
            means = np.stack([f[y == c].mean(0) for c in np.unique(y)])
            per_class = float(np.trace(np.linalg.pinv(np.cov(f, rowvar=False)) @ np.cov(means, rowvar=False)))
            g = np.zeros_like(f)
            for c in np.unique(y):
                g[y == c] = f[y == c].mean(0)
            mixed = [float(np.trace(np.linalg.pinv(np.cov(f, rowvar=False, bias=bf)) @ np.cov(g, rowvar=False, bias=bg)))
                     for bf, bg in ((True, False), (False, True))]  # fmt: skip
            if abs(float(got) - per_class) <= 1e-6 * max(1.0, abs(per_class)):
                hint = ("cov(E[f | y]) is over the N images, each replaced by its class mean (so a big class weighs "
                        "more), not over the K class means")  # fmt: skip
            elif any(abs(float(got) - m) <= 1e-6 * max(1.0, abs(m)) for m in mixed):
                hint = "use the same normalisation for both covariances (np.cov's default, N − 1, for both)"
            elif "singular" in what or not np.isfinite(got) or abs(float(got)) > 1e3 * max(1.0, abs(want)):
                hint = "cov(f) is singular here: invert it with np.linalg.pinv, not np.linalg.inv"
            else:
                hint = ("np.cov(f, rowvar=False) gives the [D,D] covariance; g[i] = mean of f over the images of "
                        "class y[i]; return np.trace(np.linalg.pinv(cov_f) @ cov_g)")  # fmt: skip
            raise CheckFailed(f"on {what} you got {float(got):.4f}, expected {want:.4f}", hint)
        if not lesson_features or lesson_labels is None:
            return "the formula as written, pseudo-inverse and all."
        k = len(np.unique(lesson_labels))
        vals = {s: float(call(fn, f, lesson_labels)) for s, f in lesson_features.items()}
        n, d = next(iter(lesson_features.values())).shape
        shown = ", ".join(f"{s} {v:.3f}" for s, v in vals.items())
        full = [s for s, f in lesson_features.items() if np.linalg.matrix_rank(f - f.mean(0)) == n - 1]
        if n > d or not full:
            return f"on the lesson's {n} labelled images × {d} features: {shown}."
        return (f"on the lesson's {n} labelled images × {d} features: {shown}. With fewer images than features, "
                f"whenever the centred features have full rank N − 1 (here: {', '.join(full)}) the formula gives "
                f"exactly K − 1 = {k - 1} whatever the labels, so it cannot rank sources: hence the Ledoit-Wolf "
                "shrinkage in transferability.h_score.")  # fmt: skip

    return run_check("Exercise 6.1 (H-score from its formula)", body)


# ---- 6.2 predict a ranking before measuring it ---------------------------------------------------------------------


def _valid_ranking(got, sources: Sequence[str], where: str) -> list[str]:
    expect(isinstance(got, list | tuple), f"{where}: expected a list of source names, got {type(got).__name__}",
           "return a list such as ['lite2', 'lite1', ...], best first")  # fmt: skip
    got = [str(g) for g in got]
    missing, extra = sorted(set(sources) - set(got)), sorted(set(got) - set(sources))
    expect(not extra, f"{where}: {extra} are not sources; the sources are {list(sources)}")
    expect(not missing and len(got) == len(set(got)),
           f"{where}: rank every source exactly once ({len(sources)} names); missing {missing}",
           "sort all the source names, best first")  # fmt: skip
    return got


def check_ranking_prediction(fn: Callable, grid: Mapping[str, Mapping[str, float]],
                             measured: Mapping[str, Sequence[float]], target: str = "the new target",
                             score_rankings: Mapping[str, list[str]] | None = None) -> bool:  # fmt: skip
    """Exercise 6.2: fn(grid) -> the sources ranked best first on a target not yet measured, where grid = {target:
    {source: mean probe accuracy}} is what was measured before. Graded against `measured` ({source: test accuracy
    per labelled subset} on the new target): the first source must be the best, or tied with it within noise."""

    def body():
        sources = list(measured)
        got = _valid_ranking(call(fn, {t: dict(v) for t, v in grid.items()}), sources, "your prediction")
        top = ranking.within_noise(measured)
        means = {s: float(np.mean(a)) for s, a in measured.items()}
        tau = ranking.kendall_tau({s: -got.index(s) for s in sources}, means)
        if not top.ok(got[0]):
            c = top.comparisons[got[0]]
            raise CheckFailed(f"you put {got[0]} first; on {target} {top.best} beats it ({c.points()}); "
                              f"measured order {', '.join(ranking.ranking(means))} (your Kendall τ {tau:+.2f})",
                              "which measured target is most like this one, and what won there?")  # fmt: skip
        others = "" if not score_rankings else "; the scores' first picks: " + ", ".join(
            f"{n} {r[0]}{'' if top.ok(r[0]) else ' (beaten)'}" for n, r in score_rankings.items())  # fmt: skip
        tied = f" (tied within noise with {', '.join(s for s in top.tied if s != got[0])})" if len(top.tied) > 1 else ""
        where = "the best" if got[0] == top.best else "within noise of the best"
        odds = f" ({len(top.tied)} of {len(sources)} sources would have passed: a random first pick had that chance)"
        return f"your first pick {got[0]} is {where}{tied}{odds}; Kendall τ of your whole ranking {tau:+.2f}{others}."

    return run_check("Exercise 6.2 (predict the ranking first)", body)


# ---- 6.3 choose a source under a compute budget ---------------------------------------------------------------------


class BudgetExceeded(RuntimeError):
    """Asked for a measurement the remaining budget cannot pay for."""


class Budget:
    """What a practitioner can ask about each source on the new target, each answer charged its measured seconds.

    ask(what, source) with what in COSTS' keys returns: a score's value on the labelled images ("LogME", "LEEP",
    "NCE", "H-score"), the linear probe's validation accuracy ("probe"), or the fine-tuned network's validation
    accuracy ("fine-tune"). Asking twice for the same thing is free; asking for more than is left raises BudgetExceeded.
    `shared` ({source: seconds}): the frozen forward pass of the labelled images, which every question but a fine-tune
    needs; it is charged once per source, with the first such question.
    """

    def __init__(self, answers: Mapping[tuple[str, str], float], costs: Mapping[tuple[str, str], float],
                 seconds: float, shared: Mapping[str, float] | None = None):  # fmt: skip
        self.answers, self.costs, self.seconds = dict(answers), dict(costs), float(seconds)
        self.shared, self.paid = dict(shared or {}), set()
        self.sources = list(dict.fromkeys(s for _, s in self.answers))  # in the order given
        self.kinds = list(dict.fromkeys(w for w, _ in self.answers))
        self.spent, self.asked = 0.0, []

    @property
    def left(self) -> float:
        """Seconds still to spend."""
        return self.seconds - self.spent

    def cost(self, what: str, source: str) -> float:
        """Seconds `ask(what, source)` would charge now (0 if already asked)."""
        self._known(what, source)
        if (what, source) in self.asked:
            return 0.0
        forward = self.shared.get(source, 0.0) if what != "fine-tune" and source not in self.paid else 0.0
        return self.costs[(what, source)] + forward

    def _known(self, what: str, source: str) -> None:
        if (what, source) not in self.answers:
            known = f"kinds {self.kinds}, sources {self.sources}"
            raise KeyError(f"nothing to ask for ({what!r}, {source!r}); {known}")

    def __call__(self, what: str, source: str) -> float:
        cost = self.cost(what, source)
        if cost > self.left + 1e-9:
            raise BudgetExceeded(f"{what} of {source} costs {cost:.1f} s, only {self.left:.1f} s of {self.seconds:.1f} "
                                 "s are left")  # fmt: skip
        if (what, source) not in self.asked:
            self.spent += cost
            self.asked.append((what, source))
            self.paid |= {source} if what != "fine-tune" else set()
        return self.answers[(what, source)]


def check_budget_choice(fn: Callable, answers: Mapping[tuple[str, str], float],
                        costs: Mapping[tuple[str, str], float], seconds: float,
                        measured: Mapping[str, Sequence[float]], shared: Mapping[str, float] | None = None) -> bool:  # fmt: skip
    """Exercise 6.3: fn(ask, budget_seconds) -> a source, spending at most the budget through `ask` (a Budget).

    Graded against `measured` ({source: fine-tuned test accuracy per labelled subset}): the choice must be the best
    source or tied with it within noise, and the spending stay within the budget. `shared`: see Budget."""

    def body():
        expect(callable(fn), f"expected a function, got {type(fn).__name__}", "pass the function itself, without ()")
        ask = Budget(answers, costs, seconds, shared)
        try:
            got = fn(ask, seconds)
        except BudgetExceeded as e:
            raise CheckFailed(f"over budget after asking for {len(ask.asked)} things: {e}",
                              "ask.cost(what, source) and ask.left tell you what you can still afford") from None  # fmt: skip
        except NotImplementedError:
            raise
        except Exception as e:
            raise CheckFailed(f"your code raised {type(e).__name__}: {e}") from None
        expect(isinstance(got, str) and got in measured,
               f"return one of the sources {list(measured)}, got {got!r}")  # fmt: skip
        top = ranking.within_noise(measured)
        asked = ", ".join(f"{w} {s}" for w, s in ask.asked) or "nothing"
        if not top.ok(got):
            raise CheckFailed(f"you chose {got} after asking for {asked}; fine-tuned, {top.best} beats it "
                              f"({top.comparisons[got].points()})",
                              "a score or probe ranks cheaply; a fine-tune is what you will ship — spend on that")  # fmt: skip
        best_text = "the best" if got == top.best else f"tied within noise with the best ({top.best})"
        return (f"you spent {ask.spent:.0f} of {seconds:.0f} s ({asked}) and chose {got}: fine-tuned test accuracy "
                f"{np.mean(measured[got]):.3f}, {best_text} — {len(top.tied)} of {len(measured)} sources would have "
                "passed, so read your choice as reasonable, not as proof of your method.")  # fmt: skip

    return run_check("Exercise 6.3 (a source under a budget)", body)
