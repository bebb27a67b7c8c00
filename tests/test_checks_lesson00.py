"""Exercise 0.1's check (tlcourse.checks.lesson00) on the lesson's own top-1 answers."""

from verdicts import stub, verdict

from tlcourse.checks import lesson00
from tlcourse.checks.base import FAIL, PASS, TODO

# the lesson's own top-1 answers (EfficientNet-Lite0 at 224 px), rounded; the rest of each top-5 does not matter here
PHOTO_TOP1 = {"coffee": ("espresso", 0.88), "chelsea": ("Egyptian cat", 0.79), "astronaut": ("bobsled", 0.30),
              "rocket": ("drilling platform", 0.54), "hubble_deep_field": ("nematode", 0.09), "ihc": ("brain coral", 0.17),
              "retina": ("lampshade", 0.14), "brick": ("racket", 0.12), "grass": ("soccer ball", 0.06),
              "gravel": ("doormat", 0.05)}  # fmt: skip
PREDS = {name: [top1, ("other", 0.01)] for name, top1 in PHOTO_TOP1.items()}


def test_check_least_confident_accepts_a_threshold_between_the_two_groups():
    ok, line = verdict(lesson00.check_least_confident, lambda top: top[0][1] < 0.5, PREDS)
    assert ok and line.startswith(PASS)
    assert "between 0.30 and 0.79" in line and "'drilling platform'" in line and "trusts it" in line
    ok, line = verdict(lesson00.check_least_confident, lambda top: top[0][1] < 0.6, PREDS)  # also flags the rocket
    assert ok and "your rule flags it" in line
    ok, _ = verdict(lesson00.check_least_confident, lambda top: top[0][1] - top[1][1] < 0.5, PREDS)  # a margin rule
    assert ok


def test_check_least_confident_catches_wrong_rules():
    wrong = {
        "too high": (lambda top: top[0][1] < 0.8, "flags 'chelsea'"),  # the cat is an ImageNet class
        "too low": (lambda top: top[0][1] < 0.2, "trusts 'astronaut'"),
        "by label": (
            lambda top: top[0][0] in {PHOTO_TOP1[n][0] for n in lesson00.OTHER_SUBJECTS},
            "trusts a top-1 'espresso'",
        ),
        "never": (lambda top: False, "trusts"),
        "always": (lambda top: True, "flags a photo whose top-1"),
        "not a bool": (lambda top: "yes", "should be a bool"),
        "crash": (lambda top: top[0][2], "IndexError"),
    }
    for name, (rule, text) in wrong.items():
        ok, line = verdict(lesson00.check_least_confident, rule, PREDS)
        assert not ok and line.startswith(FAIL) and text in line, (name, line)
    ok, line = verdict(lesson00.check_least_confident, stub, PREDS)
    assert not ok and line.startswith(TODO) and "not done yet" in line


def test_check_least_confident_does_not_let_the_rule_change_preds():
    preds = {k: [tuple(p) for p in v] for k, v in PREDS.items()}

    def greedy(top):
        top.clear()  # mutates its argument
        return True

    verdict(lesson00.check_least_confident, greedy, preds)
    assert preds == PREDS
