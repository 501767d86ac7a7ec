"""Real ECG noise (MIT-BIH Noise Stress Test Database) injected at a chosen signal-to-noise ratio.

Noise types: ``bw`` baseline wander, ``em`` electrode motion, ``ma`` muscle artefact; two channels each,
30 min at 360 Hz, resampled once to the target rate.

Split (``TRAIN_FRACTION``): of each noise record the first 80% of samples are training noise and the last
20% evaluation noise. Each part is resampled on its own, so no filter tap crosses the boundary and the two
are disjoint. Pretraining draws from ``split="train"``; robustness probes use ``split="eval"``.

SNR definition: ``snr_db = 10 log10(P_signal / P_noise)`` per lead, where P is the mean power of the
mean-removed lead over its valid samples; the added noise is the mean-removed, scaled noise segment, so the
SNR of ``noisy - clean`` against ``clean`` is exactly the requested one.

Without the NSTDB folder a synthetic stand-in of the same three types is used, with a logged warning.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np
from scipy import signal as sps

from ecg_dino.signal import resample

log = logging.getLogger(__name__)

NOISE_TYPES = ("bw", "em", "ma")
TRAIN_FRACTION = 0.8  # first 80% of each noise record: training; last 20%: evaluation
NSTDB_RATE_HZ = 360.0
SYNTHETIC_SECONDS = 30 * 60
DEFAULT_NOISE_DIR = "../shared/data/nstdb"


def noise_folder(nstdb: str | Path | None, data: str | Path) -> Path:
    """``nstdb``, else ``nstdb/`` beside the data folder, else ``DEFAULT_NOISE_DIR`` (the synthetic fallback
    logs when that is missing too)."""
    if nstdb is not None:
        return Path(nstdb)
    sibling = Path(data).resolve().parent / "nstdb"
    return sibling if sibling.is_dir() else Path(DEFAULT_NOISE_DIR)


def _check_split(split: str) -> None:
    if split not in ("train", "eval"):
        raise ValueError(f"split must be 'train' or 'eval', got {split!r}")


def _split_bounds(n_samples: int, split: str) -> slice:
    """The samples of a noise record that belong to ``split`` (see ``TRAIN_FRACTION``)."""
    _check_split(split)
    cut = int(n_samples * TRAIN_FRACTION)
    return slice(0, cut) if split == "train" else slice(cut, n_samples)


def _read_nstdb(noise_dir: Path, noise_type: str, split: str, sample_rate_hz: float) -> np.ndarray:
    """One NSTDB noise record's split, [2, samples] mV at ``sample_rate_hz``."""
    import wfdb

    record = wfdb.rdrecord(str(noise_dir / noise_type))
    noise = record.p_signal.T  # [2, samples] mV (gain 0 in the header -> wfdb's 200 adu/mV)
    return resample(noise[:, _split_bounds(noise.shape[1], split)], record.fs, sample_rate_hz)


def synthetic_noise(noise_type: str, n_samples: int, sample_rate_hz: float, rng: np.random.Generator):
    """Synthetic [2, n_samples] noise of one type, arbitrary scale (it is rescaled to an SNR anyway).

    bw: sinusoids of 0.05-0.5 Hz plus a slow (leaky) random walk; ma: gaussian noise band-passed to
    20-150 Hz (capped below Nyquist); em: piecewise-constant jumps plus exponentially decaying transients.
    """
    fs = sample_rate_hz
    t = np.arange(n_samples) / fs
    if noise_type == "bw":
        freqs = rng.uniform(0.05, 0.5, size=(2, 4, 1))
        phases = rng.uniform(0, 2 * np.pi, size=(2, 4, 1))
        sines = (rng.uniform(0.2, 1.0, size=(2, 4, 1)) * np.sin(2 * np.pi * freqs * t + phases)).sum(axis=1)
        walk = sps.lfilter([1.0], [1.0, -np.exp(-1.0 / (2.0 * fs))], rng.normal(size=(2, n_samples)), axis=1)
        noise = sines + walk / (np.abs(walk).max(axis=1, keepdims=True) + 1e-9)
    elif noise_type == "ma":
        high = min(150.0, 0.45 * fs)
        sos = sps.butter(4, [20.0, high], btype="bandpass", fs=fs, output="sos")
        noise = sps.sosfilt(sos, rng.normal(size=(2, n_samples)), axis=1)
    elif noise_type == "em":
        events = rng.random((2, n_samples)) < 0.5 / fs  # ~0.5 electrode shifts per second
        level = np.cumsum(events, axis=1)  # [2, T] index of the current plateau
        jumps = np.take_along_axis(rng.normal(size=(2, int(level.max()) + 1)), level, axis=1)
        decay = np.exp(-1.0 / (0.3 * fs))  # transients decay with a 0.3 s time constant
        transients = sps.lfilter([1.0], [1.0, -decay], events * rng.normal(0, 3.0, size=(2, n_samples)), axis=1)
        noise = jumps + transients + 0.05 * rng.normal(size=(2, n_samples))
    else:
        raise ValueError(f"unknown noise type {noise_type!r}; known: {', '.join(NOISE_TYPES)}")
    return noise.astype(np.float32)


