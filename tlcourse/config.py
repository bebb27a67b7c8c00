"""Run settings read in one place: smoke/full mode, seeds, device, and where files live."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

SMOKE_ENV = "TLCOURSE_SMOKE"
DATA_ENV = "TLCOURSE_DATA"
RESULTS_ENV = "TLCOURSE_RESULTS"


def is_smoke() -> bool:
    """True when TLCOURSE_SMOKE is set to 1/true/yes: tiny subsets, one short epoch, same code path."""
    return os.environ.get(SMOKE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def mode() -> str:
    """'smoke' or 'full'."""
    return "smoke" if is_smoke() else "full"


def pick(full, smoke):
    """Return `full` in full mode and `smoke` in smoke mode (use it for sizes, epochs, seeds)."""
    return smoke if is_smoke() else full


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed python, numpy and torch; return a torch.Generator seeded the same way for DataLoaders."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def get_device(prefer: str | None = None) -> torch.device:
    """The best available device: cuda, then mps, then cpu (or `prefer` if given)."""
    if prefer:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def repo_root() -> Path | None:
    """The course checkout this package lives in, or None when installed elsewhere (e.g. Colab)."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() and (root / "notebooks").is_dir() else None


def data_dir() -> Path:
    """Asset cache: $TLCOURSE_DATA, else <repo>/data/cache, else ~/.cache/tlcourse."""
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser()
    root = repo_root()
    return root / "data" / "cache" if root else Path.home() / ".cache" / "tlcourse"


def results_dir() -> Path:
    """Where notebooks record headline numbers: $TLCOURSE_RESULTS, else <repo>/results (smoke runs in results/smoke)."""
    if os.environ.get(RESULTS_ENV):
        base = Path(os.environ[RESULTS_ENV]).expanduser()
    else:
        root = repo_root()
        base = root / "results" if root else Path.cwd() / "results"
    return base / "smoke" if is_smoke() else base
