"""Tests for tlcourse.text_shift: shift metrics, EM prior re-estimation, few-shot sampling and fine-tuning."""

import numpy as np
import pytest

from tlcourse import text_shift


def test_shift_metrics_all_positive_on_imbalanced_labels():
    y = np.array([1] * 72 + [0] * 28)
    m = text_shift.shift_metrics(y, np.full(100, 0.9))
    assert m["accuracy"] == pytest.approx(0.72)
    assert m["balanced_accuracy"] == pytest.approx(0.5)
    assert m["auc"] == pytest.approx(0.5)
    assert m["predicted_positive"] == 1.0 and m["true_positive"] == pytest.approx(0.72)
    two_col = text_shift.shift_metrics(y, np.c_[np.full(100, 0.1), np.full(100, 0.9)])
    assert two_col == m
    assert text_shift.shift_metrics(y, np.full(100, 0.9), threshold=0.95)["predicted_positive"] == 0.0
    with pytest.raises(ValueError, match="same N"):
        text_shift.shift_metrics(y, np.zeros(5))


def test_em_prior_recovers_a_shifted_prior():
    rng = np.random.default_rng(0)
    n, true_prior = 4000, 0.8
    y = (rng.random(n) < true_prior).astype(int)
    # a calibrated classifier for a balanced source: likelihood ratio from two Gaussians
    s = rng.normal(loc=np.where(y == 1, 1.0, -1.0), scale=1.0)
    p_pos = 1 / (1 + np.exp(-2 * s))  # posterior under a 50/50 prior
    adjusted, prior = text_shift.em_prior(np.c_[1 - p_pos, p_pos], [0.5, 0.5])
    assert prior[1] == pytest.approx(true_prior, abs=0.03)
    assert adjusted.shape == (n, 2) and np.allclose(adjusted.sum(1), 1)
    assert adjusted[:, 1].mean() > p_pos.mean()
    with pytest.raises(ValueError, match="source_prior"):
        text_shift.em_prior(np.c_[1 - p_pos, p_pos], [1.0])


def test_few_shot_indices():
    y = np.array([1] * 90 + [0] * 10)
    a, b = text_shift.few_shot_indices(y, 8, seed=1), text_shift.few_shot_indices(y, 8, seed=1)
    assert np.array_equal(a, b) and len(a) == 8 and len(set(a)) == 8
    assert set(y[a]) == {0, 1}
    assert np.all(np.diff(a) > 0)
    with pytest.raises(ValueError, match="k must be"):
        text_shift.few_shot_indices(y, 1000)


def test_few_shot_fine_tune_runs_on_tiny_data():
    from tlcourse import text_models

    tok, model = text_models.new_classifier(text_models.recipe(smoke=True))
    texts = ["great, it worked", "awful side effects", "works well", "terrible, stopped it"]
    before = {k: v.clone() for k, v in model.classifier.state_dict().items()}
    out = text_shift.few_shot_fine_tune(model, tok, texts, [1, 0, 1, 0], epochs=1, max_length=16, progress=False)
    assert not out.training
    after = out.classifier.state_dict()
    assert any(not np.allclose(before[k].numpy(), after[k].numpy()) for k in before)
    with pytest.raises(ValueError, match="labels"):
        text_shift.few_shot_fine_tune(model, tok, texts, [1, 0], epochs=1)


def _overconfident(n=4000, sharpen=3.0, seed=0):
    rng = np.random.default_rng(seed)
    logit = rng.normal(0, 2, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return y, 1 / (1 + np.exp(-logit)), 1 / (1 + np.exp(-sharpen * logit))  # labels, calibrated, over-confident


def test_ece_is_small_when_calibrated_and_large_when_overconfident():
    y, calibrated, over = _overconfident()
    assert text_shift.expected_calibration_error(y, calibrated) < 0.03
    assert text_shift.expected_calibration_error(y, over) > 0.08
    perfect = np.array([1.0, 1.0, 0.0, 0.0])
    assert text_shift.expected_calibration_error([1, 1, 0, 0], perfect) == 0.0
    two = np.c_[[0.2, 0.8], [0.8, 0.2]]  # [2,2]: both predictions made with confidence 0.8
    assert text_shift.expected_calibration_error([1, 0], two) == pytest.approx(0.2)  # both right
    assert text_shift.expected_calibration_error([0, 1], two) == pytest.approx(0.8)  # both wrong
    with pytest.raises(ValueError, match="same N"):
        text_shift.expected_calibration_error([1, 0, 1], [0.5, 0.5])


def test_temperature_scaling_undoes_sharpening_and_keeps_the_ranking():
    y, _, over = _overconfident(sharpen=3.0)
    t = text_shift.fit_temperature(y, over)
    assert 2.5 < t < 3.5  # the sharpening factor
    scaled = text_shift.apply_temperature(over, t)  # [N,2]
    assert scaled.shape == (len(y), 2) and np.allclose(scaled.sum(1), 1)
    assert text_shift.expected_calibration_error(y, scaled) < 0.03
    assert np.array_equal(np.argsort(scaled[:, 1], kind="stable"), np.argsort(over, kind="stable"))
    assert np.allclose(text_shift.apply_temperature(over, 1.0)[:, 1], over, atol=1e-9)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        text_shift.apply_temperature(over, 0.0)


def test_few_shot_fine_tune_without_eval_data_leaves_no_autocast_wrapper():
    from tlcourse import text_models

    tok, model = text_models.new_classifier(text_models.recipe(smoke=True))
    texts = ["great, it worked", "awful side effects"]
    out = text_shift.few_shot_fine_tune(model, tok, texts, [1, 0], epochs=1, max_length=16, progress=False)
    assert not hasattr(out.forward, "__wrapped__")  # plain float32 forward, as a reloaded model


def test_em_prior_and_shift_metrics_refuse_what_they_cannot_answer():
    with pytest.raises(ValueError, match="has a zero"):
        text_shift.em_prior(np.array([[0.3, 0.7]]), [0.0, 1.0])
    with pytest.raises(ValueError, match="two classes"):
        text_shift.shift_metrics([0, 1, 2], np.full((3, 3), 1 / 3))
