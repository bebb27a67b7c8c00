"""Fine-tuning a BERT (MiniLM) for text classification with the Hugging Face Trainer, on a CPU.

The lesson-03 recipe lives here so later lessons reuse it:

    from tlcourse import text_models
    tok, model = text_models.sentiment_model()        # MiniLM fine-tuned on Rotten Tomatoes, cached on disk
    probs = text_models.predict_proba(model, tok, ["a gem", "a mess"])   # [2, 2] (negative, positive)

Building blocks: `tokenize` (truncation, no fixed padding), `collator` (per-batch padding), `compute_metrics`
(accuracy + F1 with numpy/sklearn), `make_trainer` / `fine_tune`, `save_model` / `load_pipeline`.
Nothing here touches a model hub unless `Recipe.name` is a hub id.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from tlcourse import config, distributed
from tlcourse.data import texts_list
from tlcourse.files import atomic_folder
from tlcourse.text_data import LABELS, as_splits


@dataclass(frozen=True)
class Recipe:
    """Fine-tuning settings; the lesson-03 recipe is `recipe()` (full mode) or `recipe(smoke=True)`."""

    max_length: int = 64  # tokens kept per snippet (RT snippets: ~25 on average)
    epochs: float = 2.0
    lr: float = 5e-5
    batch_size: int = 16
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    bf16: bool | None = None  # None: config.precision() decides (bf16 only where native); True/False forces it
    group_by_length: bool = True  # batches of similar-length snippets: less padding, faster steps
    train_size: int | None = None  # None = the whole train split
    eval_size: int | None = None  # None = the whole validation split
    seed: int = 0
    name: str | None = None  # None = the offline MiniLM; or a hub id such as "bert-base-uncased" (online only)


def recipe(smoke: bool | None = None, **changes) -> Recipe:
    """The lesson-03 recipe for this mode (smoke: 64 snippets, 1 epoch); keyword arguments override fields."""
    smoke = config.is_smoke() if smoke is None else smoke
    base = Recipe(train_size=64, eval_size=64, epochs=1.0, max_length=32) if smoke else Recipe()
    return replace(base, **changes)


def tokenize(data, tokenizer, max_length: int = 64, text_column: str = "text"):
    """Tokenize a Dataset or DatasetDict: truncation to max_length, NO padding (the collator pads per batch)."""
    cols = data.column_names
    cols = next(iter(cols.values())) if isinstance(cols, dict) else cols  # DatasetDict: {split: [columns]}
    if text_column not in cols:
        raise ValueError(f"no column {text_column!r} in the data; its columns are {cols}")

    def encode(batch):
        return tokenizer(batch[text_column], truncation=True, max_length=max_length)

    return data.map(encode, batched=True, desc=None)


def collator(tokenizer):
    """A DataCollatorWithPadding: each batch is padded to its own longest sequence, not to a fixed length."""
    from transformers import DataCollatorWithPadding

    return DataCollatorWithPadding(tokenizer)


def scores(labels, predictions) -> dict[str, float]:
    """{"accuracy", "f1"} of predicted class ids; F1 of the positive class (binary) or macro F1 (more classes)."""
    from sklearn.metrics import accuracy_score, f1_score

    labels, predictions = np.asarray(labels), np.asarray(predictions)
    if labels.shape != predictions.shape:
        raise ValueError(f"labels {labels.shape} and predictions {predictions.shape} must have the same shape")
    binary = set(np.unique(labels)) | set(np.unique(predictions)) <= {0, 1}
    f1 = f1_score(labels, predictions, average="binary" if binary else "macro", zero_division=0)
    return {"accuracy": float(accuracy_score(labels, predictions)), "f1": float(f1)}


def compute_metrics(eval_pred) -> dict[str, float]:
    """Trainer hook: (logits [N,C], labels [N]) -> {"accuracy", "f1"}, computed locally (no hub metric scripts)."""
    logits, labels = eval_pred[0], eval_pred[1]
    return scores(labels, np.asarray(logits).argmax(-1))


def new_classifier(rec: Recipe | None = None, num_labels: int = 2):
    """(tokenizer, model): MiniLM (or rec.name) with a fresh `num_labels` head and readable label names."""
    from tlcourse.models import load_minilm

    rec = rec or recipe()
    config.seed_everything(rec.seed)  # the new head's initial weights
    tok, model = load_minilm(num_labels=num_labels, name=rec.name)
    names = LABELS if num_labels == len(LABELS) else [f"LABEL_{i}" for i in range(num_labels)]
    model.config.id2label = dict(enumerate(names))
    model.config.label2id = {n: i for i, n in enumerate(names)}
    return tok, model


def _subset(ds, n: int | None, seed: int):
    return ds if n is None or n >= len(ds) else ds.shuffle(seed=seed).select(range(n))


def half_precision(rec: Recipe) -> tuple[bool, bool]:
    """(bf16, fp16) Trainer flags for a recipe: its `bf16` if set, else the course's policy (config.precision)."""
    if rec.bf16 is not None:
        return bool(rec.bf16), False
    dtype = config.precision("cuda" if torch.cuda.is_available() else "cpu").dtype
    return dtype is torch.bfloat16, dtype is torch.float16


