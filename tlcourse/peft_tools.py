"""The peft side of lesson 05 and its measurements: build each adaptation method, time steps, size files, peak memory.

    tok, model = build("peft", r=8)          # MiniLM + peft LoRA on query/value, classifier head trained and saved
    size = checkpoint_bytes(model, "peft", folder)
    model, row = train_and_measure("peft", 8, tok, train, val, test, rec, folder)   # row["test_prob"]: [N,2]
    model, row = fit(model, "peft", tok, train, val, test, rec, folder,
                     weights=class_weights(train["label"]), select="balanced_accuracy")   # skewed classes

Peak memory and step time per method: `tlcourse.costs`.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch import nn

from tlcourse import distributed, lora
from tlcourse.files import atomic_folder
from tlcourse.train import count_parameters

METHODS = ("head", "full", "hand", "peft")  # head only, full fine-tuning, hand-written LoRA, peft LoRA
TARGETS = ("query", "value")  # the original LoRA paper's choice for attention


def lora_config(r: int = 8, alpha: float | None = None, dropout: float = 0.1, targets=TARGETS):
    """peft LoraConfig for sequence classification: LoRA on `targets`, the new classifier head trained and saved."""
    from peft import LoraConfig, TaskType

    return LoraConfig(task_type=TaskType.SEQ_CLS, r=r, lora_alpha=2 * r if alpha is None else alpha,
                      lora_dropout=dropout, target_modules=list(targets), modules_to_save=["classifier"])  # fmt: skip


def adapt(model: nn.Module, method: str, r: int = 8, targets=TARGETS, dropout: float = 0.1, seed: int = 0) -> nn.Module:
    """Prepare a sequence classifier (with a `classifier` head) for one method; returns the model to train.

    "head": freeze everything but the head; "full": train everything; "hand": tlcourse.lora on `targets`;
    "peft": a peft PeftModel. LoRA uses alpha = 2r: the update B A is scaled by alpha / r = 2 at every rank. That is a
    convention, not a neutral choice: with a fixed scale (and Adam's scale-free steps) a higher rank's update can grow
    faster per step, so a rank sweep at alpha = 2r also changes the adapter's effective step size.
    A starts random (seeded by r and `seed`) and B at zero: the model starts exactly at the base, and B still gets a
    gradient at the first step (with A zero too, neither A nor B would ever get one).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {list(METHODS)}")
    if method == "head":
        model.requires_grad_(False)
        model.classifier.requires_grad_(True)
    elif method == "full":
        model.requires_grad_(True)
    elif method == "hand":
        torch.manual_seed(r + 1000 * seed)  # the A matrices' random init
        lora.add_lora(model, targets=targets, r=r, alpha=2 * r, dropout=dropout, trainable=["classifier"])
    else:
        from peft import get_peft_model

        torch.manual_seed(r + 1000 * seed)
        model = get_peft_model(model, lora_config(r, dropout=dropout, targets=targets))
    return model


def build(method: str, r: int = 8, rec=None, targets=TARGETS, dropout: float = 0.1):
    """(tokenizer, model): MiniLM with a new head seeded by `rec.seed` (text_models.new_classifier), adapted for
    `method`; the LoRA A matrices are seeded by r and `rec.seed` too."""
    from tlcourse.text_models import new_classifier

    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {list(METHODS)}")
    tok, model = new_classifier(rec)
    return tok, adapt(model, method, r, targets, dropout, seed=rec.seed if rec is not None else 0)


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
    with atomic_folder(folder) as tmp:
        if method in ("full", "peft"):
            model.save_pretrained(tmp, safe_serialization=True)
        else:
            save_file(lora.lora_state_dict(model), str(tmp / "trainable.safetensors"))
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


def epoch_seeder(seed: int):
    """A TrainerCallback that reseeds torch at the start of every epoch (seed * 1000 + epoch).

    The Trainer's length-grouped sampler draws each epoch's order from torch's global generator, which dropout also
    draws from; reseeded, epoch e's order depends only on (seed, e), so every method run with the same seed sees
    the same batches in the same order."""
    from transformers import TrainerCallback

    class EpochSeeder(TrainerCallback):
        def __init__(self):
            self.epoch = 0

        def on_epoch_begin(self, args, state, control, **kwargs):
            torch.manual_seed(seed * 1000 + self.epoch)
            self.epoch += 1

    return EpochSeeder()


def class_weights(labels) -> torch.Tensor:
    """Balanced class weights n / (classes * count_c) [C]: each class carries the same total weight in the loss."""
    y = torch.as_tensor(list(labels))
    counts = torch.bincount(y).float()
    if (counts == 0).any():
        raise ValueError(f"every class needs at least one example; counts {counts.tolist()}")
    return len(y) / (len(counts) * counts)


def weighted_loss(weights):
    """A Trainer `compute_loss_func`: cross-entropy with per-class `weights` [C] (a weighted mean over the batch)."""
    import torch.nn.functional as F

    w = torch.as_tensor(weights, dtype=torch.float32)

    def loss(outputs, labels, num_items_in_batch=None):
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]  # [B,C]
        return F.cross_entropy(logits.float(), labels, weight=w.to(logits.device))

    return loss


