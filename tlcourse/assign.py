"""Student build: copies of the lesson notebooks with every solution region replaced by a stub and outputs cleared;
and nbgrader source copies, the solution notebooks with the nbgrader cell metadata an nbgrader course needs.

    python -m tlcourse.assign notebooks/ build/student/      # every notebooks/*.ipynb -> build/student/
    python -m tlcourse.assign notebooks/01_x.ipynb out/      # or just the notebooks you name
    python -m tlcourse.assign --nbgrader notebooks/ course/source/   # -> course/source/01_x/01_x.ipynb, ...

In a code cell, the lines from `### BEGIN SOLUTION` to `### END SOLUTION` (nbgrader's markers, so nbgrader can read the
same notebooks) become `# YOUR CODE HERE` and `raise NotImplementedError()` at the indentation of the BEGIN line.
Outputs, execution counts and run timings are cleared; everything else is copied unchanged. Nothing is written unless
every notebook is valid, files are written atomically, and building twice gives the same bytes. Exit code 2 on errors.

With --nbgrader the solutions stay and each exercise's cells get nbgrader metadata derived from the lesson's layout —
the markdown cell that states "Exercise 3.2", the code cell with the solution region after it, and the check cell after
that — so the committed notebooks carry none and cannot fall out of step with it: the statement is locked
(`ex3_2_instructions`), the solution is an autograded answer (`ex3_2_solution`) and the check an autograded test worth
one point (`ex3_2_check`); under nbgrader a check raises on anything but a pass (tlcourse.checks.base.run_check).
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from tlcourse.checks.base import FAIL, PASS, TODO
from tlcourse.files import write_atomic

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
_RUN_METADATA = ("execution", "collapsed", "scrolled")  # per-cell traces of a run, cleared with the outputs
EXERCISE = re.compile(r"\bExercise (\d+)\.(\d+)\b")  # how a lesson's markdown states an exercise
CHECK_CALL = re.compile(r"\bcheck_\w+\(")  # a call of a tlcourse.checks check
POINTS = 1  # nbgrader points per exercise (its check cell)
NBGRADER_SCHEMA = 3  # nbgrader 0.9's cell metadata schema version


class AssignError(ValueError):
    """A notebook the student build cannot convert, explained in one line naming the file and cell."""


def _lines(source: str | list[str]) -> list[str]:
    """Cell source as lines that keep their newlines (the .ipynb list form)."""
    return source.splitlines(keepends=True) if isinstance(source, str) else list(source)


def strip_solutions(source: str | list[str], where: str = "cell") -> tuple[str | list[str], int]:
    """Replace each solution region in a code cell's source by the stub; return (new source, number of regions)."""
    out: list[str] = []
    opened = 0  # line number of the open region's BEGIN marker, 0 when outside a region
    regions = 0
    for n, line in enumerate(_lines(source), start=1):
        text = line.strip()
        if text == BEGIN:
            if opened:
                raise AssignError(f"{where}, line {n}: {BEGIN!r} inside the region opened on line {opened} (nested)")
            opened, regions = n, regions + 1
            indent = line[: len(line) - len(line.lstrip())]
            newline = "\n" if line.endswith("\n") else ""
            out += [f"{indent}{STUB[0]}\n", f"{indent}{STUB[1]}{newline}"]
        elif text == END:
            if not opened:
                raise AssignError(f"{where}, line {n}: {END!r} without a {BEGIN!r} before it")
            opened = 0
        elif "BEGIN SOLUTION" in text or "END SOLUTION" in text:
            raise AssignError(f"{where}, line {n}: malformed marker {text!r}; write exactly {BEGIN!r} / {END!r}")
        elif not opened:
            out.append(line)
    if opened:
        raise AssignError(f"{where}, line {opened}: {BEGIN!r} is never closed; add {END!r} after the solution")
    if out and not _lines(source)[-1].endswith("\n"):
        out[-1] = out[-1].rstrip("\n")  # a region at the very end keeps the cell's no-trailing-newline form
    return ("".join(out) if isinstance(source, str) else out), regions


def _clear_outputs(cell: dict) -> None:
    """Drop a code cell's outputs, execution count and run timings (in place)."""
    cell["outputs"], cell["execution_count"] = [], None
    for key in _RUN_METADATA:
        cell.get("metadata", {}).pop(key, None)