def check_labels(model, data, what: str = "training") -> None:
    """Refuse, in one line, data whose `label` values the model's head has no output for (or no data at all)."""
    if len(data) == 0:
        raise ValueError(f"the {what} data is empty")
    cols = data.column_names
    if "label" not in cols:
        raise ValueError(f"the {what} data has no 'label' column; its columns are {cols}"
                         + ("; rename 'labels' to 'label'" if "labels" in cols else ""))  # fmt: skip
    values = sorted({int(v) for v in data["label"]})
    n = model.config.num_labels
    if values[0] < 0 or values[-1] >= n:
        raise ValueError(f"{what} labels {values[:8]} do not fit the model's {n} classes (0–{n - 1}): map the labels "
                         f"to 0..{n - 1} or build the model with num_labels={values[-1] + 1}")  # fmt: skip


def make_trainer(model, tokenizer, train, eval_data, rec: Recipe | None = None, output_dir: str | Path | None = None,
                 progress: bool = True):  # fmt: skip
    """A Trainer for sequence classification: eval + checkpoint each epoch, best model (val accuracy) kept at the end.

    `train` / `eval_data` are tokenized Datasets with a `label` column; eval_data=None trains the fixed number of
    epochs with no evaluation and no checkpoints (when there is no labelled data to choose an epoch on).
    Checkpoints go to `output_dir` (default: a fresh temp folder, the same on every process of a distributed run);
    no hub pushes, no report_to integrations.
    """
    from transformers import PrinterCallback, Trainer, TrainingArguments

    rec = rec or recipe()
    check_labels(model, train, "training")
    if eval_data is not None:
        check_labels(model, eval_data, "evaluation")
    bf16, fp16 = half_precision(rec)
    steps = int(np.ceil(len(train) / rec.batch_size) * rec.epochs)
    select = eval_data is not None  # evaluate each epoch and keep the best one
    args = TrainingArguments(
        output_dir=str(output_dir or distributed.shared_tempdir("tlcourse-trainer-")),
        num_train_epochs=rec.epochs,
        learning_rate=rec.lr,
        per_device_train_batch_size=rec.batch_size,
        per_device_eval_batch_size=64,
        weight_decay=rec.weight_decay,
        warmup_steps=int(rec.warmup_ratio * steps),
        bf16=bf16,
        fp16=fp16,  # (CUDA only) with the Trainer's loss scaling
        eval_strategy="epoch" if select else "no",
        save_strategy="epoch" if select else "no",
        save_only_model=True,  # no optimizer state: checkpoints are just safetensors weights
        save_total_limit=1,  # keeps the best checkpoint (and the latest)
        load_best_model_at_end=select,
        metric_for_best_model="accuracy" if select else None,
        logging_strategy="steps",
        logging_steps=max(1, steps // 20),
        report_to="none",
        push_to_hub=False,
        disable_tqdm=not progress,
        seed=rec.seed,
        dataloader_num_workers=0,
        train_sampling_strategy="group_by_length" if rec.group_by_length else "random",
        use_cpu=not torch.cuda.is_available(),
    )
    trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=eval_data, processing_class=tokenizer,
                      data_collator=collator(tokenizer), compute_metrics=compute_metrics)  # fmt: skip
    if not progress:  # quiet: no per-log prints either (the log history still records everything)
        trainer.remove_callback(PrinterCallback)
    return trainer


def fine_tune(data, rec: Recipe | None = None, progress: bool = True):
    """Fine-tune a fresh classifier on data["train"] (validation = data["validation"]); return (tokenizer, trainer).

    `data` may be a plain Dataset or have no validation split: see `text_data.as_splits`. The trainer holds the best model
    (`trainer.model`), its log history and the train time (`trainer.state.log_history`, `trainer.train_seconds`).
    Checkpoints live in a temp folder deleted afterwards.
    """
    rec = rec or recipe()
    data = as_splits(data, rec.seed)
    classes = data["train"].features["label"]
    tok, model = new_classifier(rec, num_labels=classes.num_classes)
    if classes.names != [str(i) for i in range(classes.num_classes)]:
        model.config.id2label = dict(enumerate(classes.names))  # the data's own class names in predictions
        model.config.label2id = {n: i for i, n in enumerate(classes.names)}
    train = tokenize(_subset(data["train"], rec.train_size, rec.seed), tok, rec.max_length)
    val = tokenize(_subset(data["validation"], rec.eval_size, rec.seed), tok, rec.max_length)
    keep = ["input_ids", "attention_mask", "token_type_ids", "label"]
    train = train.remove_columns([c for c in train.column_names if c not in keep])
    val = val.remove_columns([c for c in val.column_names if c not in keep])
    workdir = distributed.shared_tempdir("tlcourse-trainer-")  # every process reloads the best epoch from here
    try:
        trainer = make_trainer(model, tok, train, val, rec, output_dir=workdir, progress=progress)
        out = trainer.train()
        trainer.train_seconds = float(out.metrics["train_runtime"])
    finally:
        distributed.remove_shared(workdir)
    trainer.model = trained_model(trainer)
    return tok, trainer