def binary_metrics(eval_pred) -> dict[str, float]:
    """Trainer hook: accuracy, F1 and balanced accuracy (the mean of the two classes' recalls) of (logits, labels)."""
    import numpy as np
    from sklearn.metrics import balanced_accuracy_score

    from tlcourse.text_models import compute_metrics

    logits, labels = eval_pred[0], eval_pred[1]
    pred = np.asarray(logits).argmax(-1)
    return {**compute_metrics(eval_pred), "balanced_accuracy": float(balanced_accuracy_score(labels, pred))}


def fit(model: nn.Module, method: str, tok, train, val, test, rec, folder: str | Path, progress: bool = True,
        weights=None, select: str = "accuracy") -> tuple[nn.Module, dict]:  # fmt: skip
    """Train an already built model with text_models.make_trainer and measure it; return (model, results row).

    weights: per-class loss weights [C] (None = plain cross-entropy); select: the validation metric that picks the
    kept epoch ("accuracy" or "balanced_accuracy"). Every epoch starts from a reseeded generator (`epoch_seeder`).
    The row: method, r, trainable and base parameters, test accuracy, test probabilities [N,2] in `test`'s order
    (for paired comparisons), the validation `select` metric per epoch and the kept epoch, median step seconds,
    train seconds and the checkpoint bytes written to `folder`.
    """
    import numpy as np

    from tlcourse.text_models import make_trainer, trained_model

    trainer = make_trainer(model, tok, train, val, rec, progress=progress)
    if weights is not None:
        trainer.compute_loss_func = weighted_loss(weights)
    if select != "accuracy":
        trainer.compute_metrics = binary_metrics
        trainer.args.metric_for_best_model, trainer.args.greater_is_better = select, True
    timer = step_timer()
    trainer.add_callback(timer)
    trainer.add_callback(epoch_seeder(rec.seed))
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    model = trained_model(trainer)  # float32 again: no autocast wrapper left on forward()
    # with group_by_length the Trainer also shuffles evaluation batches; sequential keeps predictions in test's order
    trainer.args.train_sampling_strategy = "sequential"
    out = trainer.predict(test)
    if not np.array_equal(out.label_ids, np.asarray(test["label"])):
        raise RuntimeError("the test predictions came back in another order than the test set")
    test_prob = torch.from_numpy(np.asarray(out.predictions)).float().softmax(-1).numpy()  # [N,2]
    distributed.remove_shared(trainer.args.output_dir)  # the Trainer's temp checkpoints
    history = [h[f"eval_{select}"] for h in trainer.state.log_history if f"eval_{select}" in h]
    trainable, _ = count_parameters(model)
    row = {"method": method, "r": None, "trainable": trainable, "base": base_parameters(model),
           "test_acc": float(out.metrics["test_accuracy"]), "test_prob": test_prob, "val_history": history,
           "best_epoch": int(np.argmax(history)) + 1 if history else None,
           "step_s": float(np.median(timer.times[1:] or timer.times)), "train_s": seconds,
           "ckpt_bytes": checkpoint_bytes(model, method, folder) if distributed.is_main_process() else None}  # fmt: skip
    return model, row


def train_and_measure(method: str, r: int, tok, train, val, test, rec, folder: str | Path, lr: float | None = None,
                      progress: bool = True) -> tuple[nn.Module, dict]:  # fmt: skip
    """Build (seeded by `rec.seed`), train and measure one method; return (model, one row of the results table).

    `train`, `val`, `test` are tokenized Datasets; `rec` a text_models.Recipe (`lr` overrides its learning rate).
    The row is `fit`'s, plus the seed.
    """
    from dataclasses import replace

    rec = rec if lr is None else replace(rec, lr=lr)
    _, model = build(method, r, rec)
    model, row = fit(model, method, tok, train, val, test, rec, folder, progress=progress)
    row.update(r=r if method in ("hand", "peft") else 0, seed=rec.seed)
    return model, row
