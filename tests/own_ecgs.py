"""Writers of small datasets of one's own ECGs in the generic sources' formats: WFDB, EDF and NumPy."""

from __future__ import annotations

import json
from pathlib import Path

import edfio
import numpy as np
from fake_layouts import STANDARD_12, digital, synthetic_ecg, write_wfdb_record


def write_wfdb_db(root: Path) -> dict[str, np.ndarray]:
    """``a``: 500 Hz, lower-case leads i, ii, v1; ``b``: 360 Hz, mlii and ch2 (unknown to the vocabulary).
    Returns the stored signals in mV by record name."""
    rng = np.random.default_rng(0)
    out = {}
    for name, fs, leads in (("a", 500, ["i", "ii", "v1"]), ("b", 360, ["mlii", "ch2"])):
        d = digital(synthetic_ecg(rng, len(leads), 10 * fs, fs))
        write_wfdb_record(root, name, d, fs, leads)
        out[name] = d / 1000.0
    return out


def write_edf_db(root: Path) -> np.ndarray:
    """``night.edf``: ECG I (mV, 500 Hz), ECG II (uV, 250 Hz), EEG Fp1 (uV) and ECG V2 in mmHg (not a voltage);
    ``eeg.edf``: EEG only. Returns ECG I in mV."""
    rng = np.random.default_rng(1)
    root.mkdir(parents=True, exist_ok=True)
    lead_i = synthetic_ecg(rng, 1, 5000, 500)[0]
    lead_ii_uv = 1000 * synthetic_ecg(rng, 1, 2500, 250)[0]
    signals = [
        edfio.EdfSignal(lead_i, 500, label="ECG I", physical_dimension="mV", physical_range=(-5, 5)),
        edfio.EdfSignal(lead_ii_uv, 250, label="ECG II", physical_dimension="uV", physical_range=(-5000, 5000)),
        edfio.EdfSignal(rng.normal(size=1000), 100, label="EEG Fp1", physical_dimension="uV", physical_range=(-9, 9)),
        edfio.EdfSignal(rng.normal(size=100), 10, label="ECG V2", physical_dimension="mmHg", physical_range=(-9, 9)),
    ]
    edfio.Edf(signals).write(root / "night.edf")
    eeg = edfio.EdfSignal(rng.normal(size=1000), 100, label="EEG Fp1", physical_dimension="uV", physical_range=(-9, 9))
    edfio.Edf([eeg]).write(root / "eeg.edf")
    return lead_i


def write_numpy_db(root: Path) -> dict[str, str]:
    """Two good arrays (``good12.npy`` in mV with its own sidecar, which replaces the folder's, and ``holter.npz``
    in uV described by the folder's ``ecg.json``) and five bad ones; returns record id -> the expected quarantine
    reason of each bad one."""
    rng = np.random.default_rng(2)
    root.mkdir(parents=True, exist_ok=True)
    np.save(root / "good12.npy", synthetic_ecg(rng, 12, 5000, 500).astype(np.float32))
    (root / "good12.json").write_text(json.dumps({"leads": [n.lower() for n in STANDARD_12], "sample_rate_hz": 500}))
    (root / "ecg.json").write_text(json.dumps({"leads": ["MLII", "V1"], "sample_rate_hz": 360, "units": "uV"}))
    np.savez(root / "holter.npz", signal=1000 * synthetic_ecg(rng, 2, 3600, 360))
    nan = synthetic_ecg(rng, 2, 3600, 360)
    nan[1, 100] = np.nan
    np.save(root / "nan.npy", nan)
    np.save(root / "flat.npy", np.full((2, 3600), 3.0))
    np.save(root / "empty.npy", np.zeros((2, 0)))
    np.save(root / "wrong.npy", synthetic_ecg(rng, 3, 3600, 360))
    np.save(root / "pickled.npy", np.array([{"signal": 1}], dtype=object), allow_pickle=True)
    return {
        "numpy/nan": "nan.npy: NaN or Inf samples",
        "numpy/flat": "flat.npy: every lead is flat",
        "numpy/empty": "empty.npy: zero-length record",
        "numpy/wrong": "wrong.npy: numpy/wrong: signal shape (3, 3600) does not match 2 leads",
        "numpy/pickled": "pickled.npy: unreadable NumPy file",
    }
