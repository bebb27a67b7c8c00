"""The accelerate glue the course's training loops share: one Accelerator per training call, one process or many.

    acc = distributed.accelerator()             # fresh per fit(); the same settings in a notebook and under a launcher
    model, optimizer = acc.prepare(model, optimizer)
    loader = distributed.prepare_loader(acc, loader)        # one process: the loader itself, untouched
    logits, labels = distributed.predict(acc, model, loader, device)   # every process scores its share, all get all

In a notebook there is one process and nothing changes: the model is not wrapped, the loaders are used as they are,
the optimizer and scheduler wrappers step exactly once per batch, and every number is what the plain loop gave.
Under `accelerate launch` or `torchrun` (several processes, gloo on CPUs, NCCL on GPUs) the loader's batch is the
GLOBAL batch, each process training on an equal slice of it (`split_batches`), and process 0 alone iterates the
loader (the same order and augmentation as one process) and broadcasts each global batch, of which every process
keeps its slice (`dispatch_batches`); DDP averages the gradients during the backward pass, so a step is the
one-process step up to float rounding. `record_draws` shows it: the optimizer steps each process took and one hash of
every step's images and labels. The Trainer paths (text_models, peft_tools) use accelerate through transformers; they
only need `shared_tempdir` so every process reads the checkpoint the main process wrote.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch
from torch import nn


def cpu_launch() -> bool:
    """True in a process of a multi-process launch on a machine without CUDA: accelerate then needs cpu=True to pick
    gloo (without it, `torchrun --nproc_per_node 2` on CPUs would start 2 unrelated single-process runs)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()


def _state():
    from accelerate.state import PartialState

    return PartialState(cpu=cpu_launch())


def num_processes() -> int:
    """How many processes this run has: 1 in a notebook or plain `python`, N under `accelerate launch`/`torchrun`."""
    return _state().num_processes


def is_main_process() -> bool:
    """True on the one process that prints, saves and records results (rank 0; the only one in a notebook)."""
    return _state().is_main_process


def process_device() -> torch.device:
    """The device the launcher gave this process (cuda:<local rank> on GPUs, cpu with gloo)."""
    return _state().device


def accelerator(mixed_precision: str | None = None):
    """A fresh `accelerate.Accelerator` for one training call.

    The loader's batch is the global batch, each process gets an equal slice of it (`split_batches`; accelerate's
    default, False, gives every process a whole batch: N times the global batch, N times fewer steps per epoch), and
    process 0 alone iterates the loader and broadcasts each batch, every process keeping its slice
    (`dispatch_batches`); tensors are placed by the loops themselves (`device_placement=False`, so `fit(device=...)`
    keeps working). mixed_precision: "no" (float32, what the lessons train with), "bf16" or "fp16"; None takes the
    launcher's choice (`accelerate launch --mixed_precision bf16`), else "no".
    """
    from accelerate import Accelerator, DataLoaderConfiguration
    from accelerate.state import AcceleratorState

    mp = mixed_precision or os.environ.get("ACCELERATE_MIXED_PRECISION", "no")
    left = AcceleratorState._shared_state.get("_mixed_precision")
    if left is not None and left != mp and num_processes() == 1:
        # a Trainer earlier in this process (a notebook) left its bf16 state behind; one process has nothing to keep
        AcceleratorState._reset_state()
    loaders = DataLoaderConfiguration(split_batches=True, dispatch_batches=True)
    return Accelerator(mixed_precision=mp, device_placement=False, dataloader_config=loaders, cpu=cpu_launch())


def training_device(acc, device: torch.device | str | None) -> torch.device:
    """Where to train: one process: `device`, else config.get_device(); several: the launcher's device for this rank."""
    from tlcourse import config

    if acc.num_processes == 1:
        return config.get_device() if device is None else torch.device(device)
    if device is not None and torch.device(device).type != acc.device.type:
        raise ValueError(f"device={str(device)!r}, but the launcher gave this process {acc.device}: leave device=None "
                         "under accelerate launch / torchrun (add --cpu to train on CPUs)")  # fmt: skip
    return acc.device


