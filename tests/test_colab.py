"""Colab: every notebook opens with a badge to itself and the same install cell, a no-op anywhere but Colab.

The install cell cannot import tlcourse (it is what installs it), so it is tested as text: its source is executed in a
fresh Python process, once as is (nothing may happen) and once with a fake `google.colab` module and a recording
`subprocess.run` (the right commands must be run).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import nbformat
import pytest
import torch

from tlcourse.config import get_device

ROOT = Path(__file__).resolve().parent.parent
LESSONS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
REFERENCE = ROOT / "notebooks" / "00_setup_tour.ipynb"  # the install cell is written here and copied verbatim
BADGE = re.compile(
    r"\[!\[Open In Colab\]\(https://colab\.research\.google\.com/assets/colab-badge\.svg\)\]"
    r"\(https://colab\.research\.google\.com/github/(?P<slug>[\w.-]+/[\w.-]+)/blob/main/(?P<path>[^)\s]+)\)"
)
needs_lessons = pytest.mark.skipif(not LESSONS or not REFERENCE.is_file(), reason="no lesson notebooks yet")


def install_cell(lesson: str = "00") -> str:
    """The reference install cell (second cell of notebook 00), as lesson `lesson` must carry it."""
    source = nbformat.read(REFERENCE, as_version=4).cells[1].source
    assert source.count('LESSON = "00"') == 1, 'the install cell must name its lesson once: LESSON = "00"'
    return source.replace('LESSON = "00"', f'LESSON = "{lesson}"')


def repo_slug(source: str) -> str:
    """owner/name of the GitHub repository the install cell installs from (the one place it is defined)."""
    m = re.search(r'REPO = "https://github\.com/([\w.-]+/[\w.-]+)"', source)
    assert m, 'the install cell must define REPO = "https://github.com/<owner>/<name>"'
    return m.group(1)


# a harness: run the cell's source in a fresh interpreter, recording every way it could start a process
HARNESS = textwrap.dedent(
    """
    import importlib.util, json, os, subprocess, sys, types
    fake_colab, tlcourse_installed, fetch_rc = {fake_colab}, {tlcourse_installed}, {fetch_rc}
    calls = []

    class FakeProcess:  # what Popen returns: output lines as they come, then the exit code
        def __init__(self, cmd, env):
            failed = fetch_rc and "tlcourse.assets" in cmd
            self.stdout = iter(["fetch mnist5000: downloading https://files.example/mnist.whl ...\\n",
                                "ok       mnist5000\\n"]
                               + (["FAILED   uci_sentences: HTTP 404 for https://registry.example/s.tgz\\n"]
                                  if failed else []))
            self.rc, self.env = (fetch_rc if failed else 0), env

        def wait(self):
            return self.rc

    def record(name, result=None):
        def fn(cmd, *args, **kwargs):
            calls.append({{"via": name, "cmd": [str(c) for c in cmd] if isinstance(cmd, (list, tuple)) else cmd,
                           "check": kwargs.get("check", False), "merged": kwargs.get("stderr") == subprocess.STDOUT,
                           "tqdm": (kwargs.get("env") or {{}}).get("TQDM_DISABLE")}})
            if name == "Popen":
                return FakeProcess(cmd, kwargs.get("env"))
            if name != "run":
                return 0
            return subprocess.CompletedProcess(cmd, 0, "", "")
        return fn

    for name in ("run", "call", "check_call", "check_output", "Popen"):
        setattr(subprocess, name, record(name))
    os.system = record("os.system")
    real_find_spec = importlib.util.find_spec
    importlib.util.find_spec = lambda name, *a: (real_find_spec(name, *a) if tlcourse_installed or name != "tlcourse"
                                                  else None)
    if fake_colab:
        sys.modules["google"] = types.ModuleType("google")
        sys.modules["google.colab"] = types.ModuleType("google.colab")
    space = {{"__name__": "__main__"}}
    exec(compile(sys.stdin.read(), "<install cell>", "exec"), space)
    names = sorted(k for k in space if not k.startswith("__"))
    sys.stderr.write("HARNESS" + json.dumps({{"calls": calls, "names": names}}))
    """
)


def run_cell(source: str, tmp_path: Path, fake_colab: bool, tlcourse_installed: bool = True, fetch_rc: int = 0):
    """Execute the cell in a subprocess (cwd and HOME in tmp_path); return (stdout, recorded calls, new global names)."""
    harness = HARNESS.format(fake_colab=fake_colab, tlcourse_installed=tlcourse_installed, fetch_rc=fetch_rc)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    res = subprocess.run([sys.executable, "-c", harness], input=source, capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=60)  # fmt: skip
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stderr.split("HARNESS", 1)[1])
    return res.stdout, report["calls"], report["names"]


@needs_lessons
@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_notebook_opens_with_a_badge_to_itself_then_the_install_cell(path):
    cells = nbformat.read(path, as_version=4).cells
    assert cells[0].cell_type == "markdown", f"{path.name}: the first cell must be the markdown title with the badge"
    m = BADGE.search(cells[0].source)
    assert m, f"{path.name}: no Colab badge in the first cell"
    assert m["path"] == f"notebooks/{path.name}", f"{path.name}: the badge opens {m['path']}, not this notebook"
    assert m["slug"] == repo_slug(install_cell()), f"{path.name}: the badge points at {m['slug']}, not the install repo"
    assert cells[1].cell_type == "code"
    assert cells[1].source == install_cell(path.name[:2]), (
        f"{path.name}: cell 2 must be notebook 00's install cell, copied verbatim but for its LESSON number"
    )


@needs_lessons
def test_install_cell_is_a_noop_outside_colab(tmp_path):
    source = install_cell()
    site = Path(sysconfig.get_paths()["purelib"])
    before = sorted(p.name for p in site.iterdir())
    stdout, calls, names = run_cell(source, tmp_path, fake_colab=False)
    assert calls == [] and stdout == "", "outside Colab the cell must not run anything or print anything"
    assert names == ["sys"], f"outside Colab the cell should only import sys, it defined {names}"
    assert list(tmp_path.iterdir()) == [], "outside Colab the cell must not write files"
    assert sorted(p.name for p in site.iterdir()) == before, "outside Colab the cell must not install anything"
    # and for real, without any patching: exits at once, silently, changing nothing
    res = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "")
    assert list(tmp_path.iterdir()) == [] and sorted(p.name for p in site.iterdir()) == before


@needs_lessons
def test_install_cell_in_colab_installs_tlcourse_then_fetches_assets(tmp_path):
    source = install_cell("03")
    slug = repo_slug(source)
    stdout, calls, _ = run_cell(source, tmp_path, fake_colab=True, tlcourse_installed=False)
    python = sys.executable
    assert [c["via"] for c in calls] == ["run", "Popen"], calls
    pip, fetch = calls[0]["cmd"], calls[1]["cmd"]
    assert pip[:4] == [python, "-m", "pip", "install"] and pip[-1] == f"tlcourse @ git+https://github.com/{slug}@main"
    assert calls[0]["check"] is True, "a failed install must stop the notebook: nothing after it can work"
    assert fetch == [python, "-m", "tlcourse.assets", "fetch", "--lesson", "03"], "only this lesson's assets"
    assert calls[1]["merged"] and calls[1]["tqdm"] == "1", "progress lines (not bars) must reach the cell's output"
    assert "downloading https://files.example/mnist.whl" in stdout and "ok       mnist5000" in stdout
    assert "Some assets failed" not in stdout
    # already installed (the cell is run again in the same runtime): no reinstall, only the (idempotent) fetch
    _, calls, _ = run_cell(source, tmp_path, fake_colab=True, tlcourse_installed=True)
    assert [c["cmd"][1:3] for c in calls] == [["-m", "tlcourse.assets"]]
    # an asset that cannot be fetched is printed with its reason and what to do, and does not stop "Run all"
    stdout, calls, _ = run_cell(source, tmp_path, fake_colab=True, fetch_rc=1)
    assert (
        "FAILED   uci_sentences: HTTP 404" in stdout and "Some assets failed" in stdout and "rerun this cell" in stdout
    )


def test_each_lessons_install_cell_fetches_assets_that_lesson_uses():
    from tlcourse import assets

    for path in LESSONS:
        names = assets.lesson_assets([path.name[:2]])
        assert names or path.name.startswith("00"), f"{path.name}: no asset lists it in used_in"


def pyproject_urls() -> dict[str, str]:
    """[project.urls] of pyproject.toml: where the course lives, said once for pip, PyPI and GitHub."""
    tomllib = pytest.importorskip("tomllib", reason="Python 3.11+ reads pyproject.toml with tomllib")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]


# the branch a badge opens: .../github/<owner>/<name>/blob/<branch>/<path>
BADGE_BRANCH = re.compile(r"colab\.research\.google\.com/github/[\w.-]+/[\w.-]+/blob/(?P<branch>[\w.-]+)/")


@needs_lessons
def test_badges_install_cell_and_pyproject_name_the_same_repository():
    slug = repo_slug(install_cell())
    urls = pyproject_urls()
    assert urls["Repository"] == f"https://github.com/{slug}", "pyproject's Repository is not the install cell's REPO"
    assert urls["Homepage"] == urls["Repository"]
    for path in LESSONS:
        m = BADGE.search(nbformat.read(path, as_version=4).cells[0].source)
        assert m and m["slug"] == slug, f"{path.name}: the badge does not open {slug}"


@needs_lessons
def test_install_cell_installs_the_branch_the_badges_open(tmp_path):
    """A notebook opened from branch X must install tlcourse from branch X: the code it was written against."""
    branches = {BADGE_BRANCH.search(nbformat.read(p, as_version=4).cells[0].source)["branch"] for p in LESSONS}
    assert len(branches) == 1, f"the badges open several branches: {sorted(branches)}"
    (branch,) = branches
    _, calls, _ = run_cell(install_cell(), tmp_path, fake_colab=True, tlcourse_installed=False)
    pip = calls[0]["cmd"]
    slug = repo_slug(install_cell())
    assert pip[-1] == f"tlcourse @ git+https://github.com/{slug}@{branch}", f"the cell installs {pip[-1]!r}"


def test_repo_slug_is_read_from_the_install_cell():
    assert repo_slug('x\n    REPO = "https://github.com/someone/fork-1"\n') == "someone/fork-1"
    with pytest.raises(AssertionError):
        repo_slug("pip install tlcourse")


def test_device_prefers_the_colab_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_device() == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert get_device() == torch.device("cpu")
    assert get_device("cpu") == torch.device("cpu")


HARD_CODED_DEVICE = re.compile(
    r"""device\s*=\s*["'](cpu|cuda)["']|torch\.device\(\s*["'](cpu|cuda)["']\s*\)|\.cuda\(\)"""
)


