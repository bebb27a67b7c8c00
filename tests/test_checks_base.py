"""The verdict base (tlcourse.checks.base): one line per outcome, never a traceback."""

from tlcourse.checks import base as checks


def _double_check(fn):
    def body():
        out = checks.call(fn, 3)
        checks.expect_type(out, (int, float), "the result")
        checks.expect(out == 6, f"double(3) returned {out!r}, expected 6", hint="multiply by 2")

    return checks.run_check("Exercise", body)


def stub(x):
    raise NotImplementedError()


def test_four_cases_one_line_each(capsys):
    verdicts = {}
    for name, fn in {"right": lambda x: 2 * x, "wrong": lambda x: x + 1, "type": lambda x: "6", "stub": stub,
                     "crash": lambda x: x / 0, "not_callable": 6}.items():  # fmt: skip
        ok = _double_check(fn)
        out = capsys.readouterr().out.strip()
        assert "\n" not in out and "Traceback" not in out
        verdicts[name] = (ok, out[0])
    assert verdicts["right"] == (True, checks.PASS)
    assert verdicts["stub"] == (False, checks.TODO[0])
    assert all(verdicts[k] == (False, checks.FAIL[0]) for k in ("wrong", "type", "crash", "not_callable"))


def test_messages(capsys):
    _double_check(lambda x: x + 1)
    assert "not quite — double(3) returned 4, expected 6. Hint: multiply by 2" in capsys.readouterr().out
    _double_check(lambda x: x / 0)
    assert "your code raised ZeroDivisionError" in capsys.readouterr().out
