"""The peft side of lesson 05 and its measurements: build each adaptation method, time steps, size files, peak memory.

    tok, model = build("peft", r=8)          # MiniLM + peft LoRA on query/value, classifier head trained and saved
    size = checkpoint_bytes(model, "peft", folder)
    mem = peak_memory("peft", r=8)           # a fresh process: peak RSS of a few training steps

Peak memory on a CPU: Python's tracemalloc does not see torch's allocations, and torch keeps no CPU peak counter,
so `peak_memory` runs a few training steps in a fresh Python process and reads the kernel's resident-set
high-water mark (VmHWM) before and after them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

from tlcourse import lora

METHODS = ("head", "full", "hand", "peft")  # head only, full fine-tuning, hand-written LoRA, peft LoRA
TARGETS = ("query", "value")  # the original LoRA paper's choice for attention


def lora_config(r: int = 8, alpha: float | None = None, dropout: float = 0.1, targets=TARGETS):
    """peft LoraConfig for sequence classification: LoRA on `targets`, the new classifier head trained and saved."""
    from peft import LoraConfig, TaskType

    return LoraConfig(task_type=TaskType.SEQ_CLS, r=r, lora_alpha=2 * r if alpha is None else alpha,
                      lora_dropout=dropout, target_modules=list(targets), modules_to_save=["classifier"])  # fmt: skip


def adapt(model: nn.Module, method: str, r: int = 8, targets=TARGETS, dropout: float = 0.1) -> nn.Module:
    """Prepare a sequence classifier (with a `classifier` head) for one method; returns the model to train.

    "head": freeze everything but the head; "full": train everything; "hand": tlcourse.lora on `targets`;
    "peft": a peft PeftModel. LoRA uses alpha = 2r, so the update's scale alpha/r is the same at every rank.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {list(METHODS)}")
    if method == "head":
        model.requires_grad_(False)
        model.classifier.requires_grad_(True)
    elif method == "full":
        model.requires_grad_(True)
    elif method == "hand":
        torch.manual_seed(r)  # the A matrices' random init
        lora.add_lora(model, targets=targets, r=r, alpha=2 * r, dropout=dropout, trainable=["classifier"])
    else:
        from peft import get_peft_model

        torch.manual_seed(r)
        model = get_peft_model(model, lora_config(r, dropout=dropout, targets=targets))
    return model


def build(method: str, r: int = 8, rec=None, targets=TARGETS, dropout: float = 0.1):
    """(tokenizer, model): MiniLM with the same seeded new head (text_models.new_classifier), adapted for `method`."""
    from tlcourse.text_models import new_classifier

    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {list(METHODS)}")
    tok, model = new_classifier(rec)
    return tok, adapt(model, method, r, targets, dropout)


def base_parameters(model: nn.Module) -> int:
    """Parameters of the underlying MiniLM classifier, without LoRA matrices or peft's copy of the head."""
    return sum(p.numel() for n, p in model.named_parameters() if "lora_" not in n and "modules_to_save" not in n)


def dir_bytes(path: str | Path) -> int:
    """Total size in bytes of the files under `path` (or of one file)."""
    path = Path(path)
    return path.stat().st_size if path.is_file() else sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def checkpoint_bytes(model: nn.Module, method: str, folder: str | Path) -> int:
    """Save what a task needs on top of the shared base into `folder` (replaced) and return its size in bytes.

    full: the whole model (save_pretrained); peft: the adapter (save_pretrained of a PeftModel);
    head / hand: the trainable tensors only, as one safetensors file.
    """
    from safetensors.torch import save_file

    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {list(METHODS)}")
    folder = Path(folder)
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if method in ("full", "peft"):
        model.save_pretrained(tmp, safe_serialization=True)
    else:
        save_file(lora.lora_state_dict(model), str(tmp / "trainable.safetensors"))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return dir_bytes(folder)


def step_timer():
    """A TrainerCallback recording the wall time of every optimizer step in `.times` (seconds)."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.times: list[float] = []
            self._start = 0.0

        def on_step_begin(self, args, state, control, **kwargs):
            self._start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.times.append(time.perf_counter() - self._start)

    return StepTimer()


def train_and_measure(method: str, r: int, tok, train, val, test, rec, folder: str | Path, lr: float | None = None,
                      progress: bool = True) -> tuple[nn.Module, dict]:  # fmt: skip
    """Build, train (text_models.make_trainer) and measure one method; return (model, one row of the results table).

    The row: method, r, trainable and base parameters, test accuracy, median step seconds, train seconds and the
    checkpoint bytes written to `folder`. `train`, `val`, `test` are tokenized Datasets; `rec` a text_models.Recipe
    (`lr` overrides its learning rate).
    """
    from dataclasses import replace

    import numpy as np

    from tlcourse.text_models import make_trainer

    rec = rec if lr is None else replace(rec, lr=lr)
    _, model = build(method, r, rec)
    trainer = make_trainer(model, tok, train, val, rec, progress=progress)
    timer = step_timer()
    trainer.add_callback(timer)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    model = trainer.model.eval()
    test_acc = float(trainer.predict(test).metrics["test_accuracy"])
    shutil.rmtree(trainer.args.output_dir, ignore_errors=True)  # the Trainer's temp checkpoints
    trainable, _ = lora.count_parameters(model)
    row = {"method": method, "r": r if method in ("hand", "peft") else 0, "trainable": trainable,
           "base": base_parameters(model), "test_acc": test_acc, "step_s": float(np.median(timer.times[1:] or timer.times)),
           "train_s": seconds, "ckpt_bytes": checkpoint_bytes(model, method, folder)}  # fmt: skip
    return model, row


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
                bf16: bool = True) -> dict:  # fmt: skip
    """Peak resident memory (MB) of `steps` training steps in a fresh Python process (Linux only).

    Returns {"loaded_mb": RSS with the model built, "peak_mb": highest RSS during training, "train_mb": the
    difference, i.e. gradients + optimizer state + activations, ...}. Batches are synthetic [batch_size, seq_len].
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {list(METHODS)}")
    if not Path("/proc/self/clear_refs").exists():
        raise RuntimeError(
            "peak_memory reads /proc (Linux); on this system use a GPU's torch.cuda.max_memory_allocated"
        )
    cmd = [sys.executable, "-m", "tlcourse.peft_tools", method, str(r), str(batch_size), str(seq_len), str(steps),
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
