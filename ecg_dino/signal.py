"""The one resampler of ECG signals: ``prepare`` (training shards), embedding, probe conditions, the noise bank.

Polyphase filtering with ``padtype="line"``: the signal is extended past its ends along the line through its
edge samples, so a baseline offset (a 1 mV DC level, 360 -> 250 Hz) makes no transient at the edges; zero
padding made one of 0.15 mV. Training and embedding therefore see the same samples of a record.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from scipy.signal import resample_poly

# Part of the embedding cache key: features computed with another resampler are not reused.
# 1: zero padding at the edges (the run-time path only); 2: ``padtype="line"`` everywhere.
RESAMPLER_VERSION = 2


def resample_ratio(from_hz: float, to_hz: float) -> tuple[int, int]:
    """``(up, down)`` with ``to_hz = from_hz * up / down``, e.g. 360 -> 250 Hz is (25, 36)."""
    ratio = Fraction(to_hz).limit_denominator(1000) / Fraction(from_hz).limit_denominator(1000)
    return ratio.numerator, ratio.denominator


def resample(signal: np.ndarray, from_hz: float, to_hz: float) -> np.ndarray:
    """float32 [..., T] at ``from_hz`` -> [..., ceil(T * up / down)] at ``to_hz`` (computed in float64)."""
    up, down = resample_ratio(from_hz, to_hz)
    if up == down:
        return np.asarray(signal, dtype=np.float32)
    out = resample_poly(np.asarray(signal, dtype=np.float64), up, down, axis=-1, padtype="line")
    return out.astype(np.float32)
