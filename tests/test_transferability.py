"""The four transferability scores on inputs whose answer is known: synthetic features, hand-computed joints."""

import numpy as np
import pytest
from scipy.stats import multivariate_normal
from sklearn.covariance import LedoitWolf

from tlcourse import transferability as tr


def blobs(n_per_class=40, d=20, k=4, spread=1.0, seed=0):
    """Gaussian classes around random centres: (features [N,D], labels [N])."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(k), n_per_class)
    centres = rng.normal(0, 1, (k, d))
    return centres[y] + rng.normal(0, spread, (len(y), d)), y


def shuffled(y, seed=1):
    return np.random.default_rng(seed).permutation(y)


# ---- LogME ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_per_class,d", [(40, 20), (5, 300)])  # more images than dimensions, and far fewer
def test_logme_prefers_separable_classes_to_shuffled_labels(n_per_class, d):
    f, y = blobs(n_per_class, d)
    assert tr.logme(f, y) > tr.logme(f, shuffled(y)) + 0.1


def test_logme_rises_as_the_classes_separate():
    scores = [tr.logme(*blobs(spread=s)) for s in (3.0, 1.0, 0.3)]
    assert scores[0] < scores[1] < scores[2]


@pytest.mark.parametrize("scale", [0.01, 7.0])
def test_logme_ignores_a_common_scale_of_the_features(scale):
    f, y = blobs(5, 300)
    assert tr.logme(scale * f, y) == pytest.approx(tr.logme(f, y), rel=1e-4)


def test_max_evidence_is_the_marginal_likelihood_at_its_maximum():
    f, y = blobs(10, 6, k=3)
    t = (y == 0).astype(float)
    u, s, _ = np.linalg.svd(f, full_matrices=False)
    per_image, alpha, beta = tr.max_evidence(u, s, t, f.shape[1])

    def log_evidence(a, b):  # t ~ N(0, β⁻¹ I + α⁻¹ F Fᵀ): the weights integrated out
        cov = np.eye(len(t)) / b + f @ f.T / a
        return multivariate_normal(np.zeros(len(t)), cov).logpdf(t) / len(t)

    assert per_image == pytest.approx(log_evidence(alpha, beta), rel=1e-8)
    for da, db in [(1.3, 1), (1 / 1.3, 1), (1, 1.3), (1, 1 / 1.3)]:
        assert log_evidence(alpha * da, beta * db) < per_image  # the fixed point is a maximum


# ---- H-score ----------------------------------------------------------------------------------------------------------


def direct_h_score(f, y, shrinkage):
    """The H-score as written in the papers (and in TLlib): D x D covariances and a pseudo-inverse."""
    f = f - f.mean(0)
    g = np.zeros_like(f)
    for c in np.unique(y):
        g[y == c] = f[y == c].mean(0)
    cov_g = np.cov(g, rowvar=False)
    if not shrinkage:
        return np.trace(np.linalg.pinv(np.cov(f, rowvar=False), rcond=1e-15) @ cov_g)
    lw = LedoitWolf().fit(f)
    return np.trace(np.linalg.pinv(lw.covariance_, rcond=1e-15) @ ((1 - lw.shrinkage_) * cov_g))


@pytest.mark.parametrize("shrinkage", [False, True])
@pytest.mark.parametrize("n_per_class,d", [(40, 20), (8, 100)])
def test_h_score_equals_the_direct_formula(shrinkage, n_per_class, d):
    f, y = blobs(n_per_class, d)
    f = f * np.random.default_rng(3).uniform(0.1, 3, d)  # unequal feature scales
    assert tr.h_score(f, y, shrinkage) == pytest.approx(direct_h_score(f, y, shrinkage), rel=1e-6)


@pytest.mark.parametrize("shrinkage", [False, True])
def test_h_score_prefers_separable_classes_to_shuffled_labels(shrinkage):
    f, y = blobs(40, 20)
    assert tr.h_score(f, y, shrinkage) > tr.h_score(f, shuffled(y), shrinkage) + 0.5


def test_original_h_score_ignores_any_invertible_linear_map():
    f, y = blobs(40, 20)
    mix = np.random.default_rng(4).normal(0, 1, (20, 20))  # invertible (almost surely)
    assert tr.h_score(f @ mix, y, shrinkage=False) == pytest.approx(tr.h_score(f, y, shrinkage=False), rel=1e-6)


def test_shrunk_h_score_ignores_a_common_scale():
    f, y = blobs(8, 100)
    assert tr.h_score(0.05 * f, y) == pytest.approx(tr.h_score(f, y), rel=1e-9)


def test_original_h_score_says_k_minus_1_whatever_the_labels_when_images_are_fewer_than_dimensions():
    f, y = blobs(5, 300, k=4)
    assert tr.h_score(f, y, shrinkage=False) == pytest.approx(3.0)
    assert tr.h_score(f, shuffled(y), shrinkage=False) == pytest.approx(3.0)
    assert tr.h_score(f, y) > tr.h_score(f, shuffled(y))  # the shrunk one still tells them apart


# ---- LEEP and NCE: hand-computed joints -----------------------------------------------------------------------------


def test_leep_on_a_hand_computed_soft_joint():
    # P(y, z) = θ/2 row by row: y=0 -> (.4, .1), y=1 -> (.2, .3); P(z) = (.6, .4); P(y | z0) = (2/3, 1/3),
    # P(y | z1) = (1/4, 3/4); expected predictions: .8·2/3 + .2·1/4 = 7/12 and .4·1/3 + .6·3/4 = 7/12
    probs, y = np.array([[0.8, 0.2], [0.4, 0.6]]), np.array([0, 1])
    assert tr.leep(probs, y) == pytest.approx(np.log(7 / 12))


def test_leep_with_hard_predictions_is_nce():
    z, y = np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1])  # P(y | z0) = (½, ½), P(y | z1) = (0, 1)
    want = (2 * np.log(0.5) + 2 * np.log(1.0)) / 4  # = −ln 2 / 2
    assert tr.leep(np.eye(2)[z], y) == pytest.approx(want)
    assert tr.nce(z, y) == pytest.approx(want)


def test_nce_on_a_hand_computed_joint():
    z, y = np.array([0, 0, 1, 1, 2, 2]), np.array([0, 0, 0, 1, 1, 1])  # only z = 1 leaves doubt: H(Y|Z) = ln 2 / 3
    assert tr.nce(z, y) == pytest.approx(-np.log(2) / 3)
    assert tr.nce(z * 7 + 100, y) == pytest.approx(-np.log(2) / 3)  # source class names do not matter
    assert tr.nce(np.array([3, 3, 5, 5, 9, 9]), np.array([1, 1, 0, 0, 2, 2])) == pytest.approx(0.0)  # Z decides Y


def test_leep_and_nce_ignore_renaming_the_target_classes():
    rng = np.random.default_rng(0)
    probs = tr.softmax(rng.normal(0, 2, (60, 12)))
    y = rng.integers(0, 3, 60)
    renamed = np.array([2, 0, 1])[y]
    assert tr.leep(probs, renamed) == pytest.approx(tr.leep(probs, y))
    assert tr.nce(probs.argmax(1), renamed) == pytest.approx(tr.nce(probs.argmax(1), y))


def test_leep_prefers_a_source_whose_classes_track_the_target():
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(3), 30)
    informative = tr.softmax(5 * np.eye(6)[2 * y + rng.integers(0, 2, 90)])  # each target class -> its own 2 of 6
    noise = tr.softmax(rng.normal(0, 1, (90, 6)))
    assert tr.leep(informative, y) > tr.leep(noise, y) + 0.5
    assert tr.nce(informative.argmax(1), y) > tr.nce(noise.argmax(1), y)
    assert tr.leep(informative, y) <= 0 and tr.nce(noise.argmax(1), y) <= 0


# ---- the common interface and one-line errors ---------------------------------------------------------------------


def test_scores_table_runs_every_score_on_features_and_logits():
    f, y = blobs(10, 30, k=3)
    logits = np.random.default_rng(0).normal(0, 1, (len(y), 50))
    values = {name: score(f, logits, y) for name, score in tr.SCORES.items()}
    assert set(values) == {"LogME", "H-score", "LEEP", "NCE"} and all(np.isfinite(v) for v in values.values())
    assert np.allclose(tr.softmax(logits).sum(1), 1.0)


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: tr.logme(np.ones((4, 3)), [0, 1]), "4 examples but 2 labels"),
        (lambda: tr.logme(np.ones(4), [0, 1, 0, 1]), "2-D array"),
        (lambda: tr.h_score(np.full((4, 2), np.nan), [0, 1, 0, 1]), "NaN"),
        (lambda: tr.logme(np.ones((4, 2)), [0.5, 1, 0, 1]), "integers"),
        (lambda: tr.leep(np.ones((4, 3)), [0, 1, 0, 1]), "probabilities"),
        (lambda: tr.nce(np.array([0.2, 0.1]), [0, 1]), "predicted labels"),
        (lambda: tr.nce(np.array([0, 1, 1]), [0, 0, 0]), "every label is 0"),
    ],
)  # fmt: skip
def test_wrong_inputs_get_one_line_errors(call, message):
    with pytest.raises(ValueError, match=message) as info:
        call()
    assert "\n" not in str(info.value)
