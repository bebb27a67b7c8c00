"""A real nbgrader round trip on one lesson, in smoke mode, with nbgrader's own command line and gradebook.

A throw-away course (nbgrader_config.py, a sqlite gradebook, source/<lesson>/) gets the nbgrader source copy that
`python -m tlcourse.assign --nbgrader` writes; `nbgrader generate_assignment` makes the release copy; three students
submit it — one with the solutions, one with the stubs as released, one with two exercises right, one wrong and one
left undone — `nbgrader autograde` runs the three submissions and `nbgrader generate_feedback` writes their feedback.
The gradebook must then read 4/4, 0/4 and 2/4.

`nbgrader validate` executes a notebook and fails on any test cell that does not pass: on lesson 03's source copy it
would repeat the run of the student with the solutions (who must score 4/4 with no error in any cell), so it runs
here on lesson 00's source copy, a second lesson for the price of a 10-second one; `make nbgrader-validate` runs it
on every lesson.

The student with the stubs is also the test of the student side that `tests/test_assign.py` used to run for every
lesson: the released notebook runs to the end, no cell but a check fails, and every check says ⏳.

Lesson 03 is the lesson: four exercises, two of its check cells are `if check(...): <more code>`, and in smoke mode it
runs in about 20 s on an idle 2-core machine (02 runs about as fast, 00 has a single exercise, 01, 04 and 05 are slower).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from tlcourse.assign import build, exercises, verdict_lines
from tlcourse.checks.base import NBGRADER_ENV, PASS, TODO

nbgrader_api = pytest.importorskip("nbgrader.api", reason="nbgrader is not installed (pip install -e '.[dev]')")

ROOT = Path(__file__).resolve().parent.parent
BIN = str(Path(sys.executable).parent)  # nbgrader's gradebook runs the `alembic` command: it must be on PATH
LESSON = "03_bert_sentiment"
COURSE_ID = "tlcourse-test"
CONFIG = """c = get_config()
c.CourseDirectory.course_id = {course_id!r}
c.CourseDirectory.root = {root!r}
c.CourseDirectory.db_url = {db_url!r}
c.Execute.timeout = 900  # seconds per cell; nbgrader's default of 30 is too short for a training cell
"""
WRONG_33 = "def freeze_embeddings(model):\n    return sum(p.numel() for p in model.parameters())  # froze nothing\n"


def nbgrader(*args: str, cwd: Path, env: dict) -> str:
    """Run the real nbgrader command line; fail the test with its output if it fails."""
    started = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=cwd, env=env, capture_output=True, text=True)
    out = res.stdout + res.stderr
    assert res.returncode == 0, f"nbgrader {' '.join(args)} failed ({res.returncode}):\n{out[-4000:]}"
    print(f"nbgrader {args[0]}: {time.perf_counter() - started:.0f} s")
    return out


def submit(release: Path, course: Path, student: str, answers: dict[str, str]) -> None:
    """A student's submission: the released notebook with some solution cells (by grade_id) answered."""
    nb = nbformat.read(release, as_version=4)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers.pop(grade_id)
    assert not answers, f"no solution cells {sorted(answers)} in the release"
    folder = course / "submitted" / student / LESSON
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / release.name)
    (folder / "timestamp.txt").write_text("2026-12-01 12:00:00.000000 UTC\n")


def cell_report(nb) -> list[tuple[str | None, bool, list[str]]]:
    """(grade_id, raised an error, verdict lines) per code cell of an executed notebook."""
    return [(c.metadata.get("nbgrader", {}).get("grade_id"), any(o.output_type == "error" for o in c.outputs),
             verdict_lines(c.outputs)) for c in nb.cells if c.cell_type == "code"]  # fmt: skip


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """The course after generate_assignment, three submissions, autograde and generate_feedback (about 2 min)."""
    root = tmp_path_factory.mktemp("course")
    env = {k: v for k, v in os.environ.items() if k not in {"TQDM_DISABLE", "HF_DATASETS_DISABLE_PROGRESS_BARS"}}
    env.update(TLCOURSE_SMOKE="1", TLCOURSE_RESULTS=str(root / "results"), PYDEVD_DISABLE_FILE_VALIDATION="1")
    env.pop(NBGRADER_ENV, None)  # nbgrader sets it in the kernels it starts, nowhere else
    env["PATH"] = BIN + os.pathsep + env.get("PATH", "")
    db_url = f"sqlite:///{root / 'gradebook.db'}"
    (root / "nbgrader_config.py").write_text(CONFIG.format(course_id=COURSE_ID, root=str(root), db_url=db_url))
    started = time.perf_counter()

    (source, count, _), = build([ROOT / "notebooks" / f"{LESSON}.ipynb"], root / "source", nbgrader=True)  # fmt: skip
    assert source == root / "source" / LESSON / f"{LESSON}.ipynb" and count == 4
    (lesson00, _, _), = build([ROOT / "notebooks" / "00_setup_tour.ipynb"], root / "validate", nbgrader=True)  # fmt: skip
    validated = nbgrader("validate", str(lesson00), cwd=root, env=env)
    nbgrader("generate_assignment", LESSON, "--force", cwd=root, env=env)
    release = root / "release" / LESSON / f"{LESSON}.ipynb"

    solved = nbformat.read(source, as_version=4)
    solutions = {c.metadata.nbgrader.grade_id: c.source for c in solved.cells
                 if c.metadata.get("nbgrader", {}).get("solution")}  # fmt: skip
    assert sorted(solutions) == [f"ex3_{n}_solution" for n in (1, 2, 3, 4)]
    submit(release, root, "ada", dict(solutions))  # every exercise solved
    submit(release, root, "bo", {})  # the stubs as released
    partly = {k: solutions[k] for k in ("ex3_1_solution", "ex3_2_solution")}
    submit(release, root, "cy", {**partly, "ex3_3_solution": WRONG_33})  # 3.1, 3.2 right, 3.3 wrong, 3.4 undone
    nbgrader("autograde", LESSON, cwd=root, env=env)
    nbgrader("generate_feedback", LESSON, cwd=root, env=env)
    seconds = time.perf_counter() - started
    print(f"nbgrader round trip on {LESSON}: {seconds:.0f} s")
    return {"root": root, "db_url": db_url, "source": source, "release": release, "validated": validated,
            "seconds": seconds}  # fmt: skip


