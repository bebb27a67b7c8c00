"""Lesson experiments as commands: the functions the notebooks call, with the notebooks' Config fields as options.

    python -m tlcourse.run --help                                   # the experiments
    python -m tlcourse.run finetune --strategies full --smoke       # lesson 02, one process
    accelerate launch --num_processes 2 --cpu -m tlcourse.run finetune --strategies full --smoke
    torchrun --nproc_per_node 2 -m tlcourse.run lora --seeds 0      # the same command on 2 processes

The same command runs unchanged in one process and under `accelerate launch` / `torchrun`: `train.fit` splits each
global batch over the processes (finetune's --batch-size is global); the Trainer gives each process its own batch
(sentiment's and lora's --batch-size is per process). Only the main process prints and writes the results file (JSON,
atomically; default results/runs/<experiment>.json, or results/smoke/runs/ in smoke mode; --out elsewhere).
--dry-run checks the options, the assets and the processes, and exits without training.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
import typing
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from tlcourse import config, distributed
from tlcourse.config import pick


def _pick(full, smoke):
    return field(default_factory=lambda: pick(full, smoke))  # read when the config is made: after --smoke


@dataclass
class FinetuneConfig:
    """Lesson 02's Config (fine-tuning strategies for Lite0 on Fashion-MNIST), plus the strategies and a model name."""

    size: int = 64
    small: int = _pick(100, 3)  # labels per class
    epochs: int = _pick(3, 1)
    val_per_class: int = _pick(50, 3)
    test_per_class: int = _pick(200, 3)
    batch_size: int = 32  # the global batch: split over the processes
    augment: bool = True
    seeds: tuple[int, ...] = _pick((0, 1, 2), (0,))
    seed: int = 0
    strategies: tuple[str, ...] = ("head only", "full", "discriminative LRs", "progressive unfreezing", "random init")
    model_name: str = "lite0"  # or a timm EfficientNet by name, online (hub.image_model)
    max_steps_per_epoch: int | None = None

    def __post_init__(self):
        from tlcourse.finetune import RECIPES

        if bad := [s for s in self.strategies if s not in RECIPES]:
            raise ValueError(f"unknown strategy {bad[0]!r}; choose from {list(RECIPES)}")


@dataclass
class SentimentConfig:
    """Lesson 03's Config (MiniLM fine-tuned on Rotten Tomatoes with the Trainer)."""

    max_length: int = 64
    epochs: float = _pick(2.0, 1.0)
    lr: float = 5e-5
    batch_size: int = 16  # per process (the Trainer's per_device_train_batch_size)
    bf16: bool | None = None
    train_size: int | None = _pick(None, 64)
    eval_size: int | None = _pick(None, 64)
    test_size: int | None = _pick(None, 128)
    model_name: str | None = None  # None = the shipped MiniLM; online: e.g. "bert-base-uncased", "roberta-base"
    seed: int = 0


@dataclass
class LoraComparisonConfig:
    """Lesson 05's Config, the headline comparison: full fine-tuning vs peft LoRA r=8, one run per seed."""

    train_size: int = _pick(1500, 64)
    val_size: int = _pick(400, 32)
    test_size: int | None = _pick(None, 64)
    epochs: float = 2.0
    rank: int = 8
    seeds: tuple[int, ...] = _pick((0, 1, 2), (0, 1))
    lr: dict[str, float] = field(default_factory=lambda: {"full": 1e-4, "peft": 3e-3})
    seed: int = 0

    def __post_init__(self):
        if bad := [m for m in self.lr if m not in ("full", "peft")]:
            raise ValueError(f"--lr names the methods full and peft, not {bad[0]!r}")


def finetune_data(cfg: FinetuneConfig) -> dict:
    """Lesson 02's data: per seed a labelled subset of `small`/class, validation from the other training images and
    `test_per_class` test images: {"train": {seed: (x, y)}, "val": (x, y), "test": (x, y)}."""
    from tlcourse import data

    x_train, y_train = data.fashion_mnist("train")
    x_test, y_test = data.fashion_mnist("test")
    labelled = {s: data.per_class_indices(y_train, cfg.small, seed=s) for s in cfg.seeds}
    rest = np.setdiff1d(np.arange(len(y_train)), np.concatenate(list(labelled.values())))
    val_idx = rest[data.per_class_indices(y_train[rest], cfg.val_per_class, seed=cfg.seed)]
    test_idx = data.per_class_indices(y_test, cfg.test_per_class, seed=cfg.seed)
    return {"train": {s: (x_train[i], y_train[i]) for s, i in labelled.items()},
            "val": (x_train[val_idx], y_train[val_idx]), "test": (x_test[test_idx], y_test[test_idx])}  # fmt: skip


