"""The verdict base (tlcourse.checks.base): one line per outcome, never a traceback — except that under nbgrader a
verdict other than ✅ is raised after it is printed, so that a check cell is an autograded test."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tlcourse.checks import base as checks


@pytest.fixture(autouse=True)
def not_grading(monkeypatch):
    monkeypatch.delenv(checks.NBGRADER_ENV, raising=False)


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


@pytest.mark.parametrize("value", ["autograde", "validate"])  # the values nbgrader 0.9 sets
def test_under_nbgrader_a_verdict_other_than_pass_is_printed_then_raised(value, monkeypatch, capsys):
    monkeypatch.setenv(checks.NBGRADER_ENV, value)
    assert checks.grading()
    assert _double_check(lambda x: 2 * x) is True
    assert capsys.readouterr().out.startswith(checks.PASS)
    for fn, mark in [
        (lambda x: x + 1, checks.FAIL),
        (stub, checks.TODO),
        (lambda x: x / 0, checks.FAIL),
        (6, checks.FAIL),
    ]:
        ran = []
        with pytest.raises(AssertionError) as e:
            if _double_check(fn):  # a check cell of the form `if check(...): <more code>`
                ran.append(True)
        line = capsys.readouterr().out.strip()
        assert "\n" not in line and line.startswith(mark) and str(e.value) == line and not ran
        assert e.value.__cause__ is None and e.value.__context__ is None  # no chained traceback from the check


def test_outside_nbgrader_nothing_raises(monkeypatch, capsys):
    monkeypatch.setenv(checks.NBGRADER_ENV, "")
    assert not checks.grading()
    assert _double_check(lambda x: x + 1) is False
    assert capsys.readouterr().out.startswith(checks.FAIL)


def test_a_regular_install_ships_the_checks_package():
    """`pip install git+…` (Colab) installs only the packages pyproject.toml lists: tlcourse.checks must be one of them."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    root = Path(__file__).resolve().parent.parent
    listed = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"]
    packages = sorted(".".join(p.parent.relative_to(root).parts) for p in (root / "tlcourse").rglob("__init__.py"))
    missing = [] if isinstance(listed, dict) else [p for p in packages if p not in listed]  # a dict: packages.find
    assert not missing, (
        f"pyproject.toml's [tool.setuptools] packages lacks {missing}: a regular install would not ship it"
    )


def test_a_wheel_ships_every_package_file(tmp_path):
    """Data files inside tlcourse/ (lesson 06's checksums) reach a regular install only through package-data."""
    tomllib = pytest.importorskip("tomllib")
    root = Path(__file__).resolve().parent.parent
    globs = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["package-data"]
    data = [
        p.relative_to(root / "tlcourse")
        for p in (root / "tlcourse").rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    ]
    assert data, "tlcourse/sha256/*.sha256 should be there"
    unshipped = [str(p) for p in data if not any(p.match(g) for g in globs["tlcourse"])]
    assert not unshipped, f"pyproject.toml's package-data does not ship {unshipped}"
    src = tmp_path / "src"  # a clean copy: an in-tree build/ folder could hold files deleted since
    shutil.copytree(root / "tlcourse", src / "tlcourse", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(root / name, src / name)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    (wheel,) = tmp_path.glob("tlcourse-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"tlcourse/{p.as_posix()}" for p in data} | {
        p.relative_to(root).as_posix() for p in (root / "tlcourse").rglob("*.py")
    }
    assert expected <= names, f"the wheel lacks {sorted(expected - names)}"
