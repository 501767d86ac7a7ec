"""Late fusion of two fitted heads: an embedding head and an RR-interval head, each on its own features.

Concatenating 4·D embedding columns with 7 RR columns under one L2 penalty lets the embedding swamp the RR
features (``probe-mitbih --with-rr`` reports that too). Fusion keeps both heads as fitted and mixes their
log-probabilities, ``w·log p_embedding + (1 − w)·log p_rr``, with ``w`` chosen on the validation beats: ``w = 0``
is the RR head itself, so the fused head can only differ from it where validation says the embedding adds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import log_softmax

from ecg_dino.probes.calibration import softmax
from ecg_dino.probes.linear import LinearProbe, validation_score

WEIGHTS = tuple(np.round(np.linspace(0.0, 1.0, 11), 2))


@dataclass
class FusedHead:
    """``softmax(w·log p_embedding + (1 − w)·log p_rr)`` on features laid out as embedding columns, then RR."""

    embedding: LinearProbe
    rr: LinearProbe
    weight: float

    @property
    def l2(self) -> tuple[float, float]:
        return self.embedding.l2, self.rr.l2

    def logits(self, x: np.ndarray) -> np.ndarray:
        d = len(self.embedding.mean)
        mixed = self.weight * log_softmax(self.embedding.logits(x[:, :d]), axis=1)
        return mixed + (1 - self.weight) * log_softmax(self.rr.logits(x[:, d:]), axis=1)

    def scores(self, x: np.ndarray) -> np.ndarray:
        return softmax(self.logits(x))


def fuse_heads(
    embedding: LinearProbe, rr: LinearProbe, x_val: np.ndarray, y_val: np.ndarray
) -> tuple[FusedHead, dict[str, float]]:
    """The fused head whose ``w`` (of ``WEIGHTS``) scores best on the validation beats (``x_val``: embedding
    columns, then RR), the smallest ``w`` among ties; and every ``w``'s validation macro AUROC."""
    scores = {}
    for w in WEIGHTS:
        scores[f"{w:g}"] = validation_score(FusedHead(embedding, rr, w).scores(x_val), y_val, multilabel=False)
    best = max(WEIGHTS, key=lambda w: (scores[f"{w:g}"], -w))
    return FusedHead(embedding, rr, best), scores
