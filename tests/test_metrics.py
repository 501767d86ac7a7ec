"""Probe metrics against scikit-learn / direct computation on fixed inputs; the linear head against sklearn."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    brier_score_loss,
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)
from torchmetrics.classification import MultilabelAUROC

from ecg_dino.probes.calibration import (
    binary_ece,
    fit_temperature,
    multiclass_brier,
    multilabel_brier,
    multilabel_ece,
    softmax,
    top_label_ece,
)
from ecg_dino.probes.linear import balanced_class_weights, fit_head, fit_probe
from ecg_dino.probes.metrics import (
    between_group_share,
    bootstrap_macro_auroc,
    bootstrap_weights,
    class_report,
    confusion,
    j_kappa,
    masked_macro_auroc,
    percentile_ci,
    weighted_auroc,
    within_group_auroc,
)


@pytest.fixture
def binary() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    score = np.round(rng.normal(size=300) + y, 1)  # rounded: many ties
    return y, score


def test_auroc_matches_sklearn_with_ties(binary: tuple[np.ndarray, np.ndarray]) -> None:
    y, score = binary
    assert weighted_auroc(y, score) == pytest.approx(roc_auc_score(y, score), abs=1e-12)


def test_weighted_auroc_equals_auroc_of_the_resample(binary: tuple[np.ndarray, np.ndarray]) -> None:
    y, score = binary
    weights = next(bootstrap_weights(len(y), 3, seed=1))
    aucs = weighted_auroc(y, score, weights)
    for w, auc in zip(weights, aucs):
        idx = np.repeat(np.arange(len(y)), w.astype(int))
        assert auc == pytest.approx(roc_auc_score(y[idx], score[idx]), abs=1e-12)


def test_masked_macro_auroc_excludes_and_counts_labels_without_positives() -> None:
    y = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
    s = np.array([[0.9, 0.2, 0.3], [0.1, 0.8, 0.5], [0.7, 0.6, 0.1], [0.3, 0.1, 0.2]])
    macro, per_label, excluded = masked_macro_auroc(y, s)
    assert excluded == 1 and np.isnan(per_label[2])
    assert macro == pytest.approx(np.mean([roc_auc_score(y[:, c], s[:, c]) for c in (0, 1)]))
    # torchmetrics' macro average scores the label without positives as 0 and keeps it in the mean.
    with pytest.warns(UserWarning):
        tm = float(MultilabelAUROC(num_labels=3, average="macro")(torch.tensor(s), torch.tensor(y)))
    assert tm == pytest.approx(macro * 2 / 3)


def test_class_report_and_j_kappa_match_sklearn() -> None:
    rng = np.random.default_rng(3)
    y = rng.choice(5, 500, p=[0.6, 0.15, 0.15, 0.07, 0.03])
    pred = np.where(rng.random(500) < 0.7, y, rng.integers(0, 5, 500))
    cm = confusion(y, pred, 5)
    np.testing.assert_array_equal(cm, confusion_matrix(y, pred, labels=range(5)))
    rep = class_report(cm)
    labels = list(range(5))
    np.testing.assert_allclose(rep["sensitivity"], recall_score(y, pred, labels=labels, average=None))
    np.testing.assert_allclose(rep["ppv"], precision_score(y, pred, labels=labels, average=None))
    np.testing.assert_allclose(rep["f1"], f1_score(y, pred, labels=labels, average=None))
    kappa = cohen_kappa_score(y, pred)
    assert rep["kappa"] == pytest.approx(kappa)
    jk = j_kappa(cm)
    se = recall_score(y, pred, labels=labels, average=None)
    ppv = precision_score(y, pred, labels=labels, average=None)
    assert jk["j_index"] == pytest.approx(se[1] + se[2] + ppv[1] + ppv[2])
    assert jk["j_kappa"] == pytest.approx(0.5 * kappa + 0.125 * (se[1] + se[2] + ppv[1] + ppv[2]))


def direct_ece(conf: np.ndarray, correct: np.ndarray, n_bins: int = 15) -> float:
    """ECE written as a plain loop over the 15 bins (lower edge excluded except for the first)."""
    total = 0.0
    edges = np.linspace(0, 1, n_bins + 1)
    for lo, hi in itertools.pairwise(edges):
        inside = (conf >= lo) & (conf < hi) if hi < 1 else (conf >= lo) & (conf <= hi)
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - conf[inside].mean())
    return total


def test_ece_and_brier_against_direct_computation() -> None:
    rng = np.random.default_rng(4)
    prob = rng.random((400, 3))
    y = (rng.random((400, 3)) < prob**1.5).astype(int)
    assert binary_ece(prob[:, 0], y[:, 0]) == pytest.approx(direct_ece(prob[:, 0], y[:, 0]))
    assert multilabel_ece(prob, y) == pytest.approx(np.mean([direct_ece(prob[:, c], y[:, c]) for c in range(3)]))
    assert multilabel_brier(prob, y) == pytest.approx(
        np.mean([brier_score_loss(y[:, c], prob[:, c]) for c in range(3)])
    )
    p = softmax(rng.normal(size=(400, 4)) * 2)
    labels = rng.integers(0, 4, 400)
    assert top_label_ece(p, labels) == pytest.approx(direct_ece(p.max(1), p.argmax(1) == labels))
    assert multiclass_brier(p, labels) == pytest.approx(np.mean(((p - np.eye(4)[labels]) ** 2).sum(1)))


def test_temperature_scaling_fixes_overconfident_logits() -> None:
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 3, 2000)
    x = rng.normal(size=(2000, 3)) + 1.5 * np.eye(3)[labels]
    calibrated = 1.5 * x  # the exact posterior log-odds of this Gaussian model
    t = fit_temperature(4 * calibrated, labels, multilabel=False)  # 4x too confident
    assert t == pytest.approx(4.0, rel=0.1)


def test_bootstrap_ci_contains_the_point_estimate(binary: tuple[np.ndarray, np.ndarray]) -> None:
    y, score = binary
    y2 = np.stack([y, 1 - y], 1)
    s2 = np.stack([score, -score + np.random.default_rng(6).normal(size=len(y))], 1)
    point = masked_macro_auroc(y2, s2)[0]
    boot = np.concatenate([bootstrap_macro_auroc(y2, s2, w) for w in bootstrap_weights(len(y), 500, seed=0)])
    lo, hi = percentile_ci(boot)
    assert lo < point < hi and hi - lo < 0.2


def test_group_bootstrap_draws_whole_patients() -> None:
    groups = np.array(["a"] * 3 + ["b"] * 5 + ["c"] * 2)
    for w in next(bootstrap_weights(len(groups), 20, seed=0, groups=groups)):
        for g in "abc":
            assert len(set(w[groups == g])) == 1
        assert sum(w[groups == g][0] for g in "abc") == 3


def test_within_group_auroc_is_blind_to_offsets_between_patients() -> None:
    """A score that ranks beats perfectly inside each patient but whose patient offsets invert the pooled
    ranking: pooled AUROC far below chance, within-patient AUROC 1; a patient with too few positives is left
    out; a group bootstrap weights each patient's AUROC by its positives times its multiplicity."""
    rng = np.random.default_rng(0)
    groups = np.repeat(["a", "b", "c"], 100)
    y = np.zeros(300, bool)
    y[:60], y[100:110], y[200:203] = True, True, True  # a: 60 positives, b: 10, c: 3 (too few)
    offset = np.repeat([0.0, 10.0, 20.0], 100)  # the patient with most positives scores lowest
    score = offset + y + 0.1 * rng.random(300)
    assert roc_auc_score(y, score) < 0.3
    assert within_group_auroc(y, score, groups, min_count=10) == pytest.approx(1.0)
    flipped = np.where(groups == "b", offset - y, score)  # b ranks its beats backwards: (60·1 + 10·0)/70
    assert within_group_auroc(y, flipped, groups, min_count=10) == pytest.approx(60 / 70)
    only_b = np.where(groups == "b", 3.0, 0.0)[None]  # a resample drawing b three times and a, c never
    assert within_group_auroc(y, flipped, groups, 10, only_b) == pytest.approx([0.0])
    assert np.isnan(within_group_auroc(y, score, groups, min_count=100))


