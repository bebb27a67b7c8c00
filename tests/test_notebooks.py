"""The committed lesson notebooks, read as files (nothing is executed): outputs a reader can read, results never typed.

Every notebooks/[0-9]*.ipynb must be small, free of widget state, dead progress bars, object reprs, stderr and machine
paths (`make course` runs `python -m tlcourse.nbclean` after each notebook; stderr must be fixed where it comes from).
A lesson named in PROSE_RULE_LESSONS may not hold a result-like number in its markdown: results change with every run,
so they are printed from code. Also unit tests of tlcourse.nbclean and of the prose detector.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from tqdm import tqdm

from tlcourse import files, nbclean

ROOT = Path(__file__).resolve().parent.parent
LESSONS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
MAX_BYTES = 600_000  # a committed notebook stays readable on GitHub and cheap to diff
PROSE_RULE_LESSONS = tuple(p.name[:2] for p in LESSONS)  # every lesson: markdown holds no hand-typed result

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
DEAD_BAR = re.compile(r"\d+%\|[^|\n]*\|\s*[\d.]+\w?/[\d.]+\w?|[\d?](?:\.\d+)?\s?(?:it/s|s/it)\]")
OBJECT_REPR = re.compile(r"<pandas\.io\.formats\.style\.Styler|<[\w.]+ (?:object )?at 0x[0-9a-fA-F]{6,}>")
MACHINE_PATH = re.compile(r"/work/|/root/|/home/|/tmp/|/Users/|site-packages|\b[A-Z]:\\\\?[A-Za-z]")


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _outputs(nb: nbformat.NotebookNode):
    """(cell index, output) for every output of every code cell."""
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            yield i, out


def _texts(out: dict) -> list[str]:
    """The readable text of an output: stream text, text-like data, an error's traceback (never image bytes)."""
    if out.get("output_type") == "stream":
        return [out.get("text", "")]
    if out.get("output_type") == "error":
        return [out.get("ename", ""), out.get("evalue", ""), *out.get("traceback", [])]
    data = out.get("data", {})
    return [str(v) for k, v in data.items() if not k.startswith(("image/", "application/pdf", WIDGET_VIEW))]


def _problems(path: Path, found: list[tuple[int, str]], what: str, fix: str) -> str:
    cells = "\n".join(f"  cell {i}: {snippet!r}" for i, snippet in found[:20])
    return f"{path.name}: {len(found)} output(s) with {what}:\n{cells}\nfix: {fix}"


def _around(text: str, start: int, end: int, context: int = 40) -> str:
    return " ".join(text[max(0, start - context) : end + context].split())


FIX_CLEAN = "run `python -m tlcourse.nbclean` on it (make course does, after each notebook)"
committed = pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])


@committed
def test_notebook_is_small(path):
    size = path.stat().st_size
    assert size <= MAX_BYTES, (
        f"{path.name} is {size / 1e3:,.0f} KB (limit {MAX_BYTES / 1e3:,.0f} KB): shrink its figures"
    )


@committed
def test_no_widget_state(path):
    saved = "widgets" in _read(path).metadata
    assert not saved, f"{path.name} saves widget state (metadata.widgets); fix: {FIX_CLEAN}"


@committed
def test_no_widget_views(path):
    found = [(i, out["data"].get("text/plain", "")[:80]) for i, out in _outputs(_read(path))
             if WIDGET_VIEW in out.get("data", {})]  # fmt: skip
    assert not found, _problems(path, found, "a widget view (its text is a frozen progress bar)", FIX_CLEAN)


@committed
def test_no_stderr(path):
    found = [(i, out.get("text", "")[:120]) for i, out in _outputs(_read(path)) if out.get("name") == "stderr"]
    assert not found, _problems(path, found, "stderr output", "fix the warning where it comes from (nbclean keeps it)")


@committed
def test_no_dead_progress_bars(path):
    found = [(i, _around(t, m.start(), m.end())) for i, out in _outputs(_read(path)) for t in _texts(out)
             if (m := DEAD_BAR.search(t))]  # fmt: skip
    assert not found, _problems(path, found, "a progress bar frozen as text", FIX_CLEAN)


@committed
def test_no_object_reprs(path):
    found = [(i, m.group()) for i, out in _outputs(_read(path))
             if (m := OBJECT_REPR.search(out.get("data", {}).get("text/plain", "")))]  # fmt: skip
    assert not found, _problems(path, found, "an object repr instead of its content (e.g. a pandas Styler)", FIX_CLEAN)


@committed
def test_no_machine_paths(path):
    found = [(i, _around(t, m.start(), m.end())) for i, out in _outputs(_read(path)) for t in _texts(out)
             if (m := MACHINE_PATH.search(t))]  # fmt: skip
    assert not found, _problems(path, found, "a path of the machine it ran on", "print paths relative to the repo")


# --- no hand-typed results in prose --------------------------------------------------------------------------------

