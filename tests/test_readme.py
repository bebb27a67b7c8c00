"""README's layout section names every module of the package, and nothing that is not there."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def package_rows() -> list[str]:
    """The lines of README's layout block that describe tlcourse/ (from `tlcourse/` to `tests/`)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```\n(.*?)```", text.split("## Layout", 1)[1], re.S).group(1)
    return block.split("\ntlcourse/", 1)[1].split("\ntests/", 1)[0].splitlines()[1:]


def test_layout_lists_every_module_and_only_real_ones():
    rows = package_rows()
    modules = {p.stem for p in (ROOT / "tlcourse").glob("*.py")} - {"__init__"}
    words = {w for line in rows if not line.strip().startswith("checks/") for w in re.findall(r"[a-z_]+", line)}
    assert modules <= words, f"README's layout does not name the modules {sorted(modules - words)}"
    lists = []  # the rows that are plain lists of module names, with their continuation lines
    for line in rows:
        label = line[:17].strip()
        if label in ("lesson code", "shared core"):
            lists.append(line[17:].split())
        elif not label and lists and lists[-1] is not None:
            lists[-1] += line.split()
        elif label:
            lists.append(None)
    listed = {name for names in lists if names for name in names}
    assert listed <= modules, f"README's layout names modules that do not exist: {sorted(listed - modules)}"