def _checked_cells(nb: dict, name: str) -> list[dict]:
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise AssignError(f"{name}: not a Jupyter notebook (no list of cells)")
    for i, cell in enumerate(nb["cells"], start=1):
        if not isinstance(cell, dict) or "source" not in cell:
            raise AssignError(f"{name}: cell {i} is malformed (no source)")
    return nb["cells"]


def _where(name: str, i: int, cell: dict) -> str:
    """`name: cell N (id X)` for messages, N counted from 1."""
    return f"{name}: cell {i + 1}" + (f" (id {cell['id']})" if cell.get("id") else "")


def student_notebook(nb: dict, name: str = "notebook") -> tuple[dict, int]:
    """A student copy of a notebook dict (solutions stubbed, outputs cleared) and its number of solution regions."""
    _checked_cells(nb, name)
    nb = copy.deepcopy(nb)
    total = 0
    for i, cell in enumerate(nb["cells"]):
        if cell.get("cell_type") != "code":
            continue
        cell["source"], regions = strip_solutions(cell["source"], _where(name, i, cell))
        total += regions
        _clear_outputs(cell)
    nb.get("metadata", {}).pop("widgets", None)  # saved widget state (progress bars) belongs to the cleared outputs
    return nb, total


@dataclass(frozen=True)
class Exercise:
    """One exercise of a lesson: its number ("3.2") and the indexes of its three cells."""

    number: str
    instructions: int  # the markdown cell that states it
    solution: int  # the code cell holding its solution region
    check: int  # the code cell after it, which calls its check

    @property
    def grade_id(self) -> str:
        return "ex" + self.number.replace(".", "_")


def exercises(nb: dict, name: str = "notebook") -> list[Exercise]:
    """Every exercise of a lesson notebook, read from its layout: a markdown cell naming "Exercise N.M", then the code
    cell with the solution region, then a code cell that calls a check. Anything else is a one-line AssignError."""
    cells = _checked_cells(nb, name)
    found: list[Exercise] = []
    for i, cell in enumerate(cells):
        if cell.get("cell_type") != "code" or not strip_solutions(cell["source"], _where(name, i, cell))[1]:
            continue
        where = _where(name, i, cell)
        above = next((j for j in range(i - 1, -1, -1) if cells[j].get("cell_type") == "markdown"), None)
        numbers = EXERCISE.findall("".join(cells[above]["source"])) if above is not None else []
        if not numbers:
            raise AssignError(f"{where}: a solution cell needs a markdown cell above it that names its exercise "
                              "('Exercise 3.2')")  # fmt: skip
        number = ".".join(numbers[-1])
        after = cells[i + 1] if i + 1 < len(cells) else None
        if (after is None or after.get("cell_type") != "code" or not CHECK_CALL.search("".join(after["source"]))
                or strip_solutions(after["source"])[1]):  # fmt: skip
            raise AssignError(f"{where}: exercise {number}'s solution cell must be followed by a code cell that "
                              "calls its check (check_...(...)) and holds no solution")  # fmt: skip
        if any(e.number == number for e in found):
            raise AssignError(f"{where}: a second solution cell for exercise {number}; one cell per exercise")
        found.append(Exercise(number, above, i, i + 1))
    return found


def _nbgrader_metadata(grade_id: str, *, solution: bool = False, grade: bool = False, locked: bool = False) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": NBGRADER_SCHEMA,
            "solution": solution, "task": False}  # fmt: skip
    return {**meta, "points": POINTS} if grade else meta


def nbgrader_notebook(nb: dict, name: str = "notebook") -> tuple[dict, int]:
    """An nbgrader source copy of a solution notebook (solutions kept, outputs cleared, nbgrader metadata on each
    exercise's instructions, solution and check cells) and its number of exercises."""
    found = exercises(nb, name)
    nb = copy.deepcopy(nb)
    for cell in nb["cells"]:
        cell.get("metadata", {}).pop("nbgrader", None)  # the layout is the only source of the metadata
        if cell.get("cell_type") == "code":
            _clear_outputs(cell)
    cells = nb["cells"]
    for ex in found:
        cells[ex.instructions].setdefault("metadata", {})["nbgrader"] = _nbgrader_metadata(
            f"{ex.grade_id}_instructions", locked=True
        )
        cells[ex.solution].setdefault("metadata", {})["nbgrader"] = _nbgrader_metadata(
            f"{ex.grade_id}_solution", solution=True
        )
        cells[ex.check].setdefault("metadata", {})["nbgrader"] = _nbgrader_metadata(
            f"{ex.grade_id}_check", grade=True, locked=True
        )
    nb.get("metadata", {}).pop("widgets", None)
    return nb, len(found)


