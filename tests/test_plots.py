"""Tests for tlcourse.plots: every function draws, returns its Axes/Figure, and rejects bad input clearly."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tlcourse import plots  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_confusion_matrix_counts_and_labels():
    ax = plots.confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2], ["a", "b", "c"], normalize=False)
    img = ax.images[0].get_array()
    assert img.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    ax = plots.confusion_matrix([0, 1, 1], [0, 1, 0])
    assert np.allclose(ax.images[0].get_array()[1], [0.5, 0.5])
    with pytest.raises(ValueError, match="differ in shape"):
        plots.confusion_matrix([0, 1], [0])


def test_embedding_scatter_colours_and_groups():
    pts = np.random.default_rng(0).normal(size=(20, 2))
    labels = np.arange(20) % 4
    ax = plots.embedding_scatter(
        pts, labels, class_names=list("abcd"), groups=np.arange(20) % 2, group_names=["src", "tgt"]
    )
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["a", "b", "c", "d", "src", "tgt"]
    assert sum(len(c.get_offsets()) for c in ax.collections) == 20
    with pytest.raises(ValueError, match="expected points"):
        plots.embedding_scatter(pts[:, :1], labels)


def test_tsne_2d_separates_blobs():
    rng = np.random.default_rng(0)
    y = np.arange(60) % 2
    x = rng.normal(size=(60, 80)) + y[:, None] * 6
    emb = plots.tsne_2d(x, perplexity=10)
    assert emb.shape == (60, 2)
    gap = np.linalg.norm(emb[y == 0].mean(0) - emb[y == 1].mean(0))
    assert gap > 2 * emb[y == 0].std(0).mean()


def test_image_gallery_grid_and_titles():
    imgs = [np.zeros((4, 4)), np.ones((4, 4, 3))] * 4
    fig = plots.image_gallery(imgs, [f"t{i}" for i in range(8)], ncols=3, suptitle="x")
    assert len(fig.axes) == 9 and fig.axes[7].get_title() == "t7" and not fig.axes[8].images
    with pytest.raises(ValueError, match="no images"):
        plots.image_gallery([])


def test_learning_curves_one_or_many():
    h = {"train_loss": [1, 0.5], "val_loss": [1.1, 0.7], "train_acc": [0.5, 0.7], "val_acc": [0.4, 0.6]}
    fig = plots.learning_curves(h)
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 2
    fig = plots.learning_curves({"a": h, "b": {**h, "val_loss": []}}, keys=["loss"])
    assert len(fig.axes) == 1 and len(fig.axes[0].lines) == 3


def test_data_efficiency_curve_mean_and_band():
    curves = {"x": {5: [0.5, 0.7], 10: [0.8, 0.8], "full": [0.9]}, "y": {5: [0.3, 0.3], 10: [0.4, 0.6]}}
    ax = plots.data_efficiency_curve(curves, full_x=100, full_label="all")
    assert ax.get_xscale() == "log"
    xs, ys = ax.lines[0].get_data()
    assert list(xs) == [5, 10, 100] and np.allclose(ys, [0.6, 0.8, 0.9])
    assert len(ax.lines[1].get_data()[0]) == 2 and len(ax.collections) >= 1  # the spread band of the seeds
    assert [t.get_text() for t in ax.get_xticklabels()] == ["5", "10", "all"]


def test_learning_curve_grid_small_multiples_with_seeds_and_epoch_zero():
    h = {"train_acc": [0.5, 0.7], "val_acc": [0.4, 0.6]}
    fig = plots.learning_curve_grid({"a": h, "b": [h, {**h, "val_acc": [0.5, 0.7]}], "c": h}, ncols=2,
                                    start={"a": 0.1})  # fmt: skip
    axes = fig.axes
    assert [ax.get_title() for ax in axes[:3]] == ["a", "b", "c"] and not axes[3].axison  # the spare panel is off
    xs = np.concatenate([line.get_xdata() for line in axes[0].lines])
    assert 0 in xs  # panel a starts at epoch 0
