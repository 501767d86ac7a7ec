"""The one resampler of signals at run time (embedding, probe conditions, the noise bank)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from scipy.signal import resample_poly


def resample(signal: np.ndarray, from_hz: float, to_hz: float) -> np.ndarray:
    """Polyphase resampling of [..., T] along time (exact rational ratio, limited to denominators ≤ 1000)."""
    if abs(from_hz - to_hz) < 1e-9:
        return signal.astype(np.float32, copy=False)
    ratio = Fraction(to_hz / from_hz).limit_denominator(1000)
    return resample_poly(signal, ratio.numerator, ratio.denominator, axis=-1).astype(np.float32)
