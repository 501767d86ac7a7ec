"""Late fusion of an embedding head and an RR head: w = 0 is the RR head; w is chosen by patient-grouped CV."""

from __future__ import annotations

import numpy as np
import pytest

from ecg_dino.probes.fusion import FusedHead, fuse_heads, patient_folds
from ecg_dino.probes.linear import fit_probe


def heads(seed: int = 0):
    """An embedding head on features that carry the class and an RR head on features that carry none; beats
    of 20 patients."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, 600)
    emb = rng.standard_normal((600, 8)) + 2.0 * np.eye(3, 8)[y]
    rr = rng.standard_normal((600, 2))
    ones = np.ones(3)
    emb_head, _ = fit_probe(emb[:400], y[:400], emb[400:500], y[400:500], multilabel=False, class_weights=ones)
    rr_head, _ = fit_probe(rr[:400], y[:400], rr[400:500], y[400:500], multilabel=False, class_weights=ones)
    patients = np.array([f"p{i % 20}" for i in range(600)], dtype=object)
    return emb_head, rr_head, np.hstack([emb, rr]), y, patients


def test_weight_zero_is_the_rr_head_and_one_the_embedding_head() -> None:
    emb_head, rr_head, x, _, _ = heads()
    np.testing.assert_allclose(FusedHead(emb_head, rr_head, 0.0).scores(x), rr_head.scores(x[:, 8:]), atol=1e-12)
    np.testing.assert_allclose(FusedHead(emb_head, rr_head, 1.0).scores(x), emb_head.scores(x[:, :8]), atol=1e-12)


def test_folds_keep_each_patient_whole_and_are_balanced() -> None:
    """No patient is split between folds (its beats would be seen out of fold), folds differ by at most one
    patient, the same seed deals the same folds, and one patient is refused."""
    patients = np.array([f"p{i % 7}" for i in range(70)], dtype=object)
    fold = patient_folds(patients, 3, seed=1)
    for p in np.unique(patients):
        assert len(set(fold[patients == p])) == 1
    per_fold = [len(set(patients[fold == k])) for k in range(3)]
    assert sorted(per_fold) == [2, 2, 3]
    np.testing.assert_array_equal(fold, patient_folds(patients, 3, seed=1))  # seeded: the same folds again
    with pytest.raises(ValueError, match="at least 2 training patients, got 1"):
        patient_folds(np.array(["p0"] * 5, dtype=object), 3, seed=1)


def test_the_weight_is_chosen_by_cross_validation_over_patients() -> None:
    """The informative embedding wins weight out of fold; every weight's out-of-fold score is reported, and the
    fused head keeps the heads as fitted."""
    emb_head, rr_head, x, y, patients = heads()
    fused, scores = fuse_heads(emb_head, rr_head, x[:, :8], x[:, 8:], y, patients, seed=0)
    assert len(scores) == 11 and scores[f"{fused.weight:g}"] == max(scores.values())
    assert fused.weight >= 0.5 and scores["1"] > scores["0"] + 0.2
    assert fused.embedding is emb_head and fused.rr is rr_head


def test_out_of_fold_scores_do_not_see_the_held_out_patient() -> None:
    """A patient code (one column per patient, which carries the class in sample) is no better than chance out of
    fold: a held-out patient's column is constant in its fold's training beats, so its weight stays 0 and only
    the fold's bias is left, which leans towards the training patients' classes, not the held-out ones."""
    rng = np.random.default_rng(0)
    patients = np.repeat(np.arange(20), 30).astype(str).astype(object)
    y = np.repeat(rng.integers(0, 2, 20), 30)  # every beat of a patient has its class
    patient_code = np.eye(20)[np.repeat(np.arange(20), 30)]
    rr = rng.standard_normal((600, 2))
    ones = np.ones(2)
    emb_head, in_sample = fit_probe(patient_code, y, patient_code, y, multilabel=False, class_weights=ones)
    rr_head, _ = fit_probe(rr, y, rr, y, multilabel=False, class_weights=ones)
    _, scores = fuse_heads(emb_head, rr_head, patient_code, rr, y, patients, seed=0)
    assert in_sample[emb_head.l2] == 1.0 and scores["1"] <= 0.5