def trained_model(trainer):
    """The trainer's model in eval mode without the mixed-precision wrapper the Trainer put on its forward().

    After a bf16 run the Trainer leaves forward() wrapped in autocast; unwrapped, predictions run in plain float32,
    exactly like the model saved with save_model and reloaded (and as fast as a fresh model).
    """
    from accelerate.utils import extract_model_from_parallel

    return extract_model_from_parallel(trainer.model, keep_fp32_wrapper=False).eval()


@torch.no_grad()
def predict_proba(model, tokenizer, texts: list[str], batch_size: int = 64, max_length: int = 128,
                  progress: bool = False) -> np.ndarray:  # fmt: skip
    """Class probabilities [N,C] for a list of texts, in their order (eval mode; batches of similar length, padded per
    batch)."""
    from tqdm.auto import tqdm

    texts = texts_list(texts)
    model.eval()
    device = next(model.parameters()).device
    if not texts:
        return np.zeros((0, model.config.num_labels), dtype=np.float32)
    order = np.argsort([len(t) for t in texts], kind="stable")  # similar lengths per batch: less padding, same result
    out = []
    for i in tqdm(range(0, len(texts), batch_size), desc="predict", disable=not progress, leave=False):
        batch = [texts[j] for j in order[i : i + batch_size]]
        enc = tokenizer(batch, truncation=True, max_length=max_length, padding=True, return_tensors="pt").to(device)
        out.append(model(**enc).logits.float().softmax(-1).cpu().numpy())  # [B,C]
    probs = np.concatenate(out)  # [N,C] in length order
    probs[order] = probs.copy()  # back to the order of `texts`
    return probs


def save_model(model, tokenizer, path: str | Path) -> Path:
    """save_pretrained model (safetensors) + tokenizer into `path`, atomically (files.atomic_folder)."""
    with atomic_folder(path) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    return Path(path)


def _saved(path: str | Path) -> Path:
    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"no saved model in {path}; write one first with text_models.save_model(model, tok, path)"
        )
    return path


def _damaged(path: Path, e: Exception) -> RuntimeError:
    return RuntimeError(f"the saved model at {path} is damaged ({type(e).__name__}: {str(e).splitlines()[0][:120]}); "
                        "delete that folder and save or train it again (lesson 03's model: "
                        "text_models.sentiment_model(retrain=True))")  # fmt: skip


def load_pipeline(path: str | Path, device: torch.device | str | None = None):
    """A `pipeline("text-classification")` from a folder written by `save_model` (local files only), on `device`
    (default `config.get_device()`: a GPU when there is one)."""
    from transformers import pipeline

    path = _saved(path)
    device = config.get_device() if device is None else torch.device(device)
    try:
        return pipeline("text-classification", model=str(path), tokenizer=str(path), device=device)
    except Exception as e:  # a bad safetensors header or config JSON: say what to do, not a deep traceback
        raise _damaged(path, e) from e


def load_classifier(path: str | Path, device: torch.device | str | None = None):
    """(tokenizer, model) from a folder written by `save_model`, in eval mode (local files only), on `device`
    (default `config.get_device()`: a GPU when there is one)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = _saved(path)
    device = config.get_device() if device is None else torch.device(device)
    try:
        tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModelForSequenceClassification.from_pretrained(path, local_files_only=True)
    except Exception as e:
        raise _damaged(path, e) from e
    return tok, model.eval().to(device)


def cache_key(rec: Recipe, dataset: str = "rotten_tomatoes") -> str:
    """Folder name for a fine-tuned model: dataset, mode and a hash of the recipe's settings."""
    blob = json.dumps({"dataset": dataset, **asdict(rec)}, sort_keys=True)
    model = (rec.name or "minilm").replace("/", "--")
    return f"{model}-{dataset}-{config.mode()}-{hashlib.sha256(blob.encode()).hexdigest()[:10]}"


def cache_path(rec: Recipe | None = None) -> Path:
    """Where `sentiment_model(rec)` keeps its fine-tuned model: data_dir()/models/<cache_key>."""
    return config.data_dir() / "models" / cache_key(rec or recipe())


def sentiment_model(rec: Recipe | None = None, retrain: bool = False, progress: bool = True):
    """(tokenizer, model): MiniLM fine-tuned on the Rotten Tomatoes train split with the lesson-03 recipe, in eval mode.

    Trained once and cached under data_dir()/models/<cache_key> (about 90 MB); later calls load it in a second.
    """
    from tlcourse.text_data import rotten_tomatoes

    rec = rec or recipe()
    path = cache_path(rec)
    if retrain or not (path / "config.json").is_file():
        tok, trainer = fine_tune(rotten_tomatoes(), rec, progress=progress)
        save_model(trainer.model, tok, path)
    return load_classifier(path)
