"""Baselines for text classification: majority class, TF-IDF + logistic regression, frozen MiniLM embeddings + LR.

from tlcourse import text_baselines as tb
clf = tb.tfidf_baseline(train_texts, train_labels)             # sklearn Pipeline: .predict(texts)
x = tb.embed(texts, tokenizer, encoder)                        # [N,384] mean-pooled sentence embeddings
probe = tb.logistic_probe(x_train, y_train)                    # .predict(x)
"""

from __future__ import annotations

import numpy as np
import torch

from tlcourse.data import labelled, texts_list


def majority_baseline(train_labels, n: int) -> np.ndarray:
    """Predict the most common training label for `n` examples."""
    values, counts = np.unique(np.asarray(train_labels), return_counts=True)
    if len(values) == 0:
        raise ValueError("train_labels is empty: nothing to count")
    return np.full(n, values[counts.argmax()])


def tfidf_baseline(train_texts: list[str], train_labels, c: float = 4.0, seed: int = 0):
    """A fitted sklearn Pipeline: TF-IDF of words and word pairs, then logistic regression."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    texts = texts_list(train_texts, "train_texts")
    texts, labels = labelled(texts, train_labels)
    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2 if len(texts) > 20 else 1, sublinear_tf=True,
                          strip_accents="unicode")  # fmt: skip
    clf = LogisticRegression(C=c, max_iter=2000, random_state=seed)
    return make_pipeline(vec, clf).fit(list(texts), labels)


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average the token vectors [B,T,H] over real tokens (mask [B,T] = 1), ignoring padding -> [B,H]."""
    m = mask.unsqueeze(-1).to(hidden.dtype)  # [B,T,1]
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)  # [B,H]


@torch.no_grad()
def embed(texts: list[str], tokenizer, encoder, batch_size: int = 64, max_length: int = 128,
          progress: bool = True, normalize: bool = True) -> np.ndarray:  # fmt: skip
    """Frozen sentence embeddings [N,H]: the encoder in eval mode, mean-pooled over tokens (L2-normalised)."""
    from tqdm.auto import tqdm

    texts = texts_list(texts)
    encoder.eval()  # dropout off: deterministic features, and much faster than train mode
    device = next(encoder.parameters()).device
    order = np.argsort([len(t) for t in texts])  # similar lengths together: less padding per batch
    out = np.zeros((len(texts), encoder.config.hidden_size), dtype=np.float32)
    for i in tqdm(range(0, len(texts), batch_size), desc="embed", disable=not progress, leave=False):
        idx = order[i : i + batch_size]
        enc = tokenizer([texts[j] for j in idx], truncation=True, max_length=max_length, padding=True,
                        return_tensors="pt").to(device)  # fmt: skip
        base = getattr(encoder, "base_model", encoder)  # a classifier's encoder, or the bare encoder
        hidden = base(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state  # [B,T,H]
        vec = mean_pool(hidden.float(), enc["attention_mask"])  # [B,H]
        if normalize:
            vec = torch.nn.functional.normalize(vec, dim=-1)  # [B,H]
        out[idx] = vec.cpu().numpy()
    return out


def logistic_probe(x_train: np.ndarray, y_train, c: float = 1.0, seed: int = 0):
    """A fitted sklearn Pipeline: standardise features, then logistic regression (the linear probe)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x_train, y_train = labelled(x_train, y_train)
    if x_train.ndim != 2:
        raise ValueError(f"features should be a 2-D array [N,D], got shape {x_train.shape}")
    clf = LogisticRegression(C=c, max_iter=2000, random_state=seed)
    return make_pipeline(StandardScaler(), clf).fit(x_train, y_train)
