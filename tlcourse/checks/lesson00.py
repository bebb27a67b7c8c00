"""Exercise check of lesson 00 (setup tour): when not to trust an ImageNet network's label."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tlcourse.checks.base import call, expect, expect_type, run_check

IMAGENET_SUBJECTS = ("coffee", "chelsea")  # an espresso and a cat: ImageNet-1k has classes for both
# ImageNet-1k has no class for the subjects of these photos
OTHER_SUBJECTS = ("astronaut", "hubble_deep_field", "ihc", "retina", "brick", "grass", "gravel")
ROCKET_CLASSES = ("missile", "projectile", "space shuttle")  # the rocket lies in between: near classes exist


def check_least_confident(fn: Callable, preds: dict[str, list[tuple[str, float]]]) -> bool:
    """Lesson 00, exercise 0.1: `fn(top)` decides from one photo's top-k list [(label, probability), ...] whether its
    answer should not be trusted (True = flag it). It must trust the ImageNet subjects and flag the other photos."""

    def top_of(name: str) -> str:
        label, p = preds[name][0]
        return f"{name!r} (top-1 {label!r}, {p:.2f})"

    def flags(top) -> bool:
        got = call(fn, [tuple(pair) for pair in top])  # a copy: the learner's rule cannot change preds
        expect_type(got, (bool, np.bool_), "your rule's answer")
        return bool(got)

    def body():
        sure = [("goldfish", 0.97), ("tench", 0.01), ("axolotl", 0.005), ("eel", 0.005), ("puffer", 0.003)]
        expect(not flags(sure), "your rule flags a photo whose top-1 answer has probability 0.97",
               hint="flag the answers the network is unsure of; a top-1 of 0.97 is as sure as it gets")  # fmt: skip
        flat = [("espresso", 0.09), ("cup", 0.08), ("consomme", 0.07), ("coffee mug", 0.06), ("eggnog", 0.05)]
        expect(flags(flat), "your rule trusts a top-1 'espresso' at probability 0.09 (a nearly flat top-5)",
               hint="decide from the probabilities, not from the label names")  # fmt: skip
        ours = [n for n in IMAGENET_SUBJECTS if n in preds]
        others = [n for n in OTHER_SUBJECTS if n in preds]
        for name in ours:
            expect(not flags(preds[name]), f"your rule flags {top_of(name)}, a photo of an ImageNet class",
                   hint="put your cut below the top-1 probability of the photos ImageNet has classes for")  # fmt: skip
        for name in others:
            expect(flags(preds[name]), f"your rule trusts {top_of(name)}, but ImageNet has no class for this photo",
                   hint="compare its top-1 probability with the coffee's and the cat's: where would you cut?")  # fmt: skip
        facts = []
        if ours and others:
            lo, hi = max(preds[n][0][1] for n in others), min(preds[n][0][1] for n in ours)
            facts.append(f"any top-1 threshold between {lo:.2f} and {hi:.2f} sorts these photos the same way")
        if "rocket" in preds:
            label, p = preds["rocket"][0]
            how = "a wrong answer, though ImageNet has rocket-like classes" if label not in ROCKET_CLASSES else "fair"
            verdict = "flags it" if flags(preds["rocket"]) else "trusts it: confident is not the same as right"
            facts.append(f"the rocket's top-1 is {label!r} at {p:.2f} ({how}), and your rule {verdict}")
        return "; ".join(facts) + "." if facts else None

    return run_check("Exercise 0.1 (when not to trust the label)", body)