# not prose: code blocks and spans, LaTeX, link targets, URLs and HTML tags (so a constant can be written as `code`)
IGNORED = re.compile(
    r"```.*?```|~~~.*?~~~|``.*?``|`[^`\n]*`"  # code
    r"|\$\$.*?\$\$|\$[^$\n]+\$"  # LaTeX
    r"|\]\([^)]*\)|https?://\S+|<[a-zA-Z/][^>\n]*>",  # link targets, URLs, HTML tags
    re.S,
)
UNIT = r"(?:ms|s|secs?|seconds?|min|mins|minutes?|h|hrs?|hours?)\b"
RESULT_LIKE = re.compile(
    r"(?<![\w.,])(?:[+±−-]\s?)?\d+(?:\.\d+)?\s*(?:percentage\s+)?(?:points?|pts?|pp)\b"  # +2.1 points, 3 pts
    r"|(?<![\w.,])[+±−-]?\d+\.\d+\s*%"  # 85.3%
    r"|±\s*\d+(?:\.\d+)?(?![\d.])(?!\s*(?:standard|std|sd\b|σ))"  # ±0.8 (but "± 1 standard deviation" is a method)
    r"|(?<![\w.,])\d+(?:\.\d+)?\s*(?:[x×](?!\s*\d)(?!\w)|times\s+(?:faster|slower|smaller|larger|fewer|more|less)\b)"
    rf"|(?<![\w.,])\d+(?:\.\d+)?\s*(?:CPU[- ])?{UNIT}(?:\s+\d+\s*{UNIT})?"  # 4 min 21 s, 7.6 s per step
    r"|(?<![\w.,×])0?\.\d{2,}(?![\d.]|\w)"  # 0.859, .86 (an accuracy or a probability)
)
# a decimal right after one of these names is a constant of the method, a time after these words is a budget
CONSTANT_BEFORE = re.compile(
    r"(?:weight decay|learning rate|\blr|momentum|dropout|smoothing|temperature|\bdecay)\s*(?:of|=|:|is)?\s*$", re.I
)
BUDGET_BEFORE = re.compile(r"(?:under|at most|less than|no more than|within|up to|budget of|limit of)\s*$", re.I)
PROSE_FIX = "print it from code with display(Markdown(f'...')), or write a method constant as `code`"


def result_like(markdown: str) -> list[str]:
    """The result-like numbers in a markdown text, each with some context (empty when it holds none)."""
    prose = IGNORED.sub(lambda m: " " * len(m.group()), markdown)
    found = []
    for m in RESULT_LIKE.finditer(prose):
        before = prose[max(0, m.start() - 30) : m.start()]
        if re.fullmatch(r"0?\.\d+", m.group()) and CONSTANT_BEFORE.search(before):
            continue
        if re.search(r"\d\s*" + UNIT + "$", m.group()) and BUDGET_BEFORE.search(before):
            continue
        found.append(f"{' '.join(m.group().split())!r} in …{_around(markdown, m.start(), m.end())}…")
    return found


def _lesson(prefix: str) -> Path:
    match = [p for p in LESSONS if p.name.startswith(prefix + "_")]
    assert len(match) == 1, f"no single notebook for lesson {prefix}: {[p.name for p in match]}"
    return match[0]


@pytest.mark.parametrize("lesson", PROSE_RULE_LESSONS)
def test_no_hand_typed_results_in_prose(lesson):
    path = _lesson(lesson)
    found = [f"  cell {i}: {hit}" for i, cell in enumerate(_read(path).cells) if cell.cell_type == "markdown"
             for hit in result_like(cell.source)]  # fmt: skip
    listing = "\n".join(found)
    assert not found, f"{path.name}: {len(found)} result-like number(s) in markdown:\n{listing}\nfix: {PROSE_FIX}"


@pytest.mark.parametrize(
    "text",
    ["LP-FT reaches 0.859", "+2.1 points over the probe", "44x faster", "85.3% on the test set", "1.4× faster",
     "about ±0.8", "it took 7.7 minutes", "4 min 21 s of wall time", "~7.6 s per step", "accuracy .86",
     "within 0.8 points", "3 percentage points", "10 CPU-minutes"],
)  # fmt: skip
def test_result_like_flags(text):
    assert result_like(text), text


@pytest.mark.parametrize(
    "text",
    ["lr `3e-4`", "64 px", "2,000 test images", "label smoothing 0.1", "×0.7 per stage",
     "warm-up over the first 10% of the steps", "squeezed to 224×224", "a 2×2 grid", "weight decay 0.01",
     "`0.859` as code", "$\\alpha = 0.25$", "Exercise 2.1 · layer-wise rates", "100 labels per class",
     "[v0.86](https://example.org/v0.86/)", "well under 10 minutes", "the band shows ± 1 standard deviation",
     "a 2-D point", "1.28 million photos", "five epochs"],
)  # fmt: skip
def test_result_like_accepts(text):
    assert not result_like(text), result_like(text)


