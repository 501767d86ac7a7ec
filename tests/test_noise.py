"""Noise injection: SNR as requested, disjoint train/eval noise, loud synthetic fallback."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from datamodules.noise import (
    NOISE_TYPES,
    TRAIN_FRACTION,
    NoiseBank,
    NoiseInjector,
    _split_bounds,
    add_noise,
    synthetic_noise,
)
from ecg_dino.signal import resample

NSTDB = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "nstdb"
NOISE_DIR = str(NSTDB) if (NSTDB / "bw.hea").exists() else None
RATE = 250.0


def _ecg_like(n_leads: int, n_samples: int) -> np.ndarray:
    t = np.arange(n_samples) / RATE
    beats = np.exp(-(((t % 0.8) - 0.4) ** 2) / 2e-4)  # narrow "QRS" every 0.8 s
    return (beats[None, :] * np.arange(1, n_leads + 1)[:, None] + 0.1 * np.sin(t)).astype(np.float32)


def _snr_db(clean: np.ndarray, noisy: np.ndarray) -> np.ndarray:
    power = lambda x: ((x - x.mean(-1, keepdims=True)) ** 2).mean(-1)  # noqa: E731
    return 10 * np.log10(power(clean) / power(noisy - clean))


@pytest.mark.parametrize("noise_type", NOISE_TYPES)
@pytest.mark.parametrize("snr_db", [-6.0, 0.0, 12.0, 24.0])
@pytest.mark.parametrize("noise_dir", [NOISE_DIR, None], ids=["nstdb", "synthetic"])
def test_add_noise_hits_the_requested_snr(noise_type, snr_db, noise_dir):
    clean = _ecg_like(3, 2500)
    noisy = add_noise(clean, noise_type, snr_db, np.random.default_rng(0), split="eval", noise_dir=noise_dir)
    assert noisy.shape == clean.shape and noisy.dtype == np.float32
    np.testing.assert_allclose(_snr_db(clean, noisy), snr_db, atol=0.5)
    again = add_noise(clean, noise_type, snr_db, np.random.default_rng(0), split="eval", noise_dir=noise_dir)
    np.testing.assert_array_equal(noisy, again)


def test_injector_noises_valid_samples_of_present_leads_only():
    bank = NoiseBank(NOISE_DIR, RATE, "train")
    signal = np.zeros((4, 3, 500), np.float32)
    signal[:, :2, :400] = _ecg_like(2, 400)
    crops = {
        "signal": signal,
        "lead_mask": np.array([[True, True, False]] * 4),
        "valid_samples": np.full(4, 400),
    }
    clean = signal.copy()
    NoiseInjector(bank, p=1.0, snr_db_range=(6.0, 6.0))(crops, np.random.default_rng(1))
    assert (signal[:, 2] == 0).all() and (signal[:, :, 400:] == 0).all()
    np.testing.assert_allclose(_snr_db(clean[:, :2, :400], signal[:, :2, :400]), 6.0, atol=0.5)


def test_train_and_eval_noise_are_disjoint():
    n = 1000
    train, evaluation = _split_bounds(n, "train"), _split_bounds(n, "eval")
    assert train.stop == evaluation.start == int(TRAIN_FRACTION * n) and evaluation.stop == n
    if NOISE_DIR is None:
        return
    import wfdb

    raw = wfdb.rdrecord(str(NSTDB / "ma")).p_signal.T
    cut = int(TRAIN_FRACTION * raw.shape[1])
    for split, part in (("train", raw[:, :cut]), ("eval", raw[:, cut:])):
        bank = NoiseBank(NOISE_DIR, RATE, split, noise_types=("ma",))
        np.testing.assert_array_equal(bank.noise["ma"], resample(part, 360.0, RATE))


def test_missing_nstdb_falls_back_to_synthetic_with_a_warning(tmp_path, caplog):
    missing = tmp_path / "no_nstdb_here"
    with caplog.at_level(logging.WARNING, logger="datamodules.noise"):
        train = NoiseBank(missing, RATE, "train")
    assert train.source == "synthetic"
    assert any("no_nstdb_here" in r.getMessage() and "SYNTHETIC" in r.getMessage() for r in caplog.records)
    evaluation = NoiseBank(missing, RATE, "eval")
    for t in NOISE_TYPES:  # the two splits are the two ends of one synthetic record
        assert train.noise[t].shape[1] == pytest.approx(4 * evaluation.noise[t].shape[1], abs=1)
        assert np.isfinite(train.noise[t]).all()


@pytest.mark.parametrize(("noise_type", "band_hz"), [("bw", (0.0, 1.0)), ("ma", (15.0, 125.0))])
def test_synthetic_noise_lives_in_its_band(noise_type, band_hz):
    x = synthetic_noise(noise_type, 60 * 250, RATE, np.random.default_rng(0))[0]
    power = np.abs(np.fft.rfft(x - x.mean())) ** 2
    freqs = np.fft.rfftfreq(x.size, 1 / RATE)
    in_band = power[(freqs >= band_hz[0]) & (freqs <= band_hz[1])].sum()
    assert in_band / power.sum() > 0.9
