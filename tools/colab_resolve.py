"""Resolve the course's dependencies against Google Colab's installed packages, with pip and PyPI (needs the network).

    python3.13 tools/colab_resolve.py      # writes tests/data/colab-resolution.txt; exit 1 if pip cannot resolve

What it asks pip: install the `[project] dependencies` of pyproject.toml into an empty Python 3.13 / glibc 2.35 x86_64
target (Colab's GPU runtime runs Ubuntu 22.04) with every package of Colab's `pip freeze`
(tests/data/colab-pip-freeze.txt, local suffixes such as +cu128 stripped) pinned by a constraint. If that resolves,
installing the course in Colab changes none of Colab's packages, not even through a requirement of a requirement; the
record lists what the install would add (packages Colab lacks).

One stand-in: Colab's torch family is the CUDA 12.8 build (torch 2.11.0+cu128 from download.pytorch.org, which this
script does not use); PyPI's torch 2.11.0 is another build of the same version that requires the CUDA 13 packages. So
the CUDA runtime packages (nvidia-*, cuda-*) are not pinned, and what the stand-in pulls in is listed apart. In Colab
the installed torch satisfies the course's bound, so pip keeps it and its CUDA packages.

Only metadata is downloaded (`--dry-run`; `fast-deps` reads a wheel's METADATA with HTTP range requests where the
index serves no PEP 658 metadata, so torch's 500 MB wheel is not fetched). pip runs with no configuration files and no
PIP_* variables (a machine's global constraints and local wheel folders must not leak in), against PyPI only.

Run it with a Python 3.13 (pip evaluates requirement markers with the running interpreter); a recent pip is best.
tests/test_install.py never runs this (tests never need the network): it checks offline that the record was made from
the current pyproject.toml and freeze and that it changes nothing of Colab's, and it shares the helpers below.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename
from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
FREEZE = ROOT / "tests" / "data" / "colab-pip-freeze.txt"
RECORD = ROOT / "tests" / "data" / "colab-resolution.txt"
INDEX = "https://pypi.org/simple"
PYTHON = "3.13"
GLIBC = 35  # Ubuntu 22.04: glibc 2.35
# pip's --platform takes exact tags: every manylinux tag a glibc 2.35 x86_64 system accepts, newest first
PLATFORMS = [f"manylinux_2_{v}_x86_64" for v in range(GLIBC, 4, -1)] + [
    "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64", "linux_x86_64"]  # fmt: skip
CUDA_PREFIXES = ("nvidia-", "cuda-")  # the CUDA runtime packages that come with a torch build
# PEP 508 marker environment of Colab's GPU runtime (Python 3.13.15 on x86_64 Linux)
COLAB_MARKERS = {
    "implementation_name": "cpython",
    "implementation_version": "3.13.15",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "platform_python_implementation": "CPython",
    "platform_system": "Linux",
    "python_full_version": "3.13.15",
    "python_version": "3.13",
    "sys_platform": "linux",
    "extra": "",
}


def _version_of_url(url: str) -> Version | None:
    """The version in a wheel or sdist file name at the end of a direct URL, if there is one."""
    name = url.split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    try:
        if name.endswith(".whl"):
            return parse_wheel_filename(name)[1]
        if name.endswith((".tar.gz", ".zip")):
            return parse_sdist_filename(name)[1]
    except (ValueError, InvalidVersion):
        pass
    return None


def parse_freeze(text: str) -> dict[str, Version | None]:
    """{PEP 503 name: installed version} of a `pip freeze`; local suffixes (+cu128) dropped. A `name @ url` line
    gives the version in the URL's file name, or None (installed, version unknown: e.g. a git checkout)."""
    out: dict[str, Version | None] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "-")):
            continue
        req = Requirement(line)
        name = canonicalize_name(req.name)
        if req.url:
            out[name] = _version_of_url(req.url)
            continue
        specs = list(req.specifier)
        if len(specs) != 1 or specs[0].operator not in ("==", "==="):
            raise ValueError(f"not a pip freeze line: {raw!r}")
        out[name] = Version(Version(specs[0].version).public)
    return out


def read_freeze(path: Path = FREEZE) -> dict[str, Version | None]:
    return parse_freeze(path.read_text())


def course_requirements(path: Path = PYPROJECT) -> list[Requirement]:
    """The `[project] dependencies`: what `pip install "tlcourse @ git+..."` installs."""
    import tomllib  # Python 3.11+

    return [Requirement(r) for r in tomllib.loads(path.read_text())["project"]["dependencies"]]


def applies_in_colab(req: Requirement) -> bool:
    return req.marker is None or req.marker.evaluate(COLAB_MARKERS)


def is_cuda(name: str) -> bool:
    return canonicalize_name(name).startswith(CUDA_PREFIXES)


def constraints(freeze: dict[str, Version | None]) -> list[str]:
    """`name==version` for every Colab package whose version is known, except the CUDA runtime (see the docstring)."""
    return [f"{name}=={v}" for name, v in sorted(freeze.items()) if v is not None and not is_cuda(name)]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pip_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull  # no global/user/site pip.conf: no local indexes, no global constraints
    return env


def pip_command(python: str, report: Path, target: Path, constraint_file: Path, reqs: list[str]) -> list[str]:
    return [python, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet", "--report", str(report),
            "--python-version", PYTHON, "--implementation", "cp", "--abi", "cp313",
            *(a for tag in PLATFORMS for a in ("--platform", tag)), "--only-binary=:all:", "--target", str(target),
            "--index-url", INDEX, "--use-feature=fast-deps", "-c", str(constraint_file), *reqs]  # fmt: skip


