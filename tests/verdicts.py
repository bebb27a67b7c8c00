"""Shared by the exercise-check tests: a stub that is not done yet, one that crashes, the one verdict line a check
prints, and the verdicts every check must give."""

import contextlib
import io


def stub(*args, **kwargs):
    """A learner's function that is not written yet."""
    raise NotImplementedError()


def crash(*args, **kwargs):
    """A learner's function that raises."""
    raise KeyError("oops")


def verdict(check, *args) -> tuple[bool, str]:
    """(passed, the single line printed) of one check call; fails the test on more lines or a traceback."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        ok = check(*args)
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    return ok, lines[0]


def assert_every_verdict(check, right, wrongs) -> None:
    """The right answer gets ✅; each wrong one a single ❌ line; a stub ⏳; a crash names its error; a value instead of
    a function fails: one line each, never a traceback."""
    ok, line = verdict(check, right)
    assert ok and line.startswith("✅"), line
    for wrong in wrongs:
        ok, line = verdict(check, wrong)
        assert not ok and line.startswith("❌"), (wrong, line)
    ok, line = verdict(check, stub)
    assert not ok and line.startswith("⏳"), line
    ok, line = verdict(check, crash)
    assert not ok and "KeyError" in line, line
    assert verdict(check, "not a function")[0] is False