def dumps(nb: dict) -> str:
    """Notebook JSON exactly as nbformat and Jupyter write it (1-space indent, sorted keys, UTF-8, final newline)."""
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def read_notebook(path: Path) -> dict:
    """Parse a .ipynb file; invalid JSON becomes a one-line AssignError naming the file and position."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise AssignError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise AssignError(f"{path}: cannot read it ({e})") from None


def find_notebooks(src: Path) -> list[Path]:
    """The notebooks a source names: the file itself, or every *.ipynb directly inside a folder (sorted)."""
    src = Path(src)
    if src.is_dir():
        return sorted(p for p in src.glob("*.ipynb") if not p.name.startswith("."))
    if src.suffix == ".ipynb" and src.is_file():
        return [src]
    raise AssignError(f"{src}: no such notebook or folder")


def build(sources: list[Path], dest: Path, nbgrader: bool = False) -> list[tuple[Path, int, bool]]:
    """Write a student copy of every notebook in `sources` into `dest`, or with `nbgrader` an nbgrader source copy into
    `dest/<name>/<name>.ipynb` (one assignment per lesson); return (path, regions or exercises, changed) per notebook."""
    dest = Path(dest)
    paths = [p for s in sources for p in find_notebooks(s)]
    if not paths:
        raise AssignError(f"no notebooks found in {', '.join(map(str, sources))}")
    convert = nbgrader_notebook if nbgrader else student_notebook
    plans, errors = [], []
    for p in paths:  # convert everything first: one bad notebook means nothing is written
        target = dest / p.stem / p.name if nbgrader else dest / p.name
        if target.resolve() == p.resolve():
            raise AssignError(f"{p}: the output folder is the source folder; that would overwrite the solutions")
        try:
            nb, count = convert(read_notebook(p), str(p))
            plans.append((target, dumps(nb), count))
        except AssignError as e:
            errors.append(str(e))
    if errors:
        raise AssignError("\n".join(errors))  # one line per bad notebook
    done = []
    for target, text, count in plans:
        changed = not target.is_file() or target.read_text(encoding="utf-8") != text
        if changed:  # unchanged files are not touched, so a rebuild is a no-op
            write_atomic(target, text)
        done.append((target, count, changed))
    return done


def verdict_lines(outputs: list[dict]) -> list[str]:
    """The check verdict lines (starting with ✅, ⏳ or ❌) printed in a code cell's outputs, in order."""
    texts = []
    for out in outputs:
        text = out.get("text") if out.get("output_type") == "stream" else out.get("data", {}).get("text/plain")
        texts.append("".join(text) if isinstance(text, list) else text or "")
    return [line for line in "\n".join(texts).splitlines() if line[:2] in {f"{PASS} ", f"{TODO} ", f"{FAIL} "}]


def main(argv: list[str] | None = None) -> int:
    """Command line: `python -m tlcourse.assign [--nbgrader] SOURCE... DEST`; exit code 2 on any error."""
    parser = argparse.ArgumentParser(prog="python -m tlcourse.assign", description=__doc__.split("\n")[0])
    parser.add_argument("sources", nargs="+", type=Path, help="notebook folder(s) or .ipynb files")
    parser.add_argument("dest", type=Path, help="output folder: student notebooks, or an nbgrader course's source/")
    parser.add_argument("--nbgrader", action="store_true",
                        help="write nbgrader source copies (solutions kept, nbgrader metadata) to DEST/<name>/<name>.ipynb")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        done = build(args.sources, args.dest, nbgrader=args.nbgrader)
    except AssignError as e:
        for line in str(e).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return 2
    what = "exercise" if args.nbgrader else "solution region"
    for target, count, changed in done:
        print(f"{'wrote    ' if changed else 'unchanged'} {target}  ({count} {what}{'s' * (count != 1)})")
    kind = "nbgrader source notebooks" if args.nbgrader else "student notebooks"
    print(f"{len(done)} {kind} in {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
