"""Fetch, verify and locate the course assets listed in `tlcourse.manifest`.

    python -m tlcourse.assets status [NAME ...]       # table: present / missing / corrupt, source, licence
    python -m tlcourse.assets fetch [NAME ...]        # bring assets into the cache through the registries
    python -m tlcourse.assets fetch --lesson 03,04    # only the assets those lessons use

Every file is checked against its sha256 before it is used, written atomically (a temp file renamed into place),
and a fetch is idempotent: files already present and verified are left alone. How a package file is downloaded
(pip, or plain HTTPS where npm and apt-get are missing, as on Colab) is `tlcourse.registry`'s business.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import os
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from tlcourse import registry
from tlcourse.config import data_dir
from tlcourse.files import atomic_file
from tlcourse.manifest import ASSETS, Asset
from tlcourse.registry import REGISTRY, AssetError

OFFLINE_ENV = "TLCOURSE_OFFLINE"
ONLINE_FALLBACKS = {"fashion_mnist"}  # assets whose online fallback yields the very same files (same sha256)
_CHUNK = 1 << 20
_verified: dict[tuple[str, int, int], bool] = {}  # (path, size, mtime_ns) -> sha256 matched


def get(name: str | Asset) -> Asset:
    """The manifest entry for `name`; unknown names list the known ones."""
    if isinstance(name, Asset):
        return name
    if name not in ASSETS:
        raise AssetError(f"unknown asset {name!r}; known assets: {', '.join(ASSETS)}")
    return ASSETS[name]


def asset_dir(name: str | Asset) -> Path:
    """The cache folder of one asset (it may not exist yet)."""
    return data_dir() / get(name).name


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def file_state(path: Path, sha: str) -> str:
    """'ok', 'missing' or 'corrupt' for one cached file (hash memoised per size and mtime)."""
    if not path.is_file():
        return "missing"
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _verified:
        _verified[key] = sha256_file(path) == sha
    return "ok" if _verified[key] else "corrupt"


def state(name: str | Asset) -> str:
    """'ok' when every file is present and verified, else 'missing' or 'corrupt' (corrupt wins)."""
    asset = get(name)
    states = {file_state(asset_dir(asset) / f, sha) for f, (_, sha) in asset.files.items()}
    return "corrupt" if "corrupt" in states else "missing" if "missing" in states else "ok"


def path(name: str | Asset, fetch_missing: bool = True) -> Path:
    """The verified cache folder of an asset, fetching it first if it is missing or corrupt."""
    asset = get(name)
    if state(asset) != "ok":
        if not fetch_missing:
            raise AssetError(
                f"asset {asset.name!r} is {state(asset)}; run: python -m tlcourse.assets fetch {asset.name}"
            )
        fetch(asset)
    return asset_dir(asset)


def fetch(name: str | Asset, force: bool = False, online: bool = False, progress: bool = True) -> Path:
    """Bring one asset into the cache through its registry, verify every sha256, write atomically.

    A corrupt file stays (reported as corrupt, refused by `path`) until a verified copy replaces it.
    """
    asset = get(name)
    dest = asset_dir(asset)
    todo = {f: m for f, m in asset.files.items() if force or file_state(dest / f, m[1]) != "ok"}
    if not todo:
        return dest
    with tempfile.TemporaryDirectory(prefix=f"tlcourse-{asset.name}-") as tmp:
        try:
            members = _open_members(asset, {m for m, _ in todo.values()}, Path(tmp), online, progress)
        except AssetError as registry_error:
            if online or asset.name not in ONLINE_FALLBACKS or _offline():
                raise
            print(f"fetch {asset.name}: {registry_error}\n  -> trying the online fallback", file=sys.stderr)
            try:
                members = _online_members(asset, Path(tmp))
            except Exception as e:
                raise AssetError(f"{registry_error}; the online fallback failed too ({type(e).__name__}: {e})") from e
        dest.mkdir(parents=True, exist_ok=True)
        for f, (member, sha) in _progress(todo.items(), asset.name, progress):
            with members(member) as src:
                _write_verified(src, dest / f, sha, asset)
    return dest


def _progress(items, label: str, show: bool) -> Iterable:
    if not show:
        return list(items)
    from tqdm.auto import tqdm

    return tqdm(list(items), desc=f"fetch {label}", unit="file", leave=False)


def _write_verified(src: BinaryIO, target: Path, sha: str, asset: Asset) -> None:
    """Copy `src` to a temp file beside `target`, check sha256, then rename it into place (files.atomic_file)."""
    h = hashlib.sha256()
    with atomic_file(target, fsync=True) as tmp:
        with open(tmp, "wb") as out:
            while chunk := src.read(_CHUNK):
                h.update(chunk)
                out.write(chunk)
        if h.hexdigest() != sha:
            raise AssetError(
                f"sha256 mismatch for {asset.name}/{target.name} from {asset.spec} "
                f"(got {h.hexdigest()[:12]}…, expected {sha[:12]}…); the file was not used — report this upstream"
            )


def _offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def _need_network(asset: Asset, why: str) -> None:
    if _offline():
        where = {"missing": "not in", "corrupt": "corrupt (sha256 mismatch) in", "ok": "asked for afresh from"}
        raise AssetError(
            f"asset {asset.name!r} is {where[state(asset)]} the cache ({asset_dir(asset)}) and {OFFLINE_ENV}=1 "
            f"forbids {why}; run `python -m tlcourse.assets fetch {asset.name}` on a machine that reaches "
            f"{REGISTRY.get(asset.source, asset.source)}"
        )


def _open_members(asset: Asset, members: set[str], tmp: Path, online: bool, progress: bool = True):
    """Return a function member -> readable binary file: an installed copy, else the registry (see tlcourse.registry)."""
    if online:
        return _online_members(asset, tmp)
    if asset.source not in REGISTRY:
        raise AssetError(f"asset {asset.name!r} has unknown source {asset.source!r}")
    root = _installed(asset, members)
    if root is not None:
        return lambda m: open(root / m, "rb")
    _need_network(asset, f"a download from {REGISTRY[asset.source]}")
    return registry.open_package(asset, tmp, progress)


def _installed(asset: Asset, members: set[str]) -> Path | None:
    """Root under which an installed copy of the package holds every member with the right sha256, if any."""
    if asset.source == "deb":
        root = Path("/")
    elif asset.source == "pypi":
        try:
            root = Path(importlib.metadata.distribution(asset.package).locate_file(""))
        except importlib.metadata.PackageNotFoundError:
            return None
    else:
        return None
    shas = {m: sha for m, sha in asset.files.values()}
    ok = all(file_state(root / m, shas[m]) == "ok" for m in members)
    return root if ok else None


def _online_members(asset: Asset, tmp: Path):
    """The online fallback, where one can be automated (Fashion-MNIST via torchvision: the same files)."""
    if asset.name not in ONLINE_FALLBACKS:
        raise AssetError(f"no automatic online fallback for {asset.name!r}; by hand: {asset.fallback}")
    _need_network(asset, "the torchvision download")
    from torchvision.datasets import FashionMNIST

    FashionMNIST(root=str(tmp), download=True)
    raw = tmp / "FashionMNIST" / "raw"
    return lambda m: open(raw / Path(m).name, "rb")


def status_rows(names: Iterable[str] | None = None) -> list[dict[str, str]]:
    """One row per asset: name, state, size in MB, source package, licence."""
    rows = []
    for name in names or ASSETS:
        a = get(name)
        d = asset_dir(a)
        size = sum((d / f).stat().st_size for f in a.files if (d / f).is_file())
        st = state(a)
        rows.append(
            {
                "asset": a.name,
                "status": {"ok": "present, sha256 ok", "missing": "missing", "corrupt": "CORRUPT (sha256 mismatch)"}[
                    st
                ],
                "MB": f"{size / 1e6:.1f}" if size else "-",
                "source": f"{a.source}: {a.spec}",
                "licence": a.licence,
            }
        )
    return rows


def format_table(rows: list[dict[str, str]]) -> str:
    """Rows of equal keys as a plain-text table."""
    if not rows:
        return ""
    cols = list(rows[0])
    width = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
    lines = ["  ".join(c.ljust(width[c]) for c in cols), "  ".join("-" * width[c] for c in cols)]
    lines += ["  ".join(r[c].ljust(width[c]) for c in cols) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def lesson_assets(lessons: Iterable[str]) -> list[str]:
    """Names of the assets used in any of `lessons` ("3", "03" or "03,04"), in manifest order.

    A lesson that uses no asset gets none (nothing to fetch); what is not a lesson number is refused in one line.
    """
    wanted = {w.strip().zfill(2) for item in lessons for w in item.split(",") if w.strip()}
    if bad := sorted(w for w in wanted if not (w.isdigit() and len(w) == 2)):
        known = sorted({lesson for a in ASSETS.values() for lesson in a.used_in})
        raise AssetError(f"not a lesson number: {', '.join(map(repr, bad))}; lessons with assets: {', '.join(known)}")
    return [a.name for a in ASSETS.values() if wanted & set(a.used_in)]


def main(argv: list[str] | None = None) -> int:
    """Command line: `status [NAME ...]` or `fetch [NAME ...] [--lesson NN] [--force] [--online]`."""
    parser = argparse.ArgumentParser(prog="python -m tlcourse.assets", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    for cmd, text in [("status", "show what is in the cache"), ("fetch", "fetch assets (all if none named)")]:
        p = sub.add_parser(cmd, help=text)
        p.add_argument("names", nargs="*")
        p.add_argument("--lesson", action="append", default=[], metavar="NN", help="assets of lesson NN (or NN,MM)")
        if cmd == "fetch":
            p.add_argument("--force", action="store_true", help="fetch again even if present")
            p.add_argument("--online", action="store_true", help="use the online fallback (Fashion-MNIST only)")
    args = parser.parse_args(argv)
    try:
        picked = {get(n).name for n in args.names} | set(lesson_assets(args.lesson))
        names = [n for n in ASSETS if n in picked] if args.names or args.lesson else list(ASSETS)
        if args.cmd == "status":
            print(f"cache: {data_dir()}")
            print(format_table(status_rows(names)))
            return 0 if all(state(n) == "ok" for n in names) else 1
        failed = []
        for n in names:
            try:
                fetch(n, force=args.force, online=args.online)
                print(f"ok       {n}", flush=True)
            except AssetError as e:
                failed.append(n)
                print(f"FAILED   {n}: {e}", file=sys.stderr, flush=True)
        print(f"cache: {data_dir()}  ({len(names) - len(failed)}/{len(names)} assets ok)")
        return 1 if failed else 0
    except AssetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
