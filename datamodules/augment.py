"""Per-sample augmentation for pretraining: a random window of a long record, then multi-crop, noise, gain.

Order in the worker, per sample: window -> crops (``MultiCrop``, which also drops and subsets leads) ->
noise on each crop independently (``NoiseInjector``, so every view gets its own noise) -> amplitude.
Adding noise per crop is the same as cropping a window that was made noisy independently for each view.
With ``clean_teacher_view`` the global crops also keep their signal from before the noise as
``teacher_signal`` (same gain): the teacher's targets then come from the clean view, so the iBOT and Gram
losses, which compare a crop with itself, also teach the student to see through the noise.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from datamodules.multicrop import GROUPS, SIGNAL_KEYS, MultiCrop
from datamodules.noise import NoiseInjector
from datamodules.record import ECGRecord
from ecg_dino.leads import lead_indices


@functools.lru_cache(maxsize=256)
def _lead_ids(leads: tuple[str, ...]) -> np.ndarray:
    """Vocabulary ids of a lead tuple (cached: a dataset has few distinct lead sets)."""
    return np.asarray(lead_indices(leads), dtype=np.int64)


def random_window(signal: np.ndarray, window_samples: int | None, rng: np.random.Generator) -> np.ndarray:
    """A random ``window_samples`` slice of ``signal`` [L, T] (all of it if shorter or ``None``)."""
    n_samples = signal.shape[1]
    if window_samples is None or n_samples <= window_samples:
        return signal
    start = int(rng.integers(0, n_samples - window_samples + 1))
    return signal[:, start : start + window_samples]


class AmplitudeScale:
    """Multiply a sample by one log-uniform factor in ``record_range`` and, per crop and lead, by a
    small log-normal factor (sigma ``lead_std``): gain differs between devices and between leads."""

    def __init__(self, record_range: tuple[float, float] = (0.8, 1.25), lead_std: float = 0.05) -> None:
        self.log_range = (np.log(record_range[0]), np.log(record_range[1]))
        self.lead_std = lead_std

    def __call__(self, groups: list[dict[str, np.ndarray]], rng: np.random.Generator) -> None:
        """Scale each group's ``signal`` [C, L, T] (and ``teacher_signal``, by the same factors) in place."""
        record_scale = np.exp(rng.uniform(*self.log_range))
        for crops in groups:
            C, L, _ = crops["signal"].shape
            lead_scale = record_scale * np.exp(rng.normal(0.0, self.lead_std, size=(C, L)))
            for key in SIGNAL_KEYS:
                if key in crops:
                    crops[key] *= lead_scale[:, :, None].astype(np.float32)


class PretrainTransform:
    """ECGRecord -> multi-crop sample (docs/INTERFACES.md per sample), all randomness from ``rng``."""

    def __init__(
        self,
        multicrop: MultiCrop,
        sample_rate_hz: float,
        window_seconds: float | None = 10.0,
        noise: NoiseInjector | None = None,
        amplitude: AmplitudeScale | None = None,
        clean_teacher_view: bool = False,
    ) -> None:
        self.multicrop = multicrop
        self.clean_teacher_view = clean_teacher_view
        self.sample_rate_hz = sample_rate_hz
        self.window_samples = None if window_seconds is None else round(window_seconds * sample_rate_hz)
        self.noise = noise
        self.amplitude = amplitude

    def __call__(self, record: ECGRecord, rng: np.random.Generator) -> dict[str, Any]:
        if abs(record.sample_rate_hz - self.sample_rate_hz) > 1e-6:
            raise ValueError(
                f"record {record.record_id} ({record.source}) is at {record.sample_rate_hz} Hz, "
                f"expected {self.sample_rate_hz} Hz"
            )
        window = random_window(record.signal, self.window_samples, rng)
        lead_ids = _lead_ids(record.leads)
        sample = self.multicrop(window, lead_ids, self.sample_rate_hz, rng)
        groups = [sample[g] for g in GROUPS]
        if self.noise is not None:
            if self.clean_teacher_view:
                sample["global"]["teacher_signal"] = sample["global"]["signal"].copy()
            for crops in groups:
                self.noise(crops, rng)
        if self.amplitude is not None:
            self.amplitude(groups, rng)
        return sample
