"""One plain training loop that every lesson reuses: fit() returns a history dict, evaluate() a metrics dict."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import torch
from torch import nn
from torch.utils.data import DataLoader

from tlcourse import config


def _to(batch, device: torch.device):
    """A loader's (x, y) batch on `device`; any other batch shape is refused in one line."""
    if not isinstance(batch, list | tuple) or len(batch) != 2:
        got = f"a batch of {len(batch)} items" if isinstance(batch, list | tuple) else f"a {type(batch).__name__}"
        raise ValueError(f"expected batches (x, y) of inputs and labels, got {got}; make the dataset return "
                         "(input, label), e.g. data.tensor_dataset(x, y)")  # fmt: skip
    return [t.to(device) if torch.is_tensor(t) else t for t in batch]


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts; tensors shared between modules are counted once."""
    seen: dict[int, nn.Parameter] = {id(p): p for p in model.parameters()}
    total = sum(p.numel() for p in seen.values())
    return sum(p.numel() for p in seen.values() if p.requires_grad), total


def _model_device(model: nn.Module) -> torch.device:
    """The device a model's parameters live on (cpu for a model without parameters)."""
    return next(model.parameters(), torch.empty(0)).device


@torch.no_grad()
def reestimate_batchnorm(model: nn.Module, batches: Iterable, layers: Iterable[nn.Module] | None = None) -> nn.Module:
    """Replace every BatchNorm layer's running mean/var by the statistics of the inputs in `batches` (AdaBN).

    `batches` yields input tensors, or (x, y) batches whose labels are ignored — no labels are needed. A cumulative
    average over the batches (momentum=None), with no gradients and no weight change; the model is left in eval mode.
    `layers` limits it to some BatchNorm layers (default: all); forward hooks that force eval mode must be off.
    """
    bns = [m for m in (model.modules() if layers is None else layers) if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        raise ValueError("the model has no BatchNorm layers to re-estimate")
    momenta = [m.momentum for m in bns]
    device = _model_device(model)
    model.eval()
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch counts the same
        m.train()
    seen = 0
    try:
        for batch in batches:
            x = batch[0] if isinstance(batch, list | tuple) else batch
            model(x.to(device))
            seen += 1
    finally:
        for m, momentum in zip(bns, momenta, strict=True):
            m.momentum = momentum
        model.eval()
    if not seen:
        raise ValueError("no batches given: pass the (target) inputs whose statistics the BatchNorm layers should use")
    return model


@torch.no_grad()
def predict(
    model: nn.Module, loader: Iterable, device: torch.device | str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits [N,C], labels [N]) for every batch (x, y) of `loader`, in eval mode, on the model's device by default."""
    device = _model_device(model) if device is None else torch.device(device)
    model.eval()
    logits, labels = [], []
    for batch in loader:
        x, y = _to(batch, device)
        logits.append(model(x).float().cpu())  # [B,C]
        labels.append(y.cpu())
    if not logits:
        raise ValueError("the loader is empty: nothing to predict")
    return torch.cat(logits), torch.cat(labels)


def evaluate(model: nn.Module, loader: Iterable, device: torch.device | str | None = None,
             loss_fn: Callable = nn.functional.cross_entropy) -> dict[str, float]:  # fmt: skip
    """Mean loss and accuracy of a classifier over a loader of (x, y) batches."""
    logits, labels = predict(model, loader, device)
    return {"loss": float(loss_fn(logits, labels)), "acc": float((logits.argmax(1) == labels).float().mean())}


def fit(
    model: nn.Module,
    train_loader: DataLoader,
    val_loader: DataLoader | None = None,
    *,
    epochs: int = 1,
    optimizer: torch.optim.Optimizer | None = None,
    lr: float = 1e-3,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    loss_fn: Callable = nn.functional.cross_entropy,
    device: torch.device | str | None = None,
    max_steps_per_epoch: int | None = None,
    on_epoch_end: Callable[[int, nn.Module], None] | None = None,
    progress: bool = True,
    desc: str = "train",
) -> dict[str, list[float]]:
    """Train a classifier; return {"train_loss", "train_acc", "val_loss", "val_acc", "seconds"}, one entry per epoch.

    device defaults to `config.get_device()` (a GPU when there is one, as in Colab); optimizer defaults to AdamW(lr)
    over parameters with requires_grad; the scheduler (if any) steps once per batch.
    """
    from tqdm.auto import tqdm

    device = config.get_device() if device is None else torch.device(device)
    model.to(device)
    if optimizer is None:
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise ValueError("the model has no trainable parameters: unfreeze something or pass an optimizer")
        optimizer = torch.optim.AdamW(params, lr=lr)
    history: dict[str, list[float]] = {k: [] for k in ("train_loss", "train_acc", "val_loss", "val_acc", "seconds")}
    steps = len(train_loader) if max_steps_per_epoch is None else min(len(train_loader), max_steps_per_epoch)
    if steps == 0:
        raise ValueError("the training loader is empty (or max_steps_per_epoch is 0): nothing to train on")
    for epoch in range(epochs):
        model.train()
        start, total, correct, loss_sum = time.perf_counter(), 0, 0, 0.0
        bar = tqdm(total=steps, desc=f"{desc} {epoch + 1}/{epochs}", leave=False, disable=not progress)
        for step, batch in enumerate(train_loader):
            if step >= steps:
                break
            x, y = _to(batch, device)
            logits = model(x)  # [B,C]
            if (
                step == 0
                and y.dtype == torch.long
                and y.numel()
                and not 0 <= int(y.min()) <= int(y.max()) < logits.shape[1]
            ):
                raise ValueError(f"labels {sorted(set(y.tolist()))[:8]} in the first batch, but the model has "
                                 f"{logits.shape[1]} classes (0–{logits.shape[1] - 1}): map the labels to 0..C−1 "
                                 "or give the model's head more outputs")  # fmt: skip
            loss = loss_fn(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            total += len(y)
            correct += int((logits.argmax(1) == y).sum())
            loss_sum += loss.item() * len(y)
            bar.update(1)
            bar.set_postfix(loss=f"{loss_sum / total:.3f}")
        bar.close()
        history["seconds"].append(time.perf_counter() - start)
        history["train_loss"].append(loss_sum / max(total, 1))
        history["train_acc"].append(correct / max(total, 1))
        if val_loader is not None:
            metrics = evaluate(model, val_loader, device, loss_fn)
            history["val_loss"].append(metrics["loss"])
            history["val_acc"].append(metrics["acc"])
        if on_epoch_end is not None:
            on_epoch_end(epoch, model)
    return history
