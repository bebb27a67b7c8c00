"""Friendly exercise checks: a verdict for right answers, wrong answers, wrong types and unfinished stubs alike.

A lesson's check is a small function that calls the learner's function and states what it expects:

    def check_double(fn):
        def body():
            out = call(fn, 3)
            expect(out == 6, f"double(3) returned {out!r}, expected 6", hint="multiply by 2")
        return run_check("Exercise 0.1 (double)", body)

`run_check` never lets a traceback escape: it prints one verdict and returns True (passed) or False. Under nbgrader
(autograde, validate) it raises after printing a verdict that is not ✅, so the check cell is an autograded test.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

PASS, TODO, FAIL = "✅", "⏳", "❌"
NBGRADER_ENV = "NBGRADER_EXECUTION"  # set by nbgrader in the kernels it runs to autograde or validate


class CheckFailed(Exception):
    """An answer that runs but is not right; carries the hint shown to the learner."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.hint = hint


class _LearnerError(Exception):
    """An exception raised inside the learner's own code (wrapped by `call`)."""

    def __init__(self, error: BaseException):
        super().__init__(str(error))
        self.error = error


def expect(condition: bool, message: str, hint: str = "") -> None:
    """Fail the check with `message` (and a hint) unless `condition` holds."""
    if not condition:
        raise CheckFailed(message, hint)


_WIDER = {int: (int, np.integer), float: (float, np.floating)}  # numpy's scalars count as Python's
_PLAIN = {np.integer: "int", np.floating: "float", np.bool_: "bool", np.ndarray: "NumPy array"}


def expect_type(value: Any, types: type | tuple[type, ...], what: str) -> None:
    """Fail with a clear message unless `value` is an instance of `types`.

    numpy scalars pass for int and float (np.int64 is an int here); a bool never passes for a number.
    """
    types = types if isinstance(types, tuple) else (types,)
    accepted = tuple(t for base in types for t in _WIDER.get(base, (base,)))
    is_bool = isinstance(value, bool | np.bool_) and not any(t in (bool, np.bool_) for t in types)
    if is_bool or not isinstance(value, accepted):
        names = " or ".join(dict.fromkeys(_PLAIN.get(t, t.__name__) for t in types))
        article = "an" if names[0] in "aeiou" else "a"
        raise CheckFailed(
            f"{what} should be {article} {names}, got {type(value).__name__}", hint=f"return {article} {names}"
        )


def call(fn: Callable, *args, **kwargs):
    """Call the learner's function; a stub's NotImplementedError or any error inside it is reported, not raised."""
    if not callable(fn):
        raise CheckFailed(f"expected a function, got {type(fn).__name__}", hint="pass the function itself, without ()")
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise
    except Exception as e:  # the learner's code failed: report it as theirs
        raise _LearnerError(e) from e


def grading() -> bool:
    """True while nbgrader executes the notebook: it sets NBGRADER_EXECUTION ("autograde" or "validate")."""
    return bool(os.environ.get(NBGRADER_ENV))


def _verdict(title: str, body: Callable[[], str | None]) -> tuple[bool, str]:
    """(passed, the verdict line) of a check body; every exception becomes a verdict."""
    try:
        extra = body()
    except NotImplementedError:
        return False, (
            f"{TODO} {title}: not done yet — replace `raise NotImplementedError` with your code, then run this again."
        )
    except CheckFailed as e:
        hint = f" Hint: {e.hint}" if e.hint else ""
        return False, f"{FAIL} {title}: not quite — {e}.{hint}"
    except _LearnerError as e:
        err = e.error
        return False, f"{FAIL} {title}: your code raised {type(err).__name__}: {err}. Fix it and run the cell again."
    except Exception as e:  # a bug in the check itself must still not drown the learner in a traceback
        return False, f"{FAIL} {title}: the check could not run ({type(e).__name__}: {e}). Please report this."
    return True, f"{PASS} {title}: correct!{' ' + extra if extra else ''}"


def run_check(title: str, body: Callable[[], str | None]) -> bool:
    """Run a check body and print exactly one verdict line; True when the exercise passes.

    Under nbgrader (see `grading`) a verdict other than ✅ is printed and then raised as an AssertionError, because
    nbgrader scores an autograded test cell by whether it raises: the cell scores zero and its feedback shows the line.
    """
    passed, line = _verdict(title, body)
    print(line)
    if not passed and grading():
        raise AssertionError(line)
    return passed
