"""The results record: each notebook writes its headline numbers; `make course` turns them into the README table.

python -m tlcourse.results readme   # rewrite the table between the results markers in README.md
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from tlcourse.config import mode, repo_root, results_dir
from tlcourse.files import write_atomic

START, END = "<!-- results:start -->", "<!-- results:end -->"


def record(notebook: str, name: str, value: float, seconds: float | None = None, note: str = "") -> dict:
    """Record one headline number of a notebook (e.g. record("01", "probe accuracy @100/class", 0.86, 12.3))."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"value must be a number, got {type(value).__name__}")
    path = results_dir() / f"{notebook}.json"
    rows = json.loads(path.read_text()) if path.is_file() else []
    row = {"notebook": notebook, "name": name, "value": float(value), "mode": mode(),
           "seconds": None if seconds is None else round(float(seconds), 2), "note": note,
           "when": time.strftime("%Y-%m-%d %H:%M:%S")}  # fmt: skip
    rows = [r for r in rows if r["name"] != name] + [row]
    write_atomic(path, json.dumps(rows, indent=1) + "\n")
    return row


def load(folder: Path | None = None) -> list[dict]:
    """Every recorded row under `folder` (default: this mode's results folder), sorted by notebook."""
    folder = folder or results_dir()
    rows = []
    for p in sorted(folder.glob("*.json")):
        rows += json.loads(p.read_text())
    return rows


def markdown_table(rows: list[dict]) -> str:
    """Recorded rows as a Markdown table."""
    lines = [
        "| notebook | result | value | verdict, interval, details | seconds | recorded |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        value = _shown(r["value"])
        secs = "" if r["seconds"] is None else f"{r['seconds']:.0f}"
        name, note = (str(t or "").replace("|", "\\|").replace("\n", " ") for t in (r["name"], r.get("note")))
        lines.append(f"| {r['notebook']} | {name} | {value} | {note} | {secs} | {r['when'][:10]} ({r['mode']}) |")
    return "\n".join(lines)


def _shown(v: float) -> str:
    """A recorded value as the table shows it; a tiny one keeps its digits (2.4e-07, not 0.000)."""
    if v == int(v):
        return f"{v:g}"
    if abs(v) < 0.001:
        return f"{v:.2g}"
    return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"


def update_readme(readme: Path, rows: list[dict]) -> None:
    """Replace the text between the results markers in README.md with a generated table."""
    text = readme.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise ValueError(f"{readme} lacks the markers {START} and {END}")
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    table = markdown_table(rows) if rows else "_No full-mode results yet: run `make course`._"
    write_atomic(readme, f"{head}{START}\n{table}\n{END}{tail}")


@contextmanager
def timer():
    """Context manager measuring wall-clock seconds: `with timer() as t: ...; t.seconds`."""

    class _T:
        seconds = 0.0

    t = _T()
    start = time.perf_counter()
    try:
        yield t
    finally:
        t.seconds = time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    """Command line: `readme` regenerates the README results table from results/*.json."""
    argv = sys.argv[1:] if argv is None else argv
    if argv != ["readme"]:
        print("usage: python -m tlcourse.results readme", file=sys.stderr)
        return 2
    root = repo_root()
    if root is None:
        print("error: not inside a course checkout (no README.md to update)", file=sys.stderr)
        return 2
    rows = load(root / "results")
    update_readme(root / "README.md", rows)
    print(f"README.md: results table updated with {len(rows)} rows from {root / 'results'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
