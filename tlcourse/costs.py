"""What training costs, measured: seconds per step and peak memory (lessons 03 and 05).

    secs = step_seconds(model, tok, texts, max_length=64)     # median seconds of one training step, on a copy
    mem = peak_memory("peft", r=8)                            # a fresh process: peak RSS of a few training steps

Peak memory on a CPU: Python's tracemalloc does not see torch's allocations, and torch keeps no CPU peak counter,
so `peak_memory` runs a few training steps in a fresh Python process and reads the kernel's resident-set
high-water mark (VmHWM) before and after them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from tlcourse import config
from tlcourse.peft_tools import METHODS, build


def step_seconds(model, tokenizer, texts: list[str], max_length: int = 64, bf16: bool | None = None,
                 repeats: int = 3, fixed_padding: bool = False) -> float:  # fmt: skip
    """Median seconds of one training step (forward, backward, AdamW update) on one batch of `texts`.

    Runs on a copy of the model, so the model itself is untouched; the first (warm-up) step is not counted.
    bf16: autocast to bfloat16 (True), plain float32 (False) or what config.precision() picks for the model's device
    (None). fixed_padding=True pads every text to max_length (what you pay without dynamic padding).
    """
    import copy

    work = copy.deepcopy(model).train()
    params = [p for p in work.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters: nothing to time")
    opt = torch.optim.AdamW(params, lr=1e-5)
    padding = "max_length" if fixed_padding else True
    device = next(work.parameters()).device
    enc = tokenizer(list(texts), truncation=True, max_length=max_length, padding=padding, return_tensors="pt").to(
        device
    )
    labels = torch.zeros(len(texts), dtype=torch.long, device=device)  # [B]
    dtype = config.precision(device).dtype if bf16 is None else (torch.bfloat16 if bf16 else None)
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            loss = work(**enc, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - start)
    return float(np.median(times[1:]))


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _measure(method: str, r: int, batch_size: int, seq_len: int, steps: int, bf16: bool) -> dict:
    """Inside the fresh process: build the model, reset the RSS high-water mark, run `steps` AdamW steps."""
    torch.manual_seed(0)
    _, model = build(method, r)
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    ids = torch.randint(1000, 20000, (batch_size, seq_len))  # [B,T] synthetic tokens: same shape for every method
    labels = torch.randint(0, 2, (batch_size,))  # [B]
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS (Linux)
    before = _status_kb("VmRSS")
    start = time.perf_counter()
    for _ in range(steps):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return {"method": method, "r": r, "loaded_mb": before / 1024, "peak_mb": _status_kb("VmHWM") / 1024,
            "seconds_per_step": (time.perf_counter() - start) / steps}  # fmt: skip


def peak_memory(method: str, r: int = 8, batch_size: int = 16, seq_len: int = 64, steps: int = 3,
                bf16: bool | None = None) -> dict:  # fmt: skip
    """Peak resident memory (MB) of `steps` training steps in a fresh Python process (Linux only).

    bf16: autocast the steps to bfloat16 (True), plain float32 (False), or what config.precision("cpu") picks (None).

    Returns {"loaded_mb": RSS with the model built, "peak_mb": highest RSS during training, "train_mb": the
    difference, i.e. gradients + optimizer state + activations, ...}. Batches are synthetic [batch_size, seq_len].
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {list(METHODS)}")
    if not Path("/proc/self/clear_refs").exists():
        raise RuntimeError(
            "peak_memory reads /proc (Linux); on this system use a GPU's torch.cuda.max_memory_allocated"
        )
    if bf16 is None:
        from tlcourse.config import precision

        bf16 = precision("cpu").dtype is torch.bfloat16
    cmd = [sys.executable, "-m", "tlcourse.costs", method, str(r), str(batch_size), str(seq_len), str(steps),
           str(int(bf16))]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"the memory probe failed: {out.stderr.strip().splitlines()[-1:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["train_mb"] = result["peak_mb"] - result["loaded_mb"]
    return result


if __name__ == "__main__":  # the fresh process behind peak_memory()
    import os
    import warnings

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    warnings.filterwarnings("ignore")
    m, rank, b, t, s, bf = sys.argv[1:7]
    print(json.dumps(_measure(m, int(rank), int(b), int(t), int(s), bool(int(bf)))))