# --- tlcourse.nbclean on a tiny notebook ------------------------------------------------------------------------------


def _bars(**kw) -> str:
    """What tqdm really writes to a stream for a 3-step loop."""
    buf = io.StringIO()
    list(tqdm(range(3), file=buf, mininterval=0, disable=False, **kw))  # even where TQDM_DISABLE=1 (make test)
    return buf.getvalue()


def _tiny(path: Path) -> Path:
    styler = pd.DataFrame({"test acc": [0.859, 0.856]}, index=["LP-FT", "probe"]).style.format("{:.3f}")
    widget = nbformat.v4.new_output("display_data", data={WIDGET_VIEW: {"model_id": "ab12", "version_major": 2,
        "version_minor": 0}, "text/plain": "train:   0%|          | 0/16 [00:00<?, ?it/s]"})  # fmt: skip
    outputs = [
        widget,
        nbformat.v4.new_output("stream", name="stdout", text="epoch 1 done\n" + _bars(desc="train") + "loss 0.5\n"),
        nbformat.v4.new_output("stream", name="stderr", text=_bars(desc="map", leave=False)),
        nbformat.v4.new_output("stream", name="stderr", text="UserWarning: the array is not writable\n"),
        nbformat.v4.new_output(
            "execute_result",
            data={"text/plain": f"<pandas.io.formats.style.Styler at {id(styler):#x}>", "text/html": styler.to_html()},
            execution_count=1,
        ),  # fmt: skip
    ]
    cells = [nbformat.v4.new_markdown_cell("# tiny"), nbformat.v4.new_code_cell("train()", outputs=outputs)]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {"ab12": {}}, "version_major": 2}}
    nbformat.write(nb, path)
    path.chmod(0o644)
    return path


def test_nbclean_cleans_a_tiny_notebook(tmp_path):
    path = _tiny(tmp_path / "tiny.ipynb")
    before, after, stderr = nbclean.clean_file(path)
    assert after == len(path.read_bytes()) < before
    nb = _read(path)
    nbformat.validate(nb)
    assert "widgets" not in nb.metadata
    outs = nb.cells[1].outputs
    assert [o.output_type for o in outs] == ["stream", "stream", "execute_result"]  # widget and bar-only stream gone
    assert outs[0].text == "epoch 1 done\nloss 0.5\n"  # bar lines dropped, the other lines of the stream kept
    assert outs[1].name == "stderr" and "UserWarning" in outs[1].text  # a real warning is kept ...
    assert len(stderr) == 1 and "cell 1" in stderr[0] and "UserWarning" in stderr[0]  # ... and reported
    table = outs[2].data["text/plain"]
    assert "Styler" not in table and "test acc" in table and "LP-FT" in table and "0.859" in table and "0.856" in table
    assert outs[2].data["text/html"]  # the HTML stays for rich viewers


def test_nbclean_is_idempotent_and_keeps_a_clean_file_untouched(tmp_path):
    path = _tiny(tmp_path / "tiny.ipynb")
    nbclean.clean_file(path)
    once, mtime = path.read_bytes(), path.stat().st_mtime_ns
    before, after, _ = nbclean.clean_file(path)
    assert path.read_bytes() == once and before == after == len(once) and path.stat().st_mtime_ns == mtime


def test_nbclean_writes_atomically(tmp_path, monkeypatch):
    path = _tiny(tmp_path / "tiny.ipynb")
    original = path.read_bytes()

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        nbclean.clean_file(path)
    assert path.read_bytes() == original and os.listdir(tmp_path) == ["tiny.ipynb"]  # untouched, no temp file left
    monkeypatch.undo()
    path.chmod(0o664)
    nbclean.clean_file(path)
    assert os.listdir(tmp_path) == ["tiny.ipynb"] and path.stat().st_mode & 0o777 == 0o664  # mode kept


def test_nbclean_command_line(tmp_path, capsys):
    paths = [_tiny(tmp_path / "a.ipynb"), _tiny(tmp_path / "b.ipynb")]
    assert nbclean.main([str(p) for p in paths]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines if not line.startswith("warning")] == [str(p) for p in paths]
    assert all("KB ->" in line for line in lines if not line.startswith("warning"))
    assert sum(line.startswith("warning: ") and "cell 1" in line for line in lines) == 2
    assert nbclean.main([]) == 2


def test_text_table_aligns_columns():
    html = "<style>td {}</style><table><tr><th>a</th><th colspan='2'>bc</th></tr>"
    rows = nbclean.html_tables(html + "<tr><td>1</td><td>22</td><td>&nbsp;</td></tr></table>")
    assert rows == [[["a", "bc", ""], ["1", "22", ""]]]
    assert nbclean.text_table(rows[0]) == "a  bc\n1  22"