def prepare_loader(acc, loader: Iterable, max_batches: int | None = None) -> Iterable:
    """The loader for this process: one process: the loader itself (accelerate's copy reads a batch ahead, which would
    move the random draws of later epochs); several: accelerate's dispatcher, each process an equal slice of each batch.

    `max_batches` (several processes): the batches process 0 may draw per epoch. A loop that stops early (fit's
    max_steps_per_epoch) has drawn, on one process, the batch it stopped at; the dispatcher would read further
    ahead, and each batch drawn moves the augmentation's generator, so later epochs would train on other images.
    """
    from torch.utils.data import DataLoader

    if acc.num_processes == 1:
        return loader if _DRAWS is None else _Recorded(loader, _DRAWS)
    batch_size = getattr(loader, "batch_size", None)
    if batch_size is not None and batch_size % acc.num_processes:
        raise ValueError(f"a batch of {batch_size} does not split evenly over {acc.num_processes} processes: choose a "
                         f"batch size that is a multiple of {acc.num_processes} (it is the global batch)")  # fmt: skip
    if isinstance(loader, DataLoader):  # the same batches in the same order, tensors in the default memory layout
        loader = DataLoader(loader.dataset, batch_sampler=_SameDraws(loader.batch_sampler, loader.generator, max_batches),
                            collate_fn=_standard(loader.collate_fn), num_workers=loader.num_workers)  # fmt: skip
    # the dispatcher puts this process's slice on its device
    prepared = acc.prepare_data_loader(loader, device_placement=True)
    return prepared if _DRAWS is None else _Recorded(prepared, _DRAWS)


class Draws:
    """What one training call drew on this process (see `record_draws`): `steps`, the optimizer steps taken, and per
    step one short digest per training example of this process's slice (its input tensor's bytes and its label)."""

    def __init__(self):
        self.steps, self.batches, self._pending = 0, [], None

    def note(self, batch) -> None:
        """Note a batch a training loop was given: one digest per example, kept if an optimizer step follows."""
        parts = list(batch.values()) if isinstance(batch, dict) else list(batch) if isinstance(batch, list | tuple) \
            else [batch]  # fmt: skip
        parts = [t.detach().cpu().contiguous() for t in parts if torch.is_tensor(t) and t.ndim > 0]
        self._pending = [hashlib.blake2b(b"".join(t[i].numpy().tobytes() for t in parts), digest_size=8).hexdigest()
                         for i in range(len(parts[0]))] if parts else None  # fmt: skip

    def _stepped(self) -> None:  # an optimizer step: the batch it trained on is the last one yielded
        self.steps += 1
        if self._pending is not None:
            self.batches.append(self._pending)
            self._pending = None

    def all_steps(self) -> list[int]:
        """The optimizer steps of every process (one entry per process; collective: call it on every process)."""
        from accelerate.utils import gather_object

        return gather_object([self.steps]) if num_processes() > 1 else [self.steps]

    def digest(self) -> str:
        """One 12-hex-digit hash of every step's training examples in order, the processes' slices of each step put
        back together in rank order: equal on 1 and N processes when process 0 drew the same images, order,
        augmentation and labels as one process (collective: call it on every process)."""
        from accelerate.utils import gather_object

        mine = self.batches
        per_process = gather_object([mine]) if num_processes() > 1 else [mine]
        if len({len(b) for b in per_process}) != 1:
            raise RuntimeError(f"the processes took different numbers of steps: {[len(b) for b in per_process]}")
        h = hashlib.blake2b(digest_size=6)
        for step in zip(*per_process, strict=True):
            for part in step:  # rank 0's slice, then rank 1's, ...: the global batch
                h.update("".join(part).encode())
        return h.hexdigest()


_DRAWS: Draws | None = None


@contextlib.contextmanager
def record_draws() -> Iterator[Draws]:
    """Within the block, the training loaders that `prepare_loader` hands out (fit's) note what they yield, and every
    optimizer step (any torch optimizer) keeps the batch last yielded, the one it trained on::

        with distributed.record_draws() as draws:
            model, hist, _ = finetune.train_strategy(...)
        draws.all_steps(), draws.digest()      # [64, 64] and one hash, the same for 1 and 2 processes

    Costs one blake2b hash per training example (a few milliseconds per batch of lesson 02's images)."""
    global _DRAWS
    from torch.optim.optimizer import register_optimizer_step_post_hook

    if _DRAWS is not None:
        raise RuntimeError("record_draws is already recording: one block at a time")
    _DRAWS = draws = Draws()
    hook = register_optimizer_step_post_hook(lambda optimizer, args, kwargs: draws._stepped())
    try:
        yield draws
    finally:
        hook.remove()
        _DRAWS = None


class _Recorded:
    """A training loader that tells the recording `Draws` each batch it yields (and is otherwise the loader)."""

    def __init__(self, loader: Iterable, draws: Draws):
        self.loader, self.draws = loader, draws

    def __iter__(self):
        for batch in self.loader:
            self.draws.note(batch)
            yield batch

    def __len__(self) -> int:
        return len(self.loader)


class _SameDraws:
    """A loader's batch sampler, preceded by the one number DataLoader's iterator draws from the loader's generator.

    accelerate's dispatcher drops the loader's generator; without this draw a shuffle sharing that generator (as
    finetune.image_loader's does) would give process 0 another order than one process gets.
    """

    def __init__(self, batch_sampler, generator: torch.Generator | None, limit: int | None = None):
        self.batch_sampler, self.generator, self.batch_size = batch_sampler, generator, batch_sampler.batch_size
        self.limit = limit  # at most this many batches per epoch (None: all)

    def __iter__(self):
        if self.generator is not None:
            torch.empty((), dtype=torch.int64).random_(generator=self.generator)  # DataLoader's base seed
        return iter(self.batch_sampler) if self.limit is None else itertools.islice(self.batch_sampler, self.limit)

    def __len__(self) -> int:
        return len(self.batch_sampler) if self.limit is None else min(self.limit, len(self.batch_sampler))


