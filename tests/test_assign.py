"""The student build (tlcourse.assign) on tiny notebooks, and the whole flow on the real lessons.

The solution notebooks' checks are verified in smoke mode by notebooks/conftest.py during the nbval run (one execution
per notebook, no second run here) and on their committed full-mode outputs below. The student notebooks are built into a
temporary folder and compared with their solutions; no lesson's student copy calls a learner's function outside its
check (read from the source), and tests/test_nbgrader.py executes one lesson's student copy under nbgrader.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tlcourse import assign
from tlcourse.assign import BEGIN, END, AssignError, build, strip_solutions, student_notebook, verdict_lines

ROOT = Path(__file__).resolve().parent.parent
LESSONS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))


def code(source, outputs=None, count=None, **meta):
    return {"cell_type": "code", "execution_count": count, "id": "c1", "metadata": meta, "outputs": outputs or [],
            "source": source}  # fmt: skip


def notebook(*cells) -> dict:
    return {"cells": list(cells), "metadata": {"kernelspec": {"name": "python3"}}, "nbformat": 4, "nbformat_minor": 5}


SOLVED = (
    'def double(x):\n    """Twice x."""\n    ### BEGIN SOLUTION\n    y = 2 * x\n    return y\n    ### END SOLUTION\n'
)
STUBBED = 'def double(x):\n    """Twice x."""\n    # YOUR CODE HERE\n    raise NotImplementedError()\n'


# ---- strip_solutions -------------------------------------------------------------------------------------------------


def test_region_becomes_stub_at_its_indentation():
    out, n = strip_solutions(SOLVED)
    assert (out, n) == (STUBBED, 1)
    space = {}
    exec(out, space)  # the stubbed cell still defines the function ...
    with pytest.raises(NotImplementedError):  # ... which says it is not done yet
        space["double"](3)


def test_list_source_and_last_line_without_newline_keep_their_form():
    src = [
        "def f():\n",
        "    if True:\n",
        "        ### BEGIN SOLUTION\n",
        "        return 1\n",
        "        ### END SOLUTION",
    ]
    out, n = strip_solutions(src)
    assert n == 1
    assert out == ["def f():\n", "    if True:\n", "        # YOUR CODE HERE\n", "        raise NotImplementedError()"]


def test_several_regions_empty_region_and_code_outside_regions_kept():
    src = f"a = 1\n{BEGIN}\nb = 2\n{END}\nc = 3\n  {BEGIN}\n  {END}\nd = 4"
    out, n = strip_solutions(src)
    assert n == 2
    assert (
        out
        == "a = 1\n# YOUR CODE HERE\nraise NotImplementedError()\nc = 3\n  # YOUR CODE HERE\n  raise NotImplementedError()\nd = 4"
    )


def test_source_without_regions_is_unchanged():
    for src in ["", "x = 1", ["x = 1\n", "print(x)"], "# BEGIN here is not a marker\n"]:
        assert strip_solutions(src) == (src, 0)


@pytest.mark.parametrize(
    "src, words",
    [
        (f"def f():\n    {BEGIN}\n    return 1\n", ["line 2", "never closed"]),
        (f"{BEGIN}\nx = 1\n{BEGIN}\n{END}\n", ["line 3", "nested", "line 1"]),
        (f"x = 1\n{END}\n", ["line 2", "without"]),
        ("def f():\n    ## BEGIN SOLUTION\n    return 1\n", ["line 2", "malformed"]),
        (f"{BEGIN}\nx = 1\n#### END SOLUTION\n", ["line 3", "malformed"]),
    ],
)
def test_bad_markers_name_the_cell_and_line(src, words):
    with pytest.raises(AssignError) as e:
        strip_solutions(src, where="lesson.ipynb: cell 7")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("lesson.ipynb: cell 7, ")
    for w in words:
        assert w in msg


# ---- student_notebook ------------------------------------------------------------------------------------------------


def test_student_notebook_stubs_solutions_clears_outputs_and_keeps_the_rest():
    run = {"execution": {"iopub.status.idle": "2026-01-01T00:00:00Z"}, "tags": ["keep"], "scrolled": True}
    out = [{"output_type": "stream", "name": "stdout", "text": ["hi\n"]}]
    md = {"cell_type": "markdown", "id": "m1", "metadata": {}, "source": f"Explain `{BEGIN}`\n{BEGIN}\nnot code"}
    raw = {"cell_type": "raw", "id": "r1", "metadata": {}, "source": "raw"}
    nb = notebook(md, code(SOLVED, out, 3, **run), code("print(1)", out, 4), raw)
    nb["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": {}}
    before = json.dumps(nb)
    student, n = student_notebook(nb, "x.ipynb")
    assert json.dumps(nb) == before  # the input is not modified
    assert n == 1
    assert student["cells"][0] == md and student["cells"][3] == raw  # markdown (even with marker text) and raw kept
    assert student["cells"][1]["source"] == STUBBED
    assert student["cells"][2]["source"] == "print(1)"
    for c in student["cells"][1:3]:
        assert c["outputs"] == [] and c["execution_count"] is None
    assert student["cells"][1]["metadata"] == {"tags": ["keep"]}  # run timings go, other metadata stays
    assert student["metadata"] == {"kernelspec": {"name": "python3"}}
    assert (student["nbformat"], student["nbformat_minor"]) == (4, 5)


def test_student_notebook_errors_name_file_and_cell():
    bad = notebook(code("x = 1"), {**code(f"{BEGIN}\nx = 2"), "id": "abc"})
    with pytest.raises(AssignError, match=r"^x.ipynb: cell 2 \(id abc\), line 1: .*never closed"):
        student_notebook(bad, "x.ipynb")
    with pytest.raises(AssignError, match="not a Jupyter notebook"):
        student_notebook({"cells": "nope"}, "x.ipynb")
    with pytest.raises(AssignError, match="cell 1 is malformed"):
        student_notebook({"cells": [{"cell_type": "code"}]}, "x.ipynb")


def test_verdict_lines_reads_streams_and_results():
    outs = [
        {"output_type": "stream", "name": "stdout", "text": ["size 3\n", "✅ Exercise 1.1 (a): correct!\n"]},
        {"output_type": "display_data", "data": {"text/plain": "⏳ Exercise 1.2 (b): not done yet"}},
        {"output_type": "execute_result", "data": {"image/png": "..."}},
        {"output_type": "stream", "name": "stderr", "text": "❌ Exercise 1.3 (c): not quite\nwarning ❌ inline\n"},
    ]
    assert verdict_lines(outs) == ["✅ Exercise 1.1 (a): correct!", "⏳ Exercise 1.2 (b): not done yet",
                                   "❌ Exercise 1.3 (c): not quite"]  # fmt: skip
    assert verdict_lines([]) == []


# ---- nbgrader_notebook / exercises ----------------------------------------------------------------------------------


def md(source, id="m1"):
    return {"cell_type": "markdown", "id": id, "metadata": {}, "source": source}


def exercise_notebook(check_source="check_double(double)") -> dict:
    out = [{"output_type": "stream", "name": "stdout", "text": "✅ Exercise 9.1 (double): correct!\n"}]
    return notebook(md("Intro"), md("## Exercise 9.1 · double it", "m2"), {**code(SOLVED, [], 2), "id": "s1"},
                    {**code(check_source, out, 3), "id": "k1"}, {**code("print(double(2))"), "id": "c3"})  # fmt: skip


def test_nbgrader_notebook_marks_instructions_solution_and_check():
    nb = exercise_notebook()
    nb["cells"][4]["metadata"]["nbgrader"] = {"grade": True, "grade_id": "stale", "locked": False, "solution": False,
                                              "schema_version": 3, "points": 5}  # fmt: skip
    before = json.dumps(nb)
    out, n = assign.nbgrader_notebook(nb, "x.ipynb")
    assert json.dumps(nb) == before and n == 1
    base = {"schema_version": 3, "task": False}
    assert [c["metadata"].get("nbgrader") for c in out["cells"]] == [
        None,
        {**base, "grade": False, "grade_id": "ex9_1_instructions", "locked": True, "solution": False},
        {**base, "grade": False, "grade_id": "ex9_1_solution", "locked": False, "solution": True},
        {**base, "grade": True, "grade_id": "ex9_1_check", "locked": True, "solution": False, "points": 1},
        None,  # stale metadata goes: the layout is the only source of truth
    ]
    assert [c["source"] for c in out["cells"]] == [c["source"] for c in nb["cells"]]  # solutions kept
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in out["cells"] if c["cell_type"] == "code")
    out["metadata"]["kernelspec"]["display_name"] = "Python 3"  # the tiny notebook's kernelspec is incomplete
    nbformat.validate(nbformat.from_dict(out))
    assert assign.exercises(nb) == [assign.Exercise("9.1", 1, 2, 3)] and assign.exercises(nb)[0].grade_id == "ex9_1"


@pytest.mark.parametrize(
    "cells, words",
    [
        ([code(SOLVED), code("check_double(double)")], "needs a markdown cell above it"),
        ([md("Now a function."), code(SOLVED), code("check_double(double)")], "needs a markdown cell above it"),
        ([md("Exercise 9.1"), code(SOLVED)], "must be followed by a code cell that calls its check"),
        ([md("Exercise 9.1"), code(SOLVED), md("check_double(double)")], "must be followed"),
        ([md("Exercise 9.1"), code(SOLVED), code("print(double(2))")], "must be followed"),
        ([md("Exercise 9.1"), code(SOLVED), code(SOLVED + "check_double(double)")], "must be followed"),
        ([md("Exercise 9.1"), code(SOLVED), code("check_a(double)"), md("Exercise 9.1 again"), code(SOLVED),
          code("check_b(double)")], "a second solution cell for exercise 9.1"),
    ],
)  # fmt: skip
def test_exercise_layout_errors_name_the_cell(cells, words):
    with pytest.raises(AssignError, match=r"^x.ipynb: cell \d+ \(id \w+\): .*" + words):
        assign.nbgrader_notebook(notebook(*cells), "x.ipynb")


def test_build_nbgrader_writes_one_assignment_folder_per_notebook(tmp_path, capsys):
    src = tmp_path / "src"
    write(src / "01_a.ipynb", exercise_notebook())
    write(src / "02_b.ipynb", notebook(code("print('no exercise')")))
    dest = tmp_path / "course" / "source"
    assert assign.main(["--nbgrader", str(src), str(dest)]) == 0
    assert "01_a.ipynb  (1 exercise)" in capsys.readouterr().out
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*.ipynb")) == ["01_a/01_a.ipynb", "02_b/02_b.ipynb"]
    again = build([src], dest, nbgrader=True)
    assert [(p.parent.name, n, changed) for p, n, changed in again] == [("01_a", 1, False), ("02_b", 0, False)]
    write(src / "03_c.ipynb", notebook(md("Exercise 3.1"), code(SOLVED)))
    assert assign.main(["--nbgrader", str(src), str(dest)]) == 2
    assert "03_c.ipynb: cell 2 (id c1): exercise 3.1's solution cell must be followed" in capsys.readouterr().err
    # the student build does not need the layout: a notebook without checks still gets its stubs
    assert [n for _, n, _ in build([src / "03_c.ipynb"], tmp_path / "student")] == [1]


# ---- build / command line --------------------------------------------------------------------------------------------


def write(path: Path, nb) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(nb if isinstance(nb, str) else json.dumps(nb), encoding="utf-8")
    return path


def test_build_writes_every_notebook_and_twice_is_identical(tmp_path):
    src = tmp_path / "src"
    write(src / "01_a.ipynb", notebook(code(SOLVED, [{"output_type": "stream", "name": "stdout", "text": "x"}], 1)))
    write(src / "02_b.ipynb", notebook(code("print('no exercise')")))
    write(src / ".hidden.ipynb", "not json")  # e.g. editor leftovers are not lesson notebooks
    dest = tmp_path / "student"
    done = build([src], dest)
    assert [(p.name, n, changed) for p, n, changed in done] == [("01_a.ipynb", 1, True), ("02_b.ipynb", 0, True)]
    first = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in dest.iterdir()}
    assert sorted(first) == ["01_a.ipynb", "02_b.ipynb"]  # no temp files left behind
    again = build([src], dest)
    assert [changed for _, _, changed in again] == [False, False]
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in dest.iterdir()} == first  # same bytes, untouched
    student = json.loads(first["01_a.ipynb"][0])
    assert "".join(student["cells"][0]["source"]) == STUBBED and student["cells"][0]["outputs"] == []
    # the student copies are a fixed point: building from them changes nothing
    assert [(p.read_bytes()) for p, _, _ in build([dest], tmp_path / "again")] == [first[n][0] for n in sorted(first)]
    # a single file can be named too
    assert [p.name for p, _, _ in build([src / "02_b.ipynb"], tmp_path / "one")] == ["02_b.ipynb"]


def test_build_refuses_bad_input_and_writes_nothing(tmp_path):
    src = tmp_path / "src"
    write(src / "01_ok.ipynb", notebook(code(SOLVED)))
    write(src / "02_open.ipynb", notebook(code("x = 1"), code(f"def f():\n    {BEGIN}\n    return 1\n")))
    write(src / "03_json.ipynb", '{"cells": [}')
    with pytest.raises(AssignError) as e:
        build([src], tmp_path / "out")
    lines = str(e.value).splitlines()
    assert len(lines) == 2
    assert "02_open.ipynb: cell 2" in lines[0] and "never closed" in lines[0]
    assert "03_json.ipynb: not valid JSON (line 1, column 12" in lines[1]
    assert not (tmp_path / "out").exists()
    with pytest.raises(AssignError, match="overwrite the solutions"):
        build([src / "01_ok.ipynb"], src)
    with pytest.raises(AssignError, match="no such notebook or folder"):
        build([tmp_path / "missing"], tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AssignError, match="no notebooks found"):
        build([tmp_path / "empty"], tmp_path / "out")


def test_main_exit_codes_and_one_line_errors(tmp_path, capsys):
    src = tmp_path / "src"
    write(src / "01_ok.ipynb", notebook(code(SOLVED)))
    assert assign.main([str(src), str(tmp_path / "out")]) == 0
    assert "wrote     " in capsys.readouterr().out
    assert assign.main([str(src), str(tmp_path / "out")]) == 0
    assert "unchanged " in capsys.readouterr().out
    write(src / "02_bad.ipynb", notebook(code(f"{END}\n")))
    assert assign.main([str(src), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {src / '02_bad.ipynb'}: cell 1 (id c1), line 1: {END!r} without a {BEGIN!r} before it"]


def test_command_line_module(tmp_path):
    write(tmp_path / "src" / "01_a.ipynb", notebook(code(SOLVED)))
    res = subprocess.run([sys.executable, "-m", "tlcourse.assign", str(tmp_path / "src"), str(tmp_path / "out")],
                         capture_output=True, text=True)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "out" / "01_a.ipynb").is_file()
    res = subprocess.run([sys.executable, "-m", "tlcourse.assign", str(tmp_path / "nope"), str(tmp_path / "out")],
                         capture_output=True, text=True)  # fmt: skip
    assert res.returncode == 2 and res.stderr.startswith("error: ") and "no such notebook" in res.stderr


# ---- the real lessons ------------------------------------------------------------------------------------------------

needs_lessons = pytest.mark.skipif(not LESSONS, reason="no lesson notebooks yet")


def solution_cells(nb) -> list[int]:
    return [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and BEGIN in c.source]


@needs_lessons
@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_lesson_student_copy_differs_only_in_solutions(path, tmp_path):
    (target, regions, _), = build([path], tmp_path)  # fmt: skip
    solved, student = nbformat.read(path, as_version=4), nbformat.read(target, as_version=4)
    nbformat.validate(student)
    assert target.read_text(encoding="utf-8") == nbformat.writes(student) + "\n"  # what Jupyter itself would save
    assert regions >= 3 or path.name.startswith("00"), f"{path.name}: a lesson needs at least 3 exercises"
    assert len(student.cells) == len(solved.cells)
    stubbed = solution_cells(solved)
    for i, (a, b) in enumerate(zip(solved.cells, student.cells, strict=True)):
        assert (a.cell_type, a.get("id")) == (b.cell_type, b.get("id"))
        assert "SOLUTION" not in b.source if b.cell_type == "code" else a.source == b.source
        if a.cell_type == "code":
            assert b.outputs == [] and b.execution_count is None
            assert (a.source == b.source) == (i not in stubbed), f"cell {i + 1}"


@needs_lessons
@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_committed_solution_outputs_pass_every_check(path):
    """The committed (full-mode) outputs show every check passing; smoke runs are checked by notebooks/conftest.py."""
    nb = nbformat.read(path, as_version=4)
    if all(c.get("execution_count") is None for c in nb.cells if c.cell_type == "code"):
        pytest.skip(f"{path.name} has no committed outputs yet")
    verdicts = [(i + 1, v) for i, c in enumerate(nb.cells) if c.cell_type == "code" for v in verdict_lines(c.outputs)]
    bad = [f"cell {i}: {v}" for i, v in verdicts if not v.startswith("✅")]
    assert not bad, f"{path.name}: checks that do not pass in the committed outputs: {bad}"
    assert len(verdicts) >= len(solution_cells(nb)), f"{path.name}: fewer passing checks than exercises"


def test_conftest_hook_fails_a_solution_notebook_whose_check_does_not_pass(tmp_path):
    """The nbval hook of notebooks/conftest.py turns ❌/⏳ verdicts into failures (and leaves ✅ alone)."""
    shutil.copy(ROOT / "notebooks" / "conftest.py", tmp_path / "conftest.py")
    for name, line in [("good", "✅ Exercise 9.1 (x): correct!"), ("wrong", "❌ Exercise 9.1 (x): not quite — 1 != 2."),
                       ("todo", "⏳ Exercise 9.1 (x): not done yet")]:  # fmt: skip
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(f"print({line!r})")])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, tmp_path / f"{name}.ipynb")
    res = subprocess.run([sys.executable, "-m", "pytest", str(tmp_path), "--nbval-lax", "--nbval-current-env",
                          "-p", "no:cacheprovider", "-q", "-rf"], capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    out = res.stdout
    assert res.returncode == 1, out
    assert "2 failed, 1 passed" in out
    assert (
        "wrong.ipynb::Cell 0 (print(" in out and "an exercise check did not pass" in out and "todo.ipynb::Cell 0" in out
    )
    assert "good.ipynb::Cell" not in out


# ---- the student side: the stubs cannot crash a lesson ----------------------------------------------------------------
# A student copy runs like its solution notebook (nbval executes those) except where a stub raises NotImplementedError.
# Each check turns that into ⏳ (tests/test_checks_*.py give every check a stub); the rest of the lesson must never
# call the learner's function outside its check, or only under `if check_...(...):`. That is checked here on the source
# of every lesson; tests/test_nbgrader.py runs one lesson's student copy end to end (every check ⏳, no other cell
# failing) instead of executing all six student copies a second time.


def _learner_functions(source: str) -> set[str]:
    return {n.name for n in ast.parse(source).body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}


def _is_check_call(node) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name | ast.Attribute)
            and (node.func.id if isinstance(node.func, ast.Name) else node.func.attr).startswith("check_"))  # fmt: skip


def _unguarded_uses(source: str, names: set[str]) -> list[str]:
    """Names in `names` used outside a check call's arguments and outside the body of an `if check_...(...):`."""
    guarded: set[int] = set()
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if _is_check_call(node):
            guarded |= {id(n) for n in ast.walk(node)}
        elif isinstance(node, ast.If) and _is_check_call(node.test):  # the body runs only once the check passed
            guarded |= {id(n) for part in node.body for n in ast.walk(part)}
    return [n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id in names and id(n) not in guarded]


@needs_lessons
@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_learner_functions_are_used_only_by_their_checks(path):
    nb = nbformat.read(path, as_version=4)
    found = assign.exercises(nb, path.name)
    assert len(found) == len(solution_cells(nb))
    for ex in found:
        names = _learner_functions(nb.cells[ex.solution].source)
        assert names, f"{path.name}: exercise {ex.number}'s solution cell defines no function"
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code" or i == ex.solution:
                continue
            bad = _unguarded_uses(cell.source, names)
            assert not bad, (
                f"{path.name}: cell {i + 1} uses {sorted(set(bad))} outside its check; a stub would crash it"
            )


def test_unguarded_uses_finds_what_a_stub_would_crash():
    assert _unguarded_uses("if check_f(f, x):\n    y = f(1)\ncheck_g(f)\nz = lesson.check_h(f)", {"f"}) == []
    assert _unguarded_uses("if check_f(g):\n    pass\nelse:\n    f(2)", {"f"}) == ["f"]  # else runs on a stub
    assert _unguarded_uses("y = f(1)", {"f"}) == ["f"]
    assert _unguarded_uses("if ok:\n    f(2)", {"f"}) == ["f"]