@needs_lessons
@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_notebooks_take_the_device_from_get_device(path):
    cells = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    hard = [m.group(0) for src in cells for m in HARD_CODED_DEVICE.finditer(src)]
    assert not hard, f"{path.name}: hard-coded device {hard}; use tlcourse.config.get_device() so Colab uses its GPU"
    uses_device = any(re.search(r"\bdevice\b", src) for src in cells[2:])
    if uses_device:
        assert any("get_device(" in src for src in cells), f"{path.name}: uses a device but never calls get_device()"


def test_training_defaults_to_get_device_so_colab_trains_on_its_gpu(monkeypatch):
    """fit() takes its device from get_device() unless told otherwise; a tiny run shows it asked."""
    from torch.utils.data import DataLoader, TensorDataset

    from tlcourse import config, train

    asked = []
    monkeypatch.setattr(config, "get_device", lambda *a: asked.append(a) or torch.device("cpu"))
    model = torch.nn.Linear(3, 2)
    loader = DataLoader(TensorDataset(torch.randn(8, 3), torch.tensor([0, 1] * 4)), batch_size=4)
    train.fit(model, loader, epochs=1, progress=False)
    assert asked, "fit() without device= must ask config.get_device() (a GPU in Colab)"


def test_predict_and_evaluate_default_to_the_models_device():
    import inspect

    from tlcourse import train

    for fn in (train.predict, train.evaluate):
        assert inspect.signature(fn).parameters["device"].default is None, (
            f"{fn.__name__}: a GPU model would get CPU inputs"
        )
