"""Run settings read in one place: smoke/full mode, seeds, device, and where files live."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

SMOKE_ENV = "TLCOURSE_SMOKE"
DATA_ENV = "TLCOURSE_DATA"
RESULTS_ENV = "TLCOURSE_RESULTS"
PRECISION_ENV = "TLCOURSE_PRECISION"  # force a precision: fp32, bf16 or fp16 (fp16 on CUDA only)


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


@dataclass(frozen=True)
class Precision:
    """What mixed precision to train with on a device, and why: dtype None means plain float32."""

    dtype: torch.dtype | None
    reason: str

    @property
    def name(self) -> str:
        """'fp32', 'bf16' or 'fp16'."""
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    def __str__(self) -> str:
        return f"{self.name}: {self.reason}"


_FORCED = {"fp32": None, "float32": None, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16,
           "float16": torch.float16}  # fmt: skip


def _cpu_flags() -> set[str]:
    """The CPU feature flags of /proc/cpuinfo (empty where there is none, e.g. macOS or Windows)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((ln for ln in text.splitlines() if ln.startswith(("flags", "Features"))), "")
    return set(line.partition(":")[2].split())


def cpu_bf16() -> tuple[bool, str]:
    """(whether this CPU runs bf16 matrix products natively, why): AVX-512 BF16 or AMX, and oneDNN allowed to use them.

    Without them PyTorch emulates bf16 on the CPU, which is many times slower than float32.
    """
    native = sorted(_cpu_flags() & {"avx512_bf16", "amx_bf16"})
    if not native:
        return False, "this CPU has no native bf16 (no AVX-512 BF16 or AMX), so bf16 would be emulated and slow"
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    if isa and isa not in {"ALL", "DEFAULT"} and not any(k in isa for k in ("BF16", "AMX", "FP16", "AVX10")):
        return False, f"ONEDNN_MAX_CPU_ISA={isa} keeps oneDNN from this CPU's {' and '.join(native)}"
    return True, f"this CPU has native bf16 ({' and '.join(native)})"


def precision(device: torch.device | str | None = None) -> Precision:
    """The one precision policy: the autocast dtype to train with on `device` (default: get_device()), and why.

    CUDA with compute capability ≥ 8 (A100, L4, H100…): bf16. Older CUDA GPUs (a Colab T4 is 7.5): fp16, with the loss
    scaling the Trainer and accelerate provide. CPU: bf16 only where the CPU has it natively (cpu_bf16), else
    float32. Anything else: float32. $TLCOURSE_PRECISION (fp32, bf16 or fp16) overrides the choice.
    """
    device = get_device() if device is None else torch.device(device)
    forced = os.environ.get(PRECISION_ENV, "").strip().lower()
    if forced:
        if forced not in _FORCED:
            raise ValueError(f"{PRECISION_ENV}={forced!r} is not a precision; use fp32, bf16 or fp16 (or unset it)")
        if _FORCED[forced] is torch.float16 and device.type != "cuda":
            raise ValueError(f"{PRECISION_ENV}=fp16 needs a CUDA GPU; on {device.type} use fp32 or bf16")
        return Precision(_FORCED[forced], f"forced by {PRECISION_ENV}={forced}")
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        if major >= 8:
            return Precision(torch.bfloat16, f"CUDA compute capability {major}.{minor}: bf16 is native")
        return Precision(torch.float16, f"CUDA compute capability {major}.{minor}: fp16 is native, bf16 is not")
    if device.type == "cpu":
        native, why = cpu_bf16()
        return Precision(torch.bfloat16 if native else None, why)
    return Precision(None, f"float32 on {device.type}")


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