def _display(cmd: list[str], tmp: Path) -> str:
    """The command as recorded: temp paths named by what they hold, the platform tags abridged."""
    text = " ".join(cmd[1:])
    text = text.replace(" ".join(f"--platform {t}" for t in PLATFORMS),
                        f"--platform {PLATFORMS[0]} ... --platform {PLATFORMS[-1]} ({len(PLATFORMS)} tags)")  # fmt: skip
    for path, name in ((tmp / "report.json", "REPORT.json"), (tmp / "target", "EMPTY_DIR"),
                       (tmp / "colab-constraints.txt", "COLAB_CONSTRAINTS.txt")):  # fmt: skip
        text = text.replace(str(path), name)
    return text


def classify(resolved: dict[str, str], freeze: dict[str, Version | None]) -> dict[str, list[str]]:
    """The resolution against Colab's freeze: changed / added Colab packages (CUDA runtime apart), and kept ones."""
    out: dict[str, list[str]] = {"changed": [], "added": [], "cuda": [], "kept": []}
    for name, v in sorted(resolved.items()):
        old = freeze.get(name)
        if name in freeze and (old is None or Version(v) == old):
            out["kept"].append(f"{name}=={v}")
        elif is_cuda(name):
            out["cuda"].append(f"{name} {old} -> {v}" if name in freeze else f"{name}=={v} (new)")
        elif name in freeze:
            out["changed"].append(f"{name} {old} -> {v}")
        else:
            out["added"].append(f"{name}=={v}")
    return out


SECTIONS = {
    "changed": "changes to Colab packages",
    "added": "would install (not in Colab)",
    "cuda": "CUDA runtime of PyPI's torch build (stands in for Colab's +cu128 build; not what Colab gets)",
    "kept": "kept at Colab's version",
}


def render(*, date: str, pip_version: str, python_version: str, command: str, outcome: str, reqs: list[str],
           classes: dict[str, list[str]] | None, error: str = "") -> str:  # fmt: skip
    """The record: `key: value` lines, then [sections] with one item per line."""
    lines = [
        "# What installing tlcourse in Colab would do, resolved for real by pip against PyPI (tools/colab_resolve.py:",
        "# needs the network, never run by the tests). Regenerate it after changing [project] dependencies or the freeze.",
        f"date: {date}",
        f"pip: {pip_version} (Python {python_version})",
        f"freeze: tests/data/colab-pip-freeze.txt sha256={sha256(FREEZE)}",
        f"command: python {command}",
        "COLAB_CONSTRAINTS.txt: name==version of every freeze package (local suffixes such as +cu128 stripped), "
        f"except the CUDA runtime ({', '.join(p + '*' for p in CUDA_PREFIXES)})",
        f"outcome: {outcome}",
        "",
        "[requirements]",
        *reqs,
    ]
    for key, title in SECTIONS.items() if classes is not None else ():
        lines += ["", f"[{title}]", *classes[key]]
    if error:
        lines += ["", "[pip error]", *error.strip().splitlines()[-40:]]
    return "\n".join(lines) + "\n"


def parse_record(text: str) -> tuple[dict[str, str], dict[str, list[str]]]:
    """({key: value} of the header, {section title: lines}) of a record written by render()."""
    header: dict[str, str] = {}
    sections: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
        elif current is not None:
            current.append(line)
        else:
            key, _, value = line.partition(": ")
            header[key] = value
    return header, sections


def _run(cmd: list[str]) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python", default=sys.executable, help="interpreter whose pip resolves (default: this one)")
    ap.add_argument("--out", type=Path, default=RECORD)
    args = ap.parse_args(argv)
    freeze = read_freeze()
    reqs = [str(r) for r in course_requirements()]
    pip_version = _run([args.python, "-m", "pip", "--version"]).split()[1]
    python_version = _run([args.python, "-c", "import platform; print(platform.python_version())"])
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "colab-constraints.txt").write_text("\n".join(constraints(freeze)) + "\n")
        cmd = pip_command(args.python, tmp / "report.json", tmp / "target", tmp / "colab-constraints.txt", reqs)
        res = subprocess.run(cmd, capture_output=True, text=True, env=_pip_env())
        report = json.loads((tmp / "report.json").read_text()) if res.returncode == 0 else None
        command = _display(cmd, tmp)
    classes = None
    if report is None:
        outcome = f"FAILED (pip exit {res.returncode}): no install keeps every pinned Colab package"
    else:
        resolved = {canonicalize_name(i["metadata"]["name"]): i["metadata"]["version"] for i in report["install"]}
        classes = classify(resolved, freeze)
        n_changed, n_added = len(classes["changed"]), len(classes["added"])
        outcome = (f"resolved: {n_changed} Colab packages changed, {n_added} added, {len(classes['kept'])} kept "
                   f"({len(resolved)} in the resolution)")  # fmt: skip
    text = render(date=datetime.date.today().isoformat(), pip_version=pip_version, python_version=python_version,
                  command=command, outcome=outcome, reqs=reqs, classes=classes,
                  error=res.stderr if res.returncode else "")  # fmt: skip
    args.out.write_text(text)
    print(text)
    return 0 if classes is not None and not classes["changed"] else 1


if __name__ == "__main__":
    sys.exit(main())
