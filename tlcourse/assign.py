"""Student build: copies of the lesson notebooks with every solution region replaced by a stub and outputs cleared.

    python -m tlcourse.assign notebooks/ build/student/      # every notebooks/*.ipynb -> build/student/
    python -m tlcourse.assign notebooks/01_x.ipynb out/      # or just the notebooks you name

In a code cell, the lines from `### BEGIN SOLUTION` to `### END SOLUTION` (nbgrader's markers, so nbgrader can read the
same notebooks) become `# YOUR CODE HERE` and `raise NotImplementedError()` at the indentation of the BEGIN line.
Outputs, execution counts and run timings are cleared; everything else is copied unchanged. Nothing is written unless
every notebook is valid, files are written atomically, and building twice gives the same bytes. Exit code 2 on errors.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

from tlcourse.checks.base import FAIL, PASS, TODO
from tlcourse.results import write_atomic

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
_RUN_METADATA = ("execution", "collapsed", "scrolled")  # per-cell traces of a run, cleared with the outputs


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


def student_notebook(nb: dict, name: str = "notebook") -> tuple[dict, int]:
    """A student copy of a notebook dict (solutions stubbed, outputs cleared) and its number of solution regions."""
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise AssignError(f"{name}: not a Jupyter notebook (no list of cells)")
    nb = copy.deepcopy(nb)
    total = 0
    for i, cell in enumerate(nb["cells"], start=1):
        if not isinstance(cell, dict) or "source" not in cell:
            raise AssignError(f"{name}: cell {i} is malformed (no source)")
        if cell.get("cell_type") != "code":
            continue
        where = f"{name}: cell {i}" + (f" (id {cell['id']})" if cell.get("id") else "")
        cell["source"], regions = strip_solutions(cell["source"], where)
        total += regions
        cell["outputs"], cell["execution_count"] = [], None
        for key in _RUN_METADATA:
            cell.get("metadata", {}).pop(key, None)
    nb.get("metadata", {}).pop("widgets", None)  # saved widget state (progress bars) belongs to the cleared outputs
    return nb, total


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


def build(sources: list[Path], dest: Path) -> list[tuple[Path, int, bool]]:
    """Write a student copy of every notebook in `sources` into `dest`; return (path, regions, changed) per notebook."""
    dest = Path(dest)
    paths = [p for s in sources for p in find_notebooks(s)]
    if not paths:
        raise AssignError(f"no notebooks found in {', '.join(map(str, sources))}")
    plans, errors = [], []
    for p in paths:  # convert everything first: one bad notebook means nothing is written
        target = dest / p.name
        if target.resolve() == p.resolve():
            raise AssignError(f"{p}: the output folder is the source folder; that would overwrite the solutions")
        try:
            nb, regions = student_notebook(read_notebook(p), str(p))
            plans.append((target, dumps(nb), regions))
        except AssignError as e:
            errors.append(str(e))
    if errors:
        raise AssignError("\n".join(errors))  # one line per bad notebook
    done = []
    for target, text, regions in plans:
        changed = not target.is_file() or target.read_text(encoding="utf-8") != text
        if changed:  # unchanged files are not touched, so a rebuild is a no-op
            write_atomic(target, text)
        done.append((target, regions, changed))
    return done


def verdict_lines(outputs: list[dict]) -> list[str]:
    """The check verdict lines (starting with ✅, ⏳ or ❌) printed in a code cell's outputs, in order."""
    texts = []
    for out in outputs:
        text = out.get("text") if out.get("output_type") == "stream" else out.get("data", {}).get("text/plain")
        texts.append("".join(text) if isinstance(text, list) else text or "")
    return [line for line in "\n".join(texts).splitlines() if line[:2] in {f"{PASS} ", f"{TODO} ", f"{FAIL} "}]


def main(argv: list[str] | None = None) -> int:
    """Command line: `python -m tlcourse.assign SOURCE... DEST`; exit code 2 on any error."""
    parser = argparse.ArgumentParser(prog="python -m tlcourse.assign", description=__doc__.split("\n")[0])
    parser.add_argument("sources", nargs="+", type=Path, help="notebook folder(s) or .ipynb files")
    parser.add_argument("dest", type=Path, help="output folder for the student notebooks")
    args = parser.parse_args(argv)
    try:
        done = build(args.sources, args.dest)
    except AssignError as e:
        for line in str(e).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return 2
    for target, regions, changed in done:
        print(f"{'wrote    ' if changed else 'unchanged'} {target}  ({regions} solution region{'s' * (regions != 1)})")
    print(f"{len(done)} student notebooks in {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
