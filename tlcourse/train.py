"""One plain training loop that every lesson reuses: fit() returns a history dict, evaluate() a metrics dict."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import torch
from torch import nn
from torch.utils.data import DataLoader


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
    accelerator=None,
) -> dict[str, list[float]]:
    """Train a classifier; return {"train_loss", "train_acc", "val_loss", "val_acc", "seconds"}, one entry per epoch.

    device defaults to `config.get_device()` (a GPU when there is one, as in Colab); optimizer defaults to AdamW(lr)
    over parameters with requires_grad; the scheduler (if any) steps once per batch.

    Runs under accelerate (`accelerator`, default `distributed.accelerator()`): in a notebook (one process) the
    numbers are exactly those of the plain loop; under `accelerate launch` / `torchrun` each batch of `train_loader`
    is the global batch, split over the processes, DDP averages the gradients, the metrics are summed over the
    processes and only the main process shows a progress bar. Every process returns the same history. BatchNorm
    layers in train mode normalise each process's slice with its own statistics (no SyncBatchNorm): such a model
    trains close to, not exactly like, one process; after every epoch all processes take the main one's statistics.
    """
    from tqdm.auto import tqdm

    from tlcourse import distributed

    acc = distributed.accelerator() if accelerator is None else accelerator
    device = distributed.training_device(acc, device)
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
    net, optimizer = acc.prepare(model, optimizer)  # one process: `model` itself; several: a DDP wrapper
    scheduler = None if scheduler is None else acc.prepare(scheduler)  # steps once per batch (split_batches)
    # one process draws the batch it stops at (the loop sees it, then breaks): several draw exactly as many
    loader = distributed.prepare_loader(acc, train_loader, max_batches=steps + 1 if steps < len(train_loader) else None)
    multi, layout = acc.num_processes > 1, distributed.channels_last(model)
    for epoch in range(epochs):
        net.train()
        start, total, correct, loss_sum = time.perf_counter(), 0, 0, 0.0
        bar = tqdm(total=steps, desc=f"{desc} {epoch + 1}/{epochs}", leave=False,
                   disable=not progress or not acc.is_local_main_process)  # fmt: skip
        for step, batch in enumerate(loader):
            if step >= steps:
                break
            x, y = _to(batch, device)
            if multi and layout and x.ndim == 4:  # a dispatched slice arrives in the default layout
                x = x.contiguous(memory_format=torch.channels_last)
            with acc.accumulate(net):
                logits = net(x)  # [B,C]
                if step == 0 and _labels_off(logits, y, acc, device):
                    raise ValueError(f"labels {sorted(set(y.tolist()))[:8]} in the first batch, but the model has "
                                     f"{logits.shape[1]} classes (0–{logits.shape[1] - 1}): map the labels to 0..C−1 "
                                     "or give the model's head more outputs")  # fmt: skip
                loss = loss_fn(logits, y)
                optimizer.zero_grad(set_to_none=True)
                acc.backward(loss)  # loss.backward(); under DDP the gradients are averaged over the processes
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
            total += len(y)
            correct += int((logits.argmax(1) == y).sum())
            loss_sum += loss.item() * len(y)
            bar.update(1)
            bar.set_postfix(loss=f"{loss_sum / total:.3f}")
        bar.close()
        if multi:  # every process's share of the epoch; the main process's BatchNorm statistics for all
            total, correct, loss_sum = distributed.sum_over_processes(acc, [total, correct, loss_sum], device)
            distributed.sync_buffers(acc, model)
        history["seconds"].append(time.perf_counter() - start)
        history["train_loss"].append(loss_sum / max(total, 1))
        history["train_acc"].append(correct / max(total, 1))
        if val_loader is not None:
            if multi:
                logits_v, labels_v = distributed.predict(acc, model, val_loader, device)
                metrics = {"loss": float(loss_fn(logits_v, labels_v)),
                           "acc": float((logits_v.argmax(1) == labels_v).float().mean())}  # fmt: skip
            else:
                metrics = evaluate(model, val_loader, device, loss_fn)
            history["val_loss"].append(metrics["loss"])
            history["val_acc"].append(metrics["acc"])
        if on_epoch_end is not None:
            trainable = [p.requires_grad for p in model.parameters()]
            on_epoch_end(epoch, model)
            net = distributed.wraps_again(acc, model, net, trainable)  # DDP must know newly thawed parameters
    return history


def _labels_off(logits: torch.Tensor, y: torch.Tensor, acc, device: torch.device) -> bool:
    """True when class labels fall outside the model's outputs (on any process: every process raises together)."""
    bad = y.dtype == torch.long and y.numel() and not 0 <= int(y.min()) <= int(y.max()) < logits.shape[1]
    if acc.num_processes > 1:
        from tlcourse import distributed

        bad = distributed.sum_over_processes(acc, [float(bad)], device)[0] > 0
    return bool(bad)
