"""A loopback stand-in for PyPI, npm and Debian: package files built in the test, served by http.server
(whose 404 reason reads "File not found").
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import json
import tarfile
import threading
import zipfile
from pathlib import Path


def sha(data: bytes) -> str:
    """Hex sha256 of some bytes."""
    return hashlib.sha256(data).hexdigest()


def build_wheel(folder: Path, name: str, version: str, files: dict[str, bytes]) -> Path:
    """A minimal wheel (a zip) holding `files`."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for member, data in files.items():
            z.writestr(member, data)
    return path


def _tar(files: dict[str, bytes], mode: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for member, data in files.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def build_tgz(folder: Path, name: str, version: str, files: dict[str, bytes]) -> Path:
    """An npm-style tarball (`npm pack` output: members under package/)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{version}.tgz"
    path.write_bytes(_tar(files, "w:gz"))
    return path


def build_deb(path: Path, files: dict[str, bytes], compression: str = "xz", raw_data: bytes | None = None) -> Path:
    """A minimal .deb: an ar archive of debian-binary, control.tar.xz and data.tar.<compression>."""
    members = [
        ("debian-binary", b"2.0\n"),
        ("control.tar.xz", _tar({"./control": b"Package: fake\n"}, "w:xz")),
        (f"data.tar.{compression}", raw_data if raw_data is not None else _tar(files, f"w:{compression}")),
    ]
    out = bytearray(b"!<arch>\n")
    for name, data in members:
        out += f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode()
        out += data + (b"\n" if len(data) % 2 else b"")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(out))
    return path


def write_pypi_json(root: Path, name: str, version: str, wheel: Path, base_url: str, sha256: str = "") -> None:
    """The JSON API document /pypi/<name>/<version>/json for one wheel (plus an sdist, which must be skipped)."""
    doc = root / "pypi" / name / version / "json"
    doc.parent.mkdir(parents=True, exist_ok=True)
    files = [
        {"filename": f"{name}-{version}.tar.gz", "packagetype": "sdist", "url": f"{base_url}/nowhere.tar.gz"},
        {
            "filename": wheel.name,
            "packagetype": "bdist_wheel",
            "url": f"{base_url}/{wheel.relative_to(root).as_posix()}",
            "digests": {"sha256": sha256 or sha(wheel.read_bytes())},
            "size": wheel.stat().st_size,
        },
    ]
    doc.write_text(json.dumps({"urls": files}))


class Server:
    """Serve `root` on 127.0.0.1 in a thread; `requests` lists the paths asked for."""

    def __init__(self, root: Path):
        self.root, self.requests = root, []
        requests = self.requests

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                requests.append(self.path)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=root))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop serving."""
        self.httpd.shutdown()
        self.httpd.server_close()