class NoiseBank:
    """The noise records of one split at one sample rate: ``noise[type]`` is float32 [2, samples] mV.

    Reads NSTDB from ``noise_dir``; if the folder (or a record in it) is missing, or ``noise_dir`` is None,
    falls back to ``synthetic_noise`` and logs a warning naming the folder.
    """

    def __init__(
        self,
        noise_dir: str | Path | None = DEFAULT_NOISE_DIR,
        sample_rate_hz: float = 250.0,
        split: str = "train",
        noise_types: tuple[str, ...] = NOISE_TYPES,
        seed: int = 0,
    ) -> None:
        _check_split(split)
        self.sample_rate_hz = sample_rate_hz
        self.split = split
        self.source = "nstdb"
        missing = [t for t in noise_types if noise_dir is None or not (Path(noise_dir) / f"{t}.hea").exists()]
        if missing:
            where = "noise_dir=None" if noise_dir is None else f"folder {Path(noise_dir).resolve()}"
            log.warning(
                "NSTDB noise records %s not found (%s): using SYNTHETIC %s noise instead of real noise",
                ", ".join(missing),
                where,
                "/".join(noise_types),
            )
            self.source = "synthetic"
        self.noise: dict[str, np.ndarray] = {}
        for i, noise_type in enumerate(noise_types):
            if noise_type in missing:
                n_total = int(SYNTHETIC_SECONDS * sample_rate_hz)
                full = synthetic_noise(noise_type, n_total, sample_rate_hz, np.random.default_rng([seed, i]))
                self.noise[noise_type] = full[:, _split_bounds(n_total, split)]
            else:
                self.noise[noise_type] = _read_nstdb(Path(noise_dir), noise_type, split, sample_rate_hz)
        # Every channel of every type in one array, so one gather serves crops of mixed noise types.
        n_samples = min(x.shape[1] for x in self.noise.values())
        self._channels = np.concatenate([x[:, :n_samples] for x in self.noise.values()])  # [rows, samples]
        self._first_row = np.cumsum([0] + [len(x) for x in self.noise.values()])[:-1]
        self._n_rows = np.array([len(x) for x in self.noise.values()])

    @property
    def noise_types(self) -> tuple[str, ...]:
        return tuple(self.noise)

    def segments(self, type_index: np.ndarray, n_leads: int, crop_samples: int, rng: np.random.Generator):
        """Noise segments [C, n_leads, crop_samples]: crop c gets type ``noise_types[type_index[c]]``, each
        lead a random channel of it and a random start."""
        C = len(type_index)
        if self._channels.shape[1] < crop_samples:
            raise ValueError(f"noise records have {self._channels.shape[1]} samples, fewer than a crop")
        rows = self._first_row[type_index][:, None] + rng.integers(0, self._n_rows[type_index][:, None], (C, n_leads))
        start = rng.integers(0, self._channels.shape[1] - crop_samples + 1, size=(C, n_leads))
        windows = np.lib.stride_tricks.sliding_window_view(self._channels, crop_samples, axis=1)  # view
        return windows[rows, start]  # [C, L, T]