def run_finetune(cfg: FinetuneConfig, progress: bool) -> dict:
    """Lesson 02: each strategy on each seed's subset with finetune.train_strategy; test accuracy and throughput.

    Each row also says what the run trained on (distributed.record_draws): "optimizer_steps", one count per process,
    and "draws", one hash of every step's images (augmented) and labels in order, the same on 1 and N processes."""
    from tlcourse import finetune

    d, rows = finetune_data(cfg), []
    for seed in cfg.seeds:
        for name in cfg.strategies:
            with distributed.record_draws() as draws:  # the optimizer steps, and a hash of the examples trained on
                model, hist, _ = finetune.train_strategy(
                    name, d["train"][seed], d["val"], size=cfg.size, epochs=cfg.epochs, batch_size=cfg.batch_size,
                    augment=cfg.augment, seed=seed, test_data=d["test"], max_steps_per_epoch=cfg.max_steps_per_epoch,
                    model_name=cfg.model_name, progress=progress)  # fmt: skip
            n, steps = len(d["train"][seed][1]), cfg.max_steps_per_epoch
            seen = cfg.epochs * (n if steps is None else min(n, steps * cfg.batch_size))
            rows.append({"strategy": name, "seed": seed, "test_acc": hist["test_acc"], "test_loss": hist["test_loss"],
                         "train_loss": hist["train_loss"], "val_acc": hist["val_acc"],
                         "train_seconds": sum(hist["seconds"]), "samples_per_s": seen / sum(hist["seconds"]),
                         "weights": distributed.agree(model), "optimizer_steps": draws.all_steps(),
                         "draws": draws.digest(), "test_pred": hist["test_pred"].tolist()})  # fmt: skip
            _say(f"{name:>22}  seed {seed}  test acc {hist['test_acc']:.3f}  {rows[-1]['samples_per_s']:.1f} samples/s")
    return {"rows": rows}


def run_sentiment(cfg: SentimentConfig, progress: bool) -> dict:
    """Lesson 03: text_models.fine_tune on Rotten Tomatoes, then accuracy on unseen movies."""
    from tlcourse import text_models
    from tlcourse.text_data import rotten_tomatoes

    data = rotten_tomatoes()
    rec = text_models.recipe(max_length=cfg.max_length, epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size,
                             bf16=cfg.bf16, train_size=cfg.train_size, eval_size=cfg.eval_size, seed=cfg.seed,
                             name=cfg.model_name)  # fmt: skip
    tok, trainer = text_models.fine_tune(data, rec, progress=progress)
    test = data["test"] if cfg.test_size is None or cfg.test_size >= len(data["test"]) else \
        data["test"].shuffle(seed=cfg.seed).select(range(cfg.test_size))  # fmt: skip
    probs = text_models.predict_proba(trainer.model, tok, test["text"], max_length=cfg.max_length)  # [N,2]
    acc = float((probs.argmax(1) == np.array(test["label"])).mean())
    seen = trainer.state.global_step * rec.batch_size * distributed.num_processes()
    row = {"test_acc": acc, "best_val_acc": trainer.state.best_metric, "train_seconds": trainer.train_seconds,
           "samples_per_s": seen / trainer.train_seconds, "weights": distributed.agree(trainer.model)}  # fmt: skip
    _say(f"fine-tuned {cfg.model_name or 'MiniLM'}: test acc {acc:.3f} on {len(test)} snippets, "
         f"{row['samples_per_s']:.1f} samples/s")  # fmt: skip
    return {"rows": [row]}