def _standard(collate):
    """collate, its tensors made contiguous in the default layout: gloo broadcasts raw storage, so a channels_last
    batch would arrive scrambled on the other processes."""

    def wrapped(items):
        batch = collate(items)
        if isinstance(batch, list | tuple):
            return type(batch)(t.contiguous() if torch.is_tensor(t) else t for t in batch)
        return batch.contiguous() if torch.is_tensor(batch) else batch

    return wrapped


def wraps_again(acc, model: nn.Module, wrapped: nn.Module, before: list[bool]) -> nn.Module:
    """`wrapped` again if the trainable parameters are still `before`; else a new DDP wrapper of `model`.

    DDP decides which parameters it averages when it wraps a model: after progressive unfreezing thawed some, a model
    wrapped earlier would leave their gradients un-averaged and the processes would drift apart.
    """
    if acc.num_processes == 1 or [p.requires_grad for p in model.parameters()] == before:
        return wrapped
    return acc.prepare_model(model)


def sync_buffers(acc, model: nn.Module) -> None:
    """Give every process the main process's buffers (BatchNorm running statistics), as DDP does before each forward.

    In train mode each process updates its statistics on its own slice of the batch; after an epoch they differ a
    little, so validation (split over the processes) and the returned model would too. No-op on one process.
    """
    if acc.num_processes == 1:
        return
    for buf in model.buffers():
        torch.distributed.broadcast(buf.data, src=0)


def sum_over_processes(acc, values: list[float], device: torch.device) -> list[float]:
    """Element-wise sum of `values` over the processes (the values themselves on one process)."""
    if acc.num_processes == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)  # [K]
    return acc.reduce(t, reduction="sum").tolist()


@torch.no_grad()
def predict(acc, model: nn.Module, loader: Iterable, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits [N,C], labels [N]) over `loader` in its order, as train.predict gives on one process.

    Several processes: process r scores batches r, r + N, r + 2N, ... and all of them receive every batch's result
    (gather_object), so each process holds the same numbers a single process would compute.
    """
    from accelerate.utils import gather_object

    from tlcourse.train import _to

    model.eval()
    mine = []
    for i, batch in enumerate(loader):
        if i % acc.num_processes == acc.process_index:
            x, y = _to(batch, device)
            mine.append((i, model(x).float().cpu(), y.cpu()))  # [B,C], [B]
    rows = sorted(gather_object(mine) if acc.num_processes > 1 else mine, key=lambda r: r[0])
    if not rows:
        raise ValueError("the loader is empty: nothing to predict")
    return torch.cat([r[1] for r in rows]), torch.cat([r[2] for r in rows])


def channels_last(model: nn.Module) -> bool:
    """True when the model's convolution weights are stored channels_last (then its inputs should be too)."""
    convs = [p for p in model.parameters() if p.ndim == 4 and p.shape[-1] * p.shape[-2] > 1]
    return bool(convs) and convs[0].is_contiguous(memory_format=torch.channels_last) and not convs[0].is_contiguous()


def shared_tempdir(prefix: str = "tlcourse-") -> str:
    """A fresh temporary folder, the same one on every process of this machine (created by the main process).

    The Trainer writes checkpoints from the main process and every process reloads the best one from the same path.
    """
    from accelerate.utils import broadcast_object_list

    if num_processes() == 1:
        return tempfile.mkdtemp(prefix=prefix)
    path = [tempfile.mkdtemp(prefix=prefix) if is_main_process() else None]
    broadcast_object_list(path)
    return path[0]


def remove_shared(path: str | Path) -> None:
    """Delete a `shared_tempdir` once every process is done with it (only the main process deletes)."""
    if num_processes() > 1:
        _state().wait_for_everyone()
    if is_main_process():
        shutil.rmtree(path, ignore_errors=True)


def agree(model: nn.Module) -> list[str]:
    """Every process's sha256 of its weights' bytes (one entry per process): equal entries mean bit-equal weights."""
    import hashlib

    from accelerate.utils import gather_object

    h = hashlib.sha256()
    for p in model.state_dict().values():
        h.update(p.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())  # any dtype
    digest = h.hexdigest()[:16]
    return gather_object([digest]) if num_processes() > 1 else [digest]


def close() -> None:
    """End a multi-process run cleanly: wait for every process, then destroy the process group (no-op on one)."""
    if num_processes() > 1:
        state = _state()
        state.wait_for_everyone()
        state.destroy_process_group()