def test_nbgrader_source_copy_has_the_metadata(course):
    nb = nbformat.read(course["source"], as_version=4)
    nbformat.validate(nb)
    meta = [(c.cell_type, c.metadata["nbgrader"]) for c in nb.cells if "nbgrader" in c.metadata]
    assert [(t, m["grade_id"]) for t, m in meta] == [
        (t, f"ex3_{n}_{part}") for n in (1, 2, 3, 4)
        for t, part in [("markdown", "instructions"), ("code", "solution"), ("code", "check")]
    ]  # fmt: skip
    for _, m in meta:
        kind = m["grade_id"].rsplit("_", 1)[1]
        assert (m["solution"], m["grade"], m["locked"]) == {"instructions": (False, False, True),
            "solution": (True, False, False), "check": (False, True, True)}[kind]  # fmt: skip
        assert m.get("points") == (1 if kind == "check" else None)


def test_nbgrader_validate_passes_on_a_solution_source_copy(course):
    assert "Success! Your notebook passes all the tests." in course["validated"], course["validated"][-3000:]


def test_release_is_the_student_copy_with_locked_checks(course):
    release = nbformat.read(course["release"], as_version=4)
    (student, _, _), = build([ROOT / "notebooks" / f"{LESSON}.ipynb"], course["root"] / "plain")  # fmt: skip
    plain = nbformat.read(student, as_version=4)
    assert [c.source for c in release.cells] == [c.source for c in plain.cells]  # same stubs as tlcourse.assign's
    for c in release.cells:
        m = c.metadata.get("nbgrader", {})
        if m.get("locked"):
            assert c.metadata.get("editable") is False and c.metadata.get("deletable") is False


def test_gradebook_scores_full_zero_and_in_between(course, monkeypatch):
    monkeypatch.setenv("PATH", BIN + os.pathsep + os.environ.get("PATH", ""))
    with nbgrader_api.Gradebook(course["db_url"], course_id=COURSE_ID) as gb:
        scores = {s: (gb.find_submission(LESSON, s).score, gb.find_submission(LESSON, s).max_score)
                  for s in ("ada", "bo", "cy")}  # fmt: skip
        per_check = {n: gb.find_grade(f"ex3_{n}_check", LESSON, LESSON, "cy").score for n in (1, 2, 3, 4)}
    print(f"gradebook scores: {scores}; cy per check: {per_check}")
    assert scores == {"ada": (4.0, 4.0), "bo": (0.0, 4.0), "cy": (2.0, 4.0)}
    assert per_check == {1: 1.0, 2: 1.0, 3: 0.0, 4: 0.0}


def test_autograded_notebooks_fail_only_in_check_cells_with_a_verdict(course):
    root = course["root"]
    read = {
        s: nbformat.read(root / "autograded" / s / LESSON / f"{LESSON}.ipynb", as_version=4)
        for s in ("ada", "bo", "cy")
    }
    ada, bo, cy = (cell_report(read[s]) for s in ("ada", "bo", "cy"))
    assert not any(err for _, err, _ in ada)
    assert [v[0][0] for _, _, v in ada if v] == [PASS] * 4
    # the stubs: the notebook runs to the end; each check prints ⏳ and raises, nothing else fails
    failed = [(gid, v) for gid, err, v in bo if err]
    assert [gid for gid, _ in failed] == [f"ex3_{n}_check" for n in (1, 2, 3, 4)], bo
    assert all(len(v) == 1 and v[0].startswith(TODO) for _, v in failed)
    assert [gid for gid, err, _ in cy if err] == ["ex3_3_check", "ex3_4_check"]
    assert [v[0][0] for gid, _, v in cy if v] == ["✅", "✅", "❌", "⏳"]


def test_feedback_shows_each_students_verdicts(course):
    feedback = {s: course["root"] / "feedback" / s / LESSON / f"{LESSON}.html" for s in ("ada", "bo", "cy")}
    assert all(p.is_file() for p in feedback.values()), feedback
    html = {s: p.read_text(encoding="utf-8") for s, p in feedback.items()}
    for student, score in {"ada": "4.0", "bo": "0.0", "cy": "2.0"}.items():
        assert f"{LESSON} (Score: {score} / 4.0)" in html[student], student
    assert html["ada"].count(PASS) >= 4
    assert html["bo"].count("not done yet") >= 4 and "Exercise 3.3 (freeze the embeddings): not quite" in html["cy"]


def test_every_lesson_builds_an_nbgrader_source_copy(tmp_path):
    lessons = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
    done = build(lessons, tmp_path, nbgrader=True)
    assert [(p.parent.name, n) for p, n, _ in done] == [(p.stem, len(exercises(nbformat.read(p, as_version=4))))
                                                          for p in lessons]  # fmt: skip
    for (path, n, _), lesson in zip(done, lessons, strict=True):
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        ids = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if "nbgrader" in c.metadata]
        assert len(ids) == len(set(ids)) == 3 * n and n >= 1
        assert all(c.outputs == [] for c in nb.cells if c.cell_type == "code")
        assert [c.source for c in nb.cells] == [c.source for c in nbformat.read(lesson, as_version=4).cells]