def run_lora(cfg: LoraComparisonConfig, progress: bool) -> dict:
    """Lesson 05: full fine-tuning vs peft LoRA with peft_tools.train_and_measure, seed by seed; a paired verdict."""
    from tlcourse import peft_tools, stats, text_data, text_models

    rec = text_models.recipe(train_size=cfg.train_size, eval_size=cfg.val_size, epochs=cfg.epochs, seed=cfg.seed)
    tok, _ = text_models.new_classifier(rec)
    rt, keep = text_data.rotten_tomatoes(seed=cfg.seed), ["input_ids", "attention_mask", "token_type_ids", "label"]

    def prepare(ds, n, by_length=False):  # lesson 05's: a seeded subset, tokenized, model columns (sorted by length)
        ds = ds if n is None or n >= len(ds) else ds.shuffle(seed=cfg.seed).select(range(n))
        ds = text_models.tokenize(ds, tok, rec.max_length)
        ds = ds.remove_columns([c for c in ds.column_names if c not in keep])
        return ds.select(np.argsort([len(i) for i in ds["input_ids"]], kind="stable")) if by_length else ds

    train, val, test = prepare(rt["train"], cfg.train_size), prepare(rt["validation"], cfg.val_size, True), \
        prepare(rt["test"], cfg.test_size, True)  # fmt: skip
    rows, folder = [], Path(distributed.shared_tempdir("tlcourse-run-lora-"))
    for seed in cfg.seeds:
        for method, r in [("full", 0), ("peft", cfg.rank)]:
            _, row = peft_tools.train_and_measure(method, r, tok, train, val, test, replace(rec, seed=seed),
                                                  folder / f"{method}-{seed}", lr=cfg.lr[method], progress=progress)  # fmt: skip
            row["test_pred"] = row.pop("test_prob").argmax(1).tolist()
            row.pop("val_history")
            rows.append(row)
            _say(f"{method:>4} r={r:<2} seed {seed}  test acc {row['test_acc']:.3f}  {row['step_s']:.2f} s/step")
    distributed.remove_shared(folder)
    preds = {m: [row["test_pred"] for row in rows if row["method"] == m] for m in ("full", "peft")}
    gap = stats.paired_compare(np.array(test["label"]), preds["full"], preds["peft"], a="full fine-tuning",
                               b=f"peft LoRA r={cfg.rank}")  # fmt: skip
    _say(str(gap))
    return {"rows": rows, "verdict": str(gap), "gap_points": 100 * gap.diff}


EXPERIMENTS = {
    "finetune": (FinetuneConfig, run_finetune, "lesson 02: fine-tuning strategies, Lite0 on Fashion-MNIST (train.fit)",
                 ("fashion_mnist", "efficientnet_lite0")),
    "sentiment": (SentimentConfig, run_sentiment, "lesson 03: MiniLM fine-tuned on Rotten Tomatoes (HF Trainer)",
                  ("minilm", "rotten_tomatoes")),
    "lora": (LoraComparisonConfig, run_lora, "lesson 05: full fine-tuning vs peft LoRA, over seeds (HF Trainer)",
             ("minilm", "rotten_tomatoes")),
}  # fmt: skip


def _say(text: str) -> None:
    if distributed.is_main_process():
        print(text, flush=True)


def _option(parser: argparse.ArgumentParser, f: dataclasses.Field, hint, default) -> None:
    """One --option for one Config field, typed from its annotation; its default stays the Config's (None here)."""
    flag, args, said = "--" + f.name.replace("_", "-"), typing.get_args(hint), {"help": f"full mode: {default!r}"}
    base = next((a for a in args if a is not type(None)), hint) if type(None) in args else hint
    if base is bool:
        parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, **said)
    elif typing.get_origin(base) is tuple:
        item = typing.get_args(base)[0]
        parser.add_argument(
            flag, dest=f.name, nargs="+", type=item, default=None, metavar=item.__name__.upper(), **said
        )
    elif typing.get_origin(base) is dict:
        parser.add_argument(flag, dest=f.name, nargs="+", default=None, metavar="METHOD=LR",
                            type=lambda s: (s.split("=")[0], float(s.split("=")[1])), **said)  # fmt: skip
    else:
        kind = (lambda s: None if s.lower() == "none" else base(s)) if type(None) in args else base
        parser.add_argument(flag, dest=f.name, type=kind, default=None, metavar=base.__name__.upper(), **said)