def test_between_group_share_of_variance() -> None:
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(20), 50)
    identity = rng.normal(size=(20, 8))[groups]  # features that only say which patient
    assert between_group_share(identity, groups) == pytest.approx(1.0)
    assert between_group_share(rng.normal(size=(1000, 8)), groups) < 0.05  # 19/999 expected by chance
    mixed = identity + rng.normal(size=(1000, 8))  # equal variance between and within
    assert 0.4 < between_group_share(mixed, groups) < 0.6


def test_linear_head_matches_sklearn_logistic_regression() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(500, 8)).astype(np.float32)
    y = (x[:, 0] - x[:, 1] + rng.normal(size=500) > 0).astype(int)
    l2 = 0.05
    w, b = fit_head(x, y[:, None], multilabel=True, l2=l2)
    ref = LogisticRegression(C=1 / (l2 * len(x)), tol=1e-10, max_iter=10_000).fit(x, y)
    np.testing.assert_allclose(w[:, 0], ref.coef_[0], atol=1e-3)
    assert b[0] == pytest.approx(ref.intercept_[0], abs=1e-3)


def test_class_weighted_probe_picks_l2_on_validation() -> None:
    rng = np.random.default_rng(8)
    y = rng.choice(3, 900, p=[0.8, 0.15, 0.05])
    x = rng.normal(size=(900, 6)) + np.eye(3, 6)[y] * 2
    weights = balanced_class_weights(y[:600], 3)
    assert weights @ np.bincount(y[:600], minlength=3) == pytest.approx(600)
    probe, scores = fit_probe(x[:600], y[:600], x[600:], y[600:], multilabel=False, class_weights=weights)
    assert scores[probe.l2] == max(scores.values()) > 0.9
    assert probe.scores(x[600:]).sum(1) == pytest.approx(np.ones(300), abs=1e-5)


def test_probe_warns_when_the_chosen_l2_is_at_an_end_of_the_grid(caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(9)
    y = rng.choice(2, 400)
    x = rng.normal(size=(400, 4)) + y[:, None]
    weights = np.ones(2)
    with caplog.at_level("WARNING", logger="ecg_dino.probes.linear"):
        fit_probe(x[:300], y[:300], x[300:], y[300:], multilabel=False, class_weights=weights, grid=(1.0,))
    assert not caplog.records  # one value is no grid to be at the end of
    with caplog.at_level("WARNING", logger="ecg_dino.probes.linear"):
        probe, _ = fit_probe(
            x[:300], y[:300], x[300:], y[300:], multilabel=False, class_weights=weights, grid=(1.0, 0.1)
        )
    assert f"chosen L2 penalty {probe.l2:g} is at an end" in caplog.text
