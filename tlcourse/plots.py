"""Shared plots for every lesson: confusion matrix, 2-D embedding scatter, image gallery, learning and data curves.

Each function draws with matplotlib and returns what it drew on (an Axes or a Figure), so a notebook can add titles
or save the figure. Pass `ax=` to draw into a subplot of your own; otherwise a new figure is made.
Add new general-purpose plots here (small, documented, tested); lesson-specific pictures stay in the notebook.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np


def _axes(ax, figsize: tuple[float, float]):
    """The given Axes, or a fresh one on a new figure."""
    return ax if ax is not None else plt.subplots(figsize=figsize)[1]


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], class_names: Sequence[str] | None = None,
                     normalize: bool = True, ax=None, title: str = "") -> plt.Axes:  # fmt: skip
    """Confusion matrix (rows: true class, columns: predicted), as row fractions when normalize=True.

    scikit-learn's ConfusionMatrixDisplay draws it; this wrapper only fixes the course's look (rows normalised, the
    class names, two decimals without the leading 0, no colour bar) and sizes the figure to the number of classes.
    """
    from sklearn.metrics import ConfusionMatrixDisplay

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred differ in shape: {y_true.shape} vs {y_pred.shape}")
    k = len(class_names) if class_names is not None else int(max(y_true.max(), y_pred.max())) + 1
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    ax = _axes(ax, (0.55 * k + 2, 0.55 * k + 1.5))
    disp = ConfusionMatrixDisplay.from_predictions(y_true, y_pred, labels=list(range(k)), display_labels=names,
                                                   normalize="true" if normalize else None, ax=ax, cmap="Blues",
                                                   colorbar=False, values_format=".2f" if normalize else "d",
                                                   xticks_rotation=45)  # fmt: skip
    for t in disp.text_.ravel():  # .83 instead of 0.83; empty cells stay blank
        t.set_fontsize(7)
        value = t.get_text()
        t.set_text("" if value in ("0", "0.00") else value.removeprefix("0") if normalize else value)
    plt.setp(ax.get_xticklabels(), ha="right")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return ax


def embedding_scatter(points: np.ndarray, labels: Sequence[int], class_names: Sequence[str] | None = None,
                      groups: Sequence[int] | None = None, group_names: Sequence[str] | None = None,
                      ax=None, title: str = "", s: float = 4) -> plt.Axes:  # fmt: skip
    """Scatter of 2-D points [N,2] coloured by label; optional `groups` (e.g. domain) set the marker shape."""
    points = np.asarray(points)
    labels = np.asarray(labels)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) != len(labels):
        raise ValueError(f"expected points [N,2] and N labels, got {points.shape} and {len(labels)}")
    ax = _axes(ax, (5, 5))
    groups_arr = np.zeros(len(points), int) if groups is None else np.asarray(groups)
    markers = "o^sDvP*X"
    cmap = plt.get_cmap("tab10" if labels.max() < 10 else "tab20")
    for g_i, g in enumerate(np.unique(groups_arr)):
        for c in np.unique(labels):
            m = (groups_arr == g) & (labels == c)
            name = class_names[c] if class_names is not None else str(c)
            ax.scatter(*points[m].T, s=s, color=cmap(int(c) % cmap.N), marker=markers[g_i % len(markers)],
                       label=name if g_i == 0 else None, alpha=0.7, linewidths=0)  # fmt: skip
    if group_names is not None:
        for g_i, gname in enumerate(group_names):
            ax.scatter([], [], color="grey", marker=markers[g_i % len(markers)], label=gname)
    ax.legend(markerscale=3 if s < 10 else 1, fontsize=7, loc="best", frameon=False)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)
    return ax


def tsne_2d(x: np.ndarray, seed: int = 0, perplexity: float = 30.0, pca_dims: int = 50) -> np.ndarray:
    """t-SNE of rows of x [N,D] to [N,2] (standardised, PCA to `pca_dims` first when D is larger)."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from sklearn.preprocessing import StandardScaler

    x = StandardScaler().fit_transform(np.asarray(x, np.float32).reshape(len(x), -1))  # [N,D]
    if x.shape[1] > pca_dims:
        x = PCA(pca_dims, random_state=seed).fit_transform(x)  # [N,pca_dims]
    perplexity = min(perplexity, (len(x) - 1) / 3)
    return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)  # [N,2]