def parser() -> argparse.ArgumentParser:
    """The command line: one sub-command per experiment, one option per Config field."""
    top = argparse.ArgumentParser(prog="python -m tlcourse.run", description=__doc__.split("\n\n")[0],
                                  formatter_class=argparse.RawDescriptionHelpFormatter,
                                  epilog="several processes: accelerate launch --num_processes N [--cpu] -m tlcourse.run "
                                         "EXPERIMENT ...  or  torchrun --nproc_per_node N -m tlcourse.run EXPERIMENT ...")  # fmt: skip
    sub = top.add_subparsers(dest="experiment", required=True, metavar="EXPERIMENT")
    for name, (cls, _, help_, _) in EXPERIMENTS.items():
        p = sub.add_parser(name, help=help_, description=f"{help_}. Defaults are the notebook's (full or smoke mode).")
        p.add_argument("--smoke", action="store_true", help="smoke mode (TLCOURSE_SMOKE=1): tiny subsets, one epoch")
        p.add_argument("--dry-run", action="store_true", help="check the options, assets and processes; do not train")
        p.add_argument("--out", type=Path, help="results file (default: results/runs/<experiment>.json)")
        p.add_argument("--no-progress", action="store_true", help="no progress bars")
        hints, defaults = typing.get_type_hints(cls), cls()
        for f in dataclasses.fields(cls):
            _option(p, f, hints[f.name], getattr(defaults, f.name))
    return top


def make_config(args: argparse.Namespace):
    """The experiment's Config: the notebook's defaults (this mode's), changed by the options given."""
    cls = EXPERIMENTS[args.experiment][0]
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if getattr(args, f.name) is not None}
    if isinstance(given.get("lr"), list):
        given["lr"] = {**cls().lr, **dict(given["lr"])}
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in given.items()})


def main(argv: list[str] | None = None) -> int:
    """Run one experiment; 0 on success, 2 with a one-line error (printed by the main process)."""
    import torch

    from tlcourse import assets, hub

    args = parser().parse_args(argv)
    if args.smoke:
        os.environ[config.SMOKE_ENV] = "1"
    _, fn, _, needs = EXPERIMENTS[args.experiment]
    try:
        cfg = make_config(args)
        out = args.out or config.results_dir() / "runs" / f"{args.experiment}.json"
        n = distributed.num_processes()
        _say(f"{args.experiment} ({config.mode()} mode) on {n} process{'es' * (n > 1)}: {cfg}")
        if args.dry_run:
            name = getattr(cfg, "model_name", None)
            if name is not None:  # a model by name: known, and cached or downloadable (one line in seconds if not)
                hub.check_image_model(name) if args.experiment == "finetune" else hub.text_source(name)
            missing = [a for a in needs if assets.state(assets.get(a)) != "ok"]
            _say("dry run: " + (f"assets missing: {', '.join(missing)} (python -m tlcourse.assets fetch "
                                f"{' '.join(missing)})" if missing else "options and assets ok") + f"; results -> {out}")  # fmt: skip
            return 1 if missing else 0
        start = time.perf_counter()
        result = fn(cfg, progress=not args.no_progress)
    except (ValueError, TypeError, KeyError, FileNotFoundError, assets.AssetError, hub.ModelUnavailable) as e:
        if distributed.is_main_process():
            print(f"error: {str(e).splitlines()[0] if str(e) else type(e).__name__}", file=sys.stderr)
        return 2
    report = {"experiment": args.experiment, "mode": config.mode(), "config": dataclasses.asdict(cfg),
              "num_processes": n, "device": str(config.get_device() if n == 1 else distributed.process_device()),
              "threads_per_process": torch.get_num_threads(), "wall_seconds": time.perf_counter() - start,
              **result}  # fmt: skip
    if distributed.is_main_process():
        from tlcourse.files import write_atomic

        write_atomic(out, json.dumps(report, indent=1) + "\n")
        print(f"results: {out}")
    return 0


if __name__ == "__main__":
    from tlcourse import launch

    asked = launch.asked_cpu_processes()
    if asked:  # accelerate launch --cpu --num_processes N started one process: start the N
        sys.exit(launch.relaunch_cpu(asked, "tlcourse.run", sys.argv[1:]))
    code = main()
    if distributed.num_processes() > 1:  # every process done (the main one wrote the results), then close the group
        distributed.close()
    sys.exit(code)
