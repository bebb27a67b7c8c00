"""What the Colab install cell (`pip install "tlcourse @ git+..."`) would do to Colab's packages, offline.

tests/data/colab-pip-freeze.txt is the published `pip freeze` of Colab's GPU runtime (Python 3.13). pip leaves an
installed package alone when its version satisfies a requirement, upgrades or downgrades it when not, and installs what
is missing: so each `[project] dependencies` entry of pyproject.toml is checked against the freeze (markers evaluated
for Colab). One level deeper (what the requirements of newly installed packages would do) needs PyPI: that resolution
is recorded in tests/data/colab-resolution.txt by tools/colab_resolve.py, and checked here against the current
pyproject.toml and freeze. Run with -s to see the table.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

tomllib = pytest.importorskip("tomllib", reason="Python 3.11+ reads pyproject.toml with tomllib")

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("colab_resolve", ROOT / "tools" / "colab_resolve.py")
colab = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(colab)

# the packages whose replacement would hurt most in Colab: its CUDA torch build, the widgets its frontend renders
# (7.x), the numpy everything there is compiled against, and the transformers the lessons are written for
UNTOUCHABLE = ["torch", "torchvision", "ipywidgets", "numpy", "transformers"]
# imported by tlcourse but needed only by maintainers' tools: {module: why it is a dev dependency}
DEV_ONLY_IMPORTS = {"nbformat": "tlcourse.nbclean, the notebook cleaner `make course` runs"}
OPTIONAL_IMPORTS = {"medmnist"}  # online-only options, imported inside try/except ImportError with a one-line answer


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def plan(reqs: list[Requirement], freeze: dict[str, Version | None]) -> list[tuple[str, str, str, str]]:
    """(name, requirement, Colab's version, what pip does) per requirement: keep, upgrade, downgrade or install."""
    rows = []
    for req in reqs:
        name = canonicalize_name(req.name)
        have = freeze.get(name)
        if not colab.applies_in_colab(req):
            action = "skip (marker false in Colab)"
        elif name not in freeze:
            action = "install"
        elif have is None:
            action = "unknown (installed from a URL)"
        elif req.specifier.contains(have, prereleases=True):
            action = "keep"
        else:
            floors = [Version(s.version.removesuffix(".*")) for s in req.specifier
                      if s.operator in (">=", ">", "~=", "==", "===")]  # fmt: skip
            action = "upgrade" if any(have < f for f in floors) else "downgrade"
        rows.append((name, str(req), "-" if name not in freeze else str(have), action))
    return rows


def _table(rows) -> str:
    return "\n".join(f"  {name:<14} {req:<22} Colab {have:<10} -> {action}" for name, req, have, action in rows)


# --- the freeze ---------------------------------------------------------------------------------------------------


def test_freeze_parser_strips_local_versions_normalises_names_and_reads_urls():
    text = "\n".join([
        "# a comment",
        "torch==2.11.0+cu128",
        "Jupyter_Server==2.20.0",
        "ruamel.yaml==0.18.6",
        "cuvs-cu12 @ https://pypi.nvidia.com/cuvs-cu12/cuvs_cu12-26.2.0-cp313-cp313-manylinux_2_24_x86_64.whl",
        "google-colab @ file:///colabtools/dist/google_colab-1.0.0.tar.gz",
        "jupyter_kernel_gateway @ git+https://github.com/googlecolab/kernel_gateway@b134e99",
        "",
    ])  # fmt: skip
    assert colab.parse_freeze(text) == {
        "torch": Version("2.11.0"),
        "jupyter-server": Version("2.20.0"),
        "ruamel-yaml": Version("0.18.6"),
        "cuvs-cu12": Version("26.2.0"),
        "google-colab": Version("1.0.0"),
        "jupyter-kernel-gateway": None,
    }
    with pytest.raises(ValueError):
        colab.parse_freeze("numpy>=2")


def test_the_freeze_is_colabs_gpu_runtime():
    first = colab.FREEZE.read_text().splitlines()[0]
    assert first.startswith("#") and "googlecolab/backend-info" in first and "Python 3.13" in first
    freeze = colab.read_freeze()
    assert len(freeze) > 600
    assert freeze["torch"] == Version("2.11.0") and freeze["ipywidgets"] == Version("7.7.1")


# --- the course's requirements against it -----------------------------------------------------------------------


def test_plan_says_what_pip_would_do():
    freeze = {"ipywidgets": Version("7.7.1"), "numpy": Version("2.1.3"), "torch": Version("2.11.0")}
    reqs = ["ipywidgets>=8.0", "numpy<2", "torch>=2.4", "pillow>=10", 'pywin32>=300; sys_platform == "win32"']
    assert [r[3] for r in plan([Requirement(r) for r in reqs], freeze)] == [
        "upgrade", "downgrade", "keep", "install", "skip (marker false in Colab)"]  # fmt: skip


def test_installing_the_course_in_colab_changes_none_of_its_packages():
    rows = plan(colab.course_requirements(), colab.read_freeze())
    print("\nWhat `pip install tlcourse` does in Colab, per requirement:\n" + _table(rows))
    action = {name: a for name, _, _, a in rows}
    for name in UNTOUCHABLE:
        assert action.get(name) == "keep", f"{name}: {action.get(name)} in Colab\n{_table(rows)}"
    changes = [r for r in rows if r[3] not in ("keep", "install")]
    assert not changes, "the install would change Colab's packages:\n" + _table(changes)
    print("new packages (not in Colab):", [name for name, *_, a in rows if a == "install"] or "none")


def test_every_runtime_requirement_has_a_lower_bound():
    """A bound says which release the code was checked on (pyproject.toml gives the evidence for each)."""
    for req in colab.course_requirements():
        assert any(s.operator in (">=", "~=", "==") for s in req.specifier), f"{req}: no lower bound"


def test_colab_keeps_its_ipywidgets_7_and_jupyterlab_4_gets_8():
    """tqdm's widget bars work with 7.x, and Colab's frontend is built for it; JupyterLab 4 renders only 8.x."""
    (runtime,) = [r for r in colab.course_requirements() if r.name == "ipywidgets"]
    (dev,) = [Requirement(r) for r in pyproject()["project"]["optional-dependencies"]["dev"] if r.startswith("ipyw")]
    assert runtime.specifier.contains("7.7.1") and not dev.specifier.contains("7.7.1") and dev.specifier.contains("8.1")


def _third_party_imports() -> dict[str, set[str]]:
    """{top-level module: files} of every import in tlcourse/ that is neither the standard library nor tlcourse."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "tlcourse").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for top in {n.split(".")[0] for n in names}:
                if top not in sys.stdlib_module_names and top not in ("tlcourse", "__future__"):
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_package_tlcourse_imports_is_declared():
    runtime = {canonicalize_name(r.name) for r in colab.course_requirements()}
    dev = {canonicalize_name(Requirement(r).name) for r in pyproject()["project"]["optional-dependencies"]["dev"]}
    providers = importlib.metadata.packages_distributions()
    imports = _third_party_imports()
    assert {"torch", "PIL", "scipy", "sklearn"} <= set(imports)  # the scan sees lazy imports inside functions too
    for module, files in sorted(imports.items()):
        if module in OPTIONAL_IMPORTS:
            continue
        dists = {canonicalize_name(d) for d in providers.get(module, [])}
        assert dists, f"{module} (imported by {sorted(files)}) is not installed here"
        wanted = dev if module in DEV_ONLY_IMPORTS else runtime
        where = "the dev extra" if module in DEV_ONLY_IMPORTS else "[project] dependencies"
        assert dists & wanted, (
            f"{module} (imported by {sorted(files)}) comes from {sorted(dists)}: declare it in {where}"
        )


# --- the recorded resolution with pip (one level deeper) --------------------------------------------------------


def test_recorded_resolution_is_of_this_pyproject_and_freeze_and_changes_nothing_in_colab():
    header, sections = colab.parse_record(colab.RECORD.read_text())
    regenerate = "regenerate it: python3.13 tools/colab_resolve.py (needs the network)"
    assert sections["requirements"] == [str(r) for r in colab.course_requirements()], f"pyproject changed; {regenerate}"
    assert header["freeze"].endswith(f"sha256={colab.sha256(colab.FREEZE)}"), f"the freeze changed; {regenerate}"
    assert header["outcome"].startswith("resolved"), header["outcome"]
    assert sections["changes to Colab packages"] == []
    freeze = colab.read_freeze()
    added = sections["would install (not in Colab)"]
    kept = dict(line.split("==") for line in sections["kept at Colab's version"])
    assert not any(canonicalize_name(line.split("==")[0]) in freeze for line in added)
    assert all(freeze[name] is None or freeze[name] == Version(v) for name, v in kept.items())
    # the course's own requirements resolved to Colab's versions: the offline check above, confirmed by pip
    for req in colab.course_requirements():
        assert kept.get(canonicalize_name(req.name)) == str(freeze[canonicalize_name(req.name)]), req
    print(f"\n{header['outcome']}; pip {header['pip']} on {header['date']}; would add: {added or 'nothing'}")