def image_gallery(images: Sequence[np.ndarray], titles: Sequence[str] | None = None, ncols: int = 6,
                  size: float = 1.6, cmap: str = "gray", suptitle: str = "") -> plt.Figure:  # fmt: skip
    """A grid of images (grey [H,W] or RGB [H,W,3]) with an optional title above each one."""
    n = len(images)
    if n == 0:
        raise ValueError("no images to show")
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.4 * bool(suptitle)), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i], cmap=cmap if np.ndim(images[i]) == 2 else None)
            if titles is not None:
                ax.set_title(titles[i], fontsize=7)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def learning_curves(histories: Mapping[str, Mapping[str, Sequence[float]]] | Mapping[str, Sequence[float]],
                    keys: Sequence[str] = ("loss", "acc")) -> plt.Figure:  # fmt: skip
    """Train/val curves per epoch from `fit` history dicts: one panel per metric, one line style per split.

    Pass one history, or {name: history} to compare runs.
    """
    if histories and all(not isinstance(v, Mapping) for v in histories.values()):
        histories = {"": histories}
    fig, axes = plt.subplots(1, len(keys), figsize=(4.5 * len(keys), 3.2), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        for i, (name, h) in enumerate(histories.items()):
            for split, style in (("train", "--"), ("val", "-")):
                ys = h.get(f"{split}_{key}", [])
                if len(ys):
                    label = f"{name} {split}".strip()
                    ax.plot(range(1, len(ys) + 1), ys, style, color=f"C{i}", label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def data_efficiency_curve(curves: Mapping[str, Mapping[int | str, Sequence[float]]], full_x: float | None = None,
                          full_label: str = "full", ax=None, xlabel: str = "labelled examples per class",
                          ylabel: str = "test accuracy", title: str = "", errorbar="sd") -> plt.Axes:  # fmt: skip
    """Accuracy vs number of labels, log x: seaborn's mean line with the spread over seeds (`errorbar`, default ± 1 sd).

    `curves` maps a name to {n: [acc per seed]}; a key "full" (the whole training set) is drawn at x=`full_x`
    with the tick label `full_label`. Pass errorbar=("pi", 100) for the min–max band, ("ci", 95) for a bootstrap CI.
    """
    import pandas as pd
    import seaborn as sns

    ax = _axes(ax, (6, 4))
    rows = [{"curve": name, "x": full_x if k == "full" else k, "acc": float(a)}
            for name, points in curves.items() for k, accs in points.items()
            if k != "full" or full_x is not None for a in accs]  # fmt: skip
    sns.lineplot(pd.DataFrame(rows), x="x", y="acc", hue="curve", errorbar=errorbar, marker="o", markersize=5,
                 markeredgewidth=0, ax=ax)  # fmt: skip
    ax.set_xscale("log")
    ticks = sorted({k for p in curves.values() for k in p if k != "full"})
    labels = [str(t) for t in ticks]
    if full_x is not None:
        ticks, labels = [*ticks, full_x], [*labels, full_label]
    ax.set_xticks(ticks, labels)
    ax.minorticks_off()
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(title=None, frameon=False)
    ax.set_title(title)
    return ax


def learning_curve_grid(histories: Mapping[str, Sequence[Mapping[str, Sequence[float]]] | Mapping[str, Sequence[float]]],
                        key: str = "acc", ncols: int = 3, start: Mapping[str, float] | None = None,
                        title: str = "") -> plt.Figure:  # fmt: skip
    """Small multiples: one panel per run name, train (dashed) and validation (solid) `key` per epoch.

    Each value is one `fit` history or a list of them (one per seed: mean line and ± 1 sd band, via seaborn).
    `start` optionally gives each name's validation score before training, drawn at epoch 0.
    """
    import pandas as pd
    import seaborn as sns

    names = list(histories)
    nrows = -(-len(names) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.5 * nrows), sharex=True, sharey=True, squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        runs = histories[name]
        runs = [runs] if isinstance(runs, Mapping) else list(runs)
        rows = [{"epoch": e + 1, "split": split, "value": v, "seed": i}
                for i, h in enumerate(runs) for split in ("train", "val")
                for e, v in enumerate(h.get(f"{split}_{key}", []))]  # fmt: skip
        if start is not None and name in start:
            rows += [{"epoch": 0, "split": "val", "value": float(start[name]), "seed": i} for i in range(len(runs))]
        df = pd.DataFrame(rows)
        sns.lineplot(df, x="epoch", y="value", style="split", style_order=["val", "train"], errorbar="sd",
                     marker="o", markersize=4, ax=ax, legend=ax is axes.flat[0])  # fmt: skip
        ax.set_title(name, fontsize=9)
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names) :]:
        ax.set_axis_off()
    if axes.flat[0].get_legend() is not None:
        axes.flat[0].legend(fontsize=7, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
