"""Late fusion of an embedding head and an RR head: w = 0 is the RR head, w is chosen on validation."""

from __future__ import annotations

import numpy as np

from ecg_dino.probes.fusion import FusedHead, fuse_heads
from ecg_dino.probes.linear import fit_probe


def heads(seed: int = 0):
    """An embedding head on features that carry the class and an RR head on features that carry none."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, 600)
    emb = rng.standard_normal((600, 8)) + 2.0 * np.eye(3, 8)[y]
    rr = rng.standard_normal((600, 2))
    ones = np.ones(3)
    emb_head, _ = fit_probe(emb[:400], y[:400], emb[400:500], y[400:500], multilabel=False, class_weights=ones)
    rr_head, _ = fit_probe(rr[:400], y[:400], rr[400:500], y[400:500], multilabel=False, class_weights=ones)
    return emb_head, rr_head, np.hstack([emb, rr]), y


def test_weight_zero_is_the_rr_head_and_one_the_embedding_head() -> None:
    emb_head, rr_head, x, _ = heads()
    np.testing.assert_allclose(FusedHead(emb_head, rr_head, 0.0).scores(x), rr_head.scores(x[:, 8:]), atol=1e-12)
    np.testing.assert_allclose(FusedHead(emb_head, rr_head, 1.0).scores(x), emb_head.scores(x[:, :8]), atol=1e-12)


def test_the_weight_is_chosen_on_validation() -> None:
    """The informative embedding wins weight on the validation beats; every weight's score is reported."""
    emb_head, rr_head, x, y = heads()
    fused, scores = fuse_heads(emb_head, rr_head, x[500:], y[500:])
    assert len(scores) == 11 and scores[f"{fused.weight:g}"] == max(scores.values())
    assert fused.weight >= 0.5 and scores["1"] > scores["0"] + 0.2
