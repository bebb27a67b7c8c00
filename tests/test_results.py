import json

import pytest

from tlcourse import results


def test_record_writes_atomically_and_replaces_by_name(tmp_results):
    results.record("01", "acc", 0.5, seconds=1.234)
    results.record("01", "acc", 0.75)
    results.record("01", "speedup", 30)
    rows = json.loads((tmp_results / "01.json").read_text())
    assert [(r["name"], r["value"], r["mode"]) for r in rows] == [("acc", 0.75, "full"), ("speedup", 30.0, "full")]
    assert not [p for p in tmp_results.iterdir() if p.name.startswith(".")]
    with pytest.raises(TypeError, match="must be a number"):
        results.record("01", "bad", "0.9")


def test_smoke_results_go_elsewhere(tmp_results, monkeypatch):
    monkeypatch.setenv("TLCOURSE_SMOKE", "1")
    results.record("02", "acc", 0.1)
    assert (tmp_results / "smoke" / "02.json").is_file() and not (tmp_results / "02.json").exists()
    assert results.load()[0]["mode"] == "smoke"


def test_readme_table_between_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{results.START}\nold\n{results.END}\noutro\n")
    rows = [
        {"notebook": "00", "name": "p", "value": 0.878, "mode": "full", "seconds": 3.2, "when": "2026-11-23 10:00:00"},
        {"notebook": "04", "name": "gain (points)", "value": 27.08, "mode": "full", "seconds": None,
         "when": "2026-11-23 10:00:00", "note": "A beats B, 95% CI +8.4 to +45.8 | x"},
    ]  # fmt: skip
    results.update_readme(readme, rows)
    text = readme.read_text()
    assert "old" not in text and "| 00 | p | 0.878 |  | 3 | 2026-11-23 (full) |" in text and text.endswith("outro\n")
    assert "| 04 | gain (points) | 27.1 | A beats B, 95% CI +8.4 to +45.8 \\| x |  | 2026-11-23 (full) |" in text
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="lacks the markers"):
        results.update_readme(readme, rows)


def test_timer(tmp_path):
    with results.timer() as t:
        sum(range(1000))
    assert t.seconds >= 0


def test_cli_usage():
    assert results.main(["nonsense"]) == 2


def test_table_cells_escape_pipes_and_keep_tiny_values():
    import re

    row = {"notebook": "07", "name": "|test loss difference|, after 2 steps", "value": 2.4e-07, "seconds": None,
           "note": "a | b", "when": "2026-12-01T00:00:00", "mode": "full"}  # fmt: skip
    line = results.markdown_table([row]).splitlines()[-1]
    cells = re.split(r"(?<!\\)\|", line)[1:-1]  # split on unescaped pipes only
    assert len(cells) == 6 and cells[2].strip() == "2.4e-07" and r"\|test loss difference\|" in cells[1]
