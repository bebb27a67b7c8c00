"""Executed notebooks made readable as committed: no widget state, no dead progress bars, tables as text.

    python -m tlcourse.nbclean notebooks/*.ipynb   # rewrites each file in place, atomically; prints sizes before/after

Drops `metadata.widgets`, widget-view outputs (their text/plain is a frozen `0%| | 0/16` bar) and the tqdm bar lines of
streams (their other lines stay); a `<pandas.io.formats.style.Styler at 0x…>` repr becomes its HTML table as text.
Other stderr output is reported, never deleted: fix it at its source. Numbers never change; cleaning is idempotent.
"""

from __future__ import annotations

import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import nbformat

from tlcourse.files import write_atomic

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# a tqdm bar, "desc:  50%|█████     | 8/16 [00:01<00:01, 6.2it/s]", or without a total, "desc: 8it [00:01, 6.2it/s]"
BAR = re.compile(r"\d+%\|[^|]*\| *[\d.]+\w?/[\d.]+\w?|\[[\d:]+(<[\d:?]+)?, +[?\d.]+\s?\S*?(/s|s/\S+?)[,\]]")
# the text/plain of a rich output that only names its object (pandas Styler, IPython HTML): useless without the HTML
OBJECT_REPR = re.compile(r"<(pandas\.io\.formats\.style\.Styler|IPython\.core\.display\.HTML)( object)?( at 0x\w+)?>")


class _Tables(HTMLParser):
    """Collect the rows of every <table> in an HTML text as lists of cell strings (text outside cells skipped)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[list[list[str]]] = []
        self.row: list[str] | None = None
        self.cell: list[str] | None = None  # and self.span, the open cell's colspan

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.row = []
        elif tag in ("td", "th") and self.row is not None:
            self.cell, span = [], dict(attrs).get("colspan") or "1"
            self.span = int(span) if span.isdigit() else 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self.cell is not None and self.row is not None:
            self.row += [" ".join("".join(self.cell).split())] + [""] * (self.span - 1)
            self.cell = None
        elif tag == "tr" and self.row is not None:
            if any(self.row):
                self.tables[-1].append(self.row)
            self.row = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def html_tables(html: str) -> list[list[list[str]]]:
    """The non-empty tables of an HTML text, each a list of rows of cell strings."""
    parser = _Tables()
    parser.feed(html)
    return [t for t in parser.tables if t]


def text_table(rows: list[list[str]]) -> str:
    """Rows of cells as an aligned plain-text table, every column right-aligned (as pandas prints a DataFrame)."""
    ncol = max(len(r) for r in rows)
    rows = [r + [""] * (ncol - len(r)) for r in rows]
    widths = [max(len(r[j]) for r in rows) for j in range(ncol)]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def strip_bars(text: str) -> str:
    """A stream's text without its tqdm bar lines and carriage-return bar updates; every other line kept as it is."""
    out = []
    for line in text.split("\n"):
        parts = line.split("\r")
        if not any(BAR.search(p) for p in parts) and (len(parts) == 1 or line.strip()):  # (or a bar erased by "\r  \r")
            out.append(line)
        elif kept := [p for p in parts if p.strip() and not BAR.search(p)]:
            out.append("\r".join(kept))
    return "\n".join(out)


def _source(text: str | list[str]) -> str:
    """A multiline field (str, or the .ipynb list form) as one string."""
    return text if isinstance(text, str) else "".join(text)


def clean_output(out: dict) -> dict | None:
    """One output cleaned, or None when nothing readable is left of it."""
    if out.get("output_type") == "stream":
        text = strip_bars(original := _source(out.get("text", "")))
        return nbformat.from_dict({**out, "text": text}) if text.strip() or text == original else None
    data = out.get("data")
    if not data:
        return out
    data = {k: v for k, v in data.items() if k != WIDGET_VIEW}
    if WIDGET_VIEW in out["data"] and set(data) <= {"text/plain"}:
        return None  # a widget's text/plain is the frozen bar
    if OBJECT_REPR.fullmatch(_source(data.get("text/plain", "")).strip()):
        if tables := html_tables(_source(data.get("text/html", ""))):
            data["text/plain"] = "\n\n".join(text_table(t) for t in tables)
    return nbformat.from_dict({**out, "data": data})


def clean_notebook(nb: nbformat.NotebookNode) -> list[str]:
    """Clean `nb` in place; return one line per code cell that still has stderr output (to be fixed at its source)."""
    nb.metadata.pop("widgets", None)
    stderr = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            cell.outputs = [o for o in map(clean_output, cell.outputs) if o is not None]
        for o in cell.get("outputs", []):
            if o.output_type == "stream" and o.name == "stderr":
                stderr.append(f"cell {i}: stderr output kept: {_source(o.text).strip()[:100]!r}")
    return stderr


def clean_file(path: Path | str) -> tuple[int, int, list[str]]:
    """Clean one .ipynb in place (validated, written atomically, untouched if clean); (bytes before, after, stderr)."""
    before = Path(path).read_text(encoding="utf-8")
    nb = nbformat.reads(before, as_version=4)
    stderr = clean_notebook(nb)
    nbformat.validate(nb)
    text = nbformat.writes(nb)
    text += "" if text.endswith("\n") else "\n"
    if text != before:
        write_atomic(Path(path), text)
    return len(before.encode()), len(text.encode()), stderr


def main(argv: list[str] | None = None) -> int:
    """Clean every notebook named on the command line; exit code 2 on usage errors."""
    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        print("usage: python -m tlcourse.nbclean NOTEBOOK.ipynb ...", file=sys.stderr)
        return 2
    for p in paths:
        before, after, stderr = clean_file(p)
        print(f"{p}: {before / 1e3:,.0f} KB -> {after / 1e3:,.0f} KB")
        for line in stderr:
            print(f"warning: {p} {line} (fix it where it comes from)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
