"""Text under domain shift (lesson 04): honest metrics under label-prior shift, prior re-estimation without labels,
and few-shot fine-tuning of the lesson-03 sentiment model on k labelled target examples.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import replace

import numpy as np


def shift_metrics(labels, probs, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, balanced accuracy, ROC AUC and positive rates of P(positive) scores `probs` [N] (or [N,2])."""
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score

    labels = np.asarray(labels)
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim == 2 and p.shape[1] != 2:
        raise ValueError(f"shift_metrics is for two classes: pass P(positive) [N] or [N,2], got {p.shape[1]} columns")
    p = p[:, 1] if p.ndim == 2 else p  # [N] P(positive)
    if p.shape != labels.shape:
        raise ValueError(f"labels {labels.shape} and scores {p.shape} must describe the same N examples")
    pred = (p >= threshold).astype(int)
    both = len(np.unique(labels)) == 2
    return {
        "accuracy": float((pred == labels).mean()),
        "balanced_accuracy": float(balanced_accuracy_score(labels, pred)) if both else float("nan"),
        "auc": float(roc_auc_score(labels, p)) if both else float("nan"),
        "predicted_positive": float(pred.mean()),
        "true_positive": float(labels.mean()),
    }


def expected_calibration_error(labels, probs, bins: int = 10) -> float:
    """ECE of a classifier's confidence: Σ_bins (bin size / N) · |accuracy − mean confidence| over equal-width bins.

    probs [N,C] (or P(positive) [N] for two classes); confidence is the top probability, accuracy whether its class
    is the label. 0 = perfectly calibrated; 0.1 = confidence off by ten points on average.
    """
    p = _two_column(probs)
    y = np.asarray(labels)
    if y.shape != (len(p),):
        raise ValueError(f"labels {y.shape} and probs {p.shape} must describe the same N examples")
    conf, right = p.max(1), (p.argmax(1) == y).astype(float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)  # bin of each confidence
    return float(sum(abs(right[which == b].mean() - conf[which == b].mean()) * np.mean(which == b)
                     for b in range(bins) if np.any(which == b)))  # fmt: skip


def fit_temperature(labels, probs) -> float:
    """The temperature T > 0 minimising the negative log-likelihood of softmax(log p / T) on labelled data.

    Fit it on labelled *source* data held out from training (a validation split), then apply it anywhere with
    `apply_temperature`; T > 1 softens over-confident probabilities. The ranking (and so AUC) never changes.
    """
    from scipy.optimize import minimize_scalar

    logp = np.log(np.clip(_two_column(probs), 1e-12, 1.0))  # [N,C] logits up to a constant
    y = np.asarray(labels).astype(int)
    if y.shape != (len(logp),):
        raise ValueError(f"labels {y.shape} and probs {logp.shape} must describe the same N examples")

    def nll(log_t):
        z = logp / np.exp(log_t)
        z = z - z.max(1, keepdims=True)
        return float(-(z[np.arange(len(y)), y] - np.log(np.exp(z).sum(1))).mean())

    return float(np.exp(minimize_scalar(nll, bounds=(-3.0, 3.0), method="bounded").x))


def apply_temperature(probs, temperature: float) -> np.ndarray:
    """softmax(log p / T): probabilities [N,C] with the same ranking, softened (T > 1) or sharpened (T < 1)."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0; got {temperature}")
    z = np.log(np.clip(_two_column(probs), 1e-12, 1.0)) / temperature
    z = np.exp(z - z.max(1, keepdims=True))
    return z / z.sum(1, keepdims=True)


def _two_column(probs) -> np.ndarray:
    """[N,C] probabilities from [N,C] or from P(positive) [N]."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim == 1:
        p = np.c_[1 - p, p]
    if p.ndim != 2:
        raise ValueError(f"pass probabilities [N,C] or P(positive) [N]; got shape {p.shape}")
    return p


def em_prior(probs, source_prior, iters: int = 200, tol: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Re-estimate the target's class prior from unlabelled predictions (Saerens et al. 2002 EM).

    probs [N,C] are the source model's posteriors on target data, source_prior [C] the training prior.
    Returns (adjusted posteriors [N,C], estimated target prior [C]).
    """
    p = np.asarray(probs, dtype=np.float64)
    s = np.asarray(source_prior, dtype=np.float64)
    if p.ndim != 2 or s.shape != (p.shape[1],):
        raise ValueError(f"need probs [N,C] and source_prior [C], got {p.shape} and {s.shape}")
    if not (s > 0).all():
        raise ValueError(f"source_prior {s.tolist()} has a zero: every class must occur in the training data "
                         "(the EM update divides by it)")  # fmt: skip
    prior = s.copy()
    adjusted = p
    for _ in range(iters):
        w = p * (prior / s)  # [N,C]
        adjusted = w / w.sum(1, keepdims=True)  # [N,C]
        new = adjusted.mean(0)  # [C]
        if np.abs(new - prior).max() < tol:
            prior = new
            break
        prior = new
    return adjusted, prior


def few_shot_indices(labels, k: int, seed: int = 0) -> np.ndarray:
    """k random example indices (a labelling budget of k), redrawn until both classes appear; sorted."""
    labels = np.asarray(labels)
    if not 2 <= k <= len(labels):
        raise ValueError(f"k must be between 2 and {len(labels)}, got {k}")
    rng = np.random.default_rng(seed)
    for _ in range(100):
        idx = rng.choice(len(labels), size=k, replace=False)
        if len(np.unique(labels[idx])) == len(np.unique(labels)):
            return np.sort(idx)
    raise ValueError("could not draw a sample with every class; use a larger k")


def few_shot_fine_tune(model, tokenizer, texts: list[str], labels, *, epochs: float = 3.0, lr: float = 3e-5,
                       batch_size: int = 16, max_length: int = 128, seed: int = 0, bf16: bool | None = None,
                       progress: bool = True):  # fmt: skip
    """Continue fine-tuning a sentiment classifier on k labelled target texts with the lesson-03 Trainer recipe.

    Trains the fixed number of epochs, with no epoch selection: the only labelled target data are the k training texts,
    and picking an epoch on them would be choosing on training data. bf16=None trains in the precision
    config.precision() picks (True/False force it). Returns the model in eval mode, in float32.
    """
    from datasets import Dataset

    from tlcourse import text_models

    labels = np.asarray(labels).astype(int)
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    rec = replace(text_models.recipe(smoke=False), epochs=epochs, lr=lr, batch_size=batch_size,
                  max_length=max_length, seed=seed, bf16=bf16)  # fmt: skip
    ds = Dataset.from_dict({"text": list(texts), "label": labels.tolist()})
    ds = text_models.tokenize(ds, tokenizer, max_length).remove_columns(["text"])
    workdir = tempfile.mkdtemp(prefix="tlcourse-fewshot-")
    try:
        trainer = text_models.make_trainer(model, tokenizer, ds, None, rec, output_dir=workdir, progress=progress)
        trainer.train()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return text_models.trained_model(trainer)