def _centre(x: np.ndarray, time_mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Mean-removed ``x`` [..., T] over ``time_mask`` (zero outside it; None: all samples) and its power."""
    if time_mask is None:
        centred = x - x.mean(axis=-1, keepdims=True)
        return centred, np.einsum("...t,...t->...", centred, centred) / x.shape[-1]
    n = np.maximum(time_mask.sum(axis=-1), 1)
    centred = (x - (x * time_mask).sum(axis=-1, keepdims=True) / n[..., None]) * time_mask
    return centred, np.einsum("...t,...t->...", centred, centred) / n


def mix_at_snr(signal: np.ndarray, noise: np.ndarray, snr_db, valid_samples=None) -> np.ndarray:
    """``signal + k * noise`` with k per lead so that 10 log10(P_signal / P_noise) = ``snr_db``.

    ``signal``, ``noise``: [..., L, T]; ``snr_db`` broadcasts against [...] (one SNR per crop);
    ``valid_samples`` [...] limits power and noise to the real samples (zero-padded tails stay zero).
    Flat (zero-power) leads stay clean.
    """
    T = signal.shape[-1]
    time_mask = None
    if valid_samples is not None and (np.asarray(valid_samples) < T).any():
        time_mask = (np.arange(T) < np.asarray(valid_samples)[..., None])[..., None, :]  # [..., 1, T]
    _, p_signal = _centre(signal, time_mask)
    noise, p_noise = _centre(noise, time_mask)
    target = p_signal / 10.0 ** (np.asarray(snr_db, dtype=np.float64)[..., None] / 10.0)
    k = np.sqrt(np.divide(target, p_noise, out=np.zeros_like(target), where=p_noise > 0))
    return (signal + k[..., None].astype(np.float32) * noise).astype(np.float32, copy=False)


@functools.lru_cache(maxsize=8)
def load_noise_bank(noise_dir: str | None, sample_rate_hz: float, split: str) -> NoiseBank:
    """A cached ``NoiseBank`` of every noise type (the probes call ``add_noise`` many times)."""
    return NoiseBank(noise_dir, sample_rate_hz, split)


def add_noise(
    signal: np.ndarray,
    noise_type: str,
    snr_db: float,
    rng: np.random.Generator,
    split: str = "eval",
    sample_rate_hz: float = 250.0,
    noise_dir: str | None = DEFAULT_NOISE_DIR,
) -> np.ndarray:
    """``signal`` [L, T] mV plus ``noise_type`` noise at ``snr_db`` per lead; deterministic given ``rng``.

    For robustness tests: the default ``split="eval"`` never overlaps the noise seen in pretraining.
    """
    bank = load_noise_bank(noise_dir, float(sample_rate_hz), split)
    if noise_type not in bank.noise_types:
        raise ValueError(f"unknown noise type {noise_type!r}; known: {', '.join(bank.noise_types)}")
    signal = np.asarray(signal, dtype=np.float32)
    noise = bank.segments(np.array([bank.noise_types.index(noise_type)]), *signal.shape, rng)[0]
    return mix_at_snr(signal, noise, snr_db)


class NoiseInjector:
    """Adds noise to each crop with probability ``p``: a random type, SNR uniform in ``snr_db_range``."""

    def __init__(self, bank: NoiseBank, p: float = 0.5, snr_db_range: tuple[float, float] = (-6.0, 24.0)) -> None:
        self.bank = bank
        self.p = p
        self.snr_db_range = snr_db_range

    def __call__(self, crops: dict[str, np.ndarray], rng: np.random.Generator) -> None:
        """Add noise in place to ``crops["signal"]`` [C, L, T], only on present leads and valid samples."""
        signal = crops["signal"]
        C, L, T = signal.shape
        noisy = np.flatnonzero(rng.random(C) < self.p)
        if noisy.size == 0:
            return
        noise_type = rng.integers(0, len(self.bank.noise_types), size=noisy.size)
        snr_db = rng.uniform(*self.snr_db_range, size=noisy.size)
        noise = self.bank.segments(noise_type, L, T, rng) * crops["lead_mask"][noisy, :, None]
        signal[noisy] = mix_at_snr(signal[noisy], noise, snr_db, crops["valid_samples"][noisy])
