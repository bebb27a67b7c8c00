"""Writing files and folders so that nothing is ever half-written: the one place every writer in tlcourse goes through.

    with atomic_file(path) as tmp:      # write to tmp (a unique name beside path); renamed onto path on success
        save_file(tensors, tmp)
    write_atomic(path, text)            # the same for a string
    with atomic_folder(path) as tmp:    # a whole folder (a saved model), swapped in when complete
        model.save_pretrained(tmp)

The temporary lives in the target's own folder (a rename is atomic only within one file system) under a unique name,
so two writers to one target never collide: the last to finish wins and each sees its own complete file. On any error
— or an interrupt — the temporary is removed and the old file or folder is left exactly as it was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_file(path: str | Path, fsync: bool = False) -> Iterator[str]:
    """Yield a unique temp path beside `path`; on success it is renamed onto `path`, on error removed.

    fsync=True flushes the data to disk before the rename (for large downloads that must survive a power cut).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)  # not mkstemp's private 0600
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_atomic(path: str | Path, text: str) -> None:
    """Write text (UTF-8) to `path` through `atomic_file`: never half-written."""
    with atomic_file(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)


@contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """Yield a unique empty temp folder beside `path`; on success it replaces `path` (an old folder is removed after
    the swap), on error it is removed and the old folder stays."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    old = None
    try:
        yield tmp
        os.chmod(tmp, 0o755)  # not mkdtemp's private 0700
        if path.exists():
            old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old"))
            os.replace(path, old / path.name)  # step aside: the new folder can then be renamed in
        try:
            os.replace(tmp, path)
        except BaseException:
            if old is not None:
                os.replace(old / path.name, path)  # put the old folder back
                old = None
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
