"""The classical RR-interval baseline for beat classification (after de Chazal et al. 2004): timing only.

Per beat, from the R peaks of its own record: pre-RR, post-RR, local average RR (mean RR of the ±10
surrounding beats), record-average RR, and the first three divided by the record average (normalised, so
patient heart rate drops out). At the record's ends the missing neighbour interval is copied from the
nearest one. Fed to the same linear head as the embeddings.
"""

from __future__ import annotations

import numpy as np

from datamodules.record import BadRecordError
from ecg_dino.features.beats import Beats

LOCAL_BEATS = 10


def record_rr_features(r_seconds: np.ndarray, local_beats: int = LOCAL_BEATS) -> np.ndarray:
    """RR features [n, 7] of one record's R peaks in seconds (sorted)."""
    rr = np.diff(r_seconds)  # rr[i] = interval between beats i and i+1
    pre = np.r_[rr[0], rr]  # [n]
    post = np.r_[rr, rr[-1]]
    kernel = np.ones(2 * local_beats + 1)
    padded = np.pad(pre, local_beats, mode="edge")
    local = np.convolve(padded, kernel, mode="valid") / kernel.sum()
    mean = np.full_like(pre, rr.mean())
    return np.stack([pre, post, local, mean, pre / mean, post / mean, local / mean], axis=1)


def rr_features(beats: Beats, sample_rate_hz: dict[str, float]) -> np.ndarray:
    """RR features [N, 7] of every beat, computed within each record (``sample_rate_hz`` per record id)."""
    out = np.zeros((len(beats), 7))
    for record_id in dict.fromkeys(beats.record_id):
        idx = np.flatnonzero(beats.record_id == record_id)
        if len(idx) < 2:
            raise BadRecordError(f"{record_id}: fewer than two beats, RR intervals undefined")
        order = idx[np.argsort(beats.sample[idx], kind="stable")]
        out[order] = record_rr_features(beats.sample[order] / sample_rate_hz[record_id])
    return out
