"""Shared by the exercise-check tests: a stub that is not done yet, and the one verdict line a check prints."""

import contextlib
import io


def stub(*args):
    """A learner's function that is not written yet."""
    raise NotImplementedError()


def verdict(check, *args) -> tuple[bool, str]:
    """(passed, the single line printed) of one check call; fails the test on more lines or a traceback."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        ok = check(*args)
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    return ok, lines[0]
