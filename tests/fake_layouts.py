"""Writers of small fake datasets in the exact on-disk layouts of HEEDB, CODE-15% and Icentia11k.

The real databases are credentialed or hundreds of gigabytes, so the tests write a few records in the
same files and folders (via ``wfdb``, ``scipy.io`` and ``h5py``) and check that the readers convert them.
Every writer returns the ``FakeRecord``s it wrote, so tests can compute the expected shard contents.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import scipy.io
import wfdb

STANDARD_12 = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


@dataclass(frozen=True)
class FakeRecord:
    """What a writer put on disk for one record (``num_samples`` after any padding is stripped)."""

    record_id: str
    patient_id: str
    sample_rate_hz: float
    num_samples: int
    num_leads: int


def synthetic_ecg(rng: np.random.Generator, num_leads: int, num_samples: int, fs: float) -> np.ndarray:
    """float [leads, samples] in mV: narrow beats every 0.8 s, baseline wander and noise, never flat."""
    t = np.arange(num_samples) / fs
    beats = np.exp(-(((t % 0.8) - 0.4) ** 2) / (2 * 0.012**2))
    wander = 0.1 * np.sin(2 * np.pi * 0.3 * t)
    gains = rng.uniform(0.5, 1.5, size=(num_leads, 1))
    return gains * (beats + wander) + rng.normal(0.0, 0.02, size=(num_leads, num_samples))


def checksums(d_signal: np.ndarray) -> list[int]:
    """WFDB 16-bit checksums of digital samples [leads, samples]."""
    return [int(c) for c in (d_signal.astype(np.int64).sum(axis=1) + 32768) % 65536 - 32768]


def write_wfdb_record(
    directory: Path,
    name: str,
    d_signal: np.ndarray,
    fs: float,
    leads: list[str],
    *,
    gain: float = 1000.0,
    comments: list[str] | None = None,
    mat: bool = False,
) -> Path:
    """Write digital samples [leads, samples] as ``name.hea`` + ``name.dat`` (or MATLAB v4 ``name.mat``)."""
    directory.mkdir(parents=True, exist_ok=True)
    n_sig, sig_len = d_signal.shape
    d_signal = d_signal.astype(np.int16)
    if not mat:
        wfdb.wrsamp(
            name,
            fs=fs,
            units=["mV"] * n_sig,
            sig_name=leads,
            d_signal=d_signal.T,
            fmt=["16"] * n_sig,
            adc_gain=[gain] * n_sig,
            baseline=[0] * n_sig,
            comments=comments or [],
            write_dir=str(directory),
        )
        return directory / f"{name}.hea"
    # MATLAB v4 ``val`` [leads, samples], column-major: a 24-byte prefix, then interleaved int16 frames.
    scipy.io.savemat(directory / f"{name}.mat", {"val": d_signal}, format="4")
    header = wfdb.Record(
        record_name=name,
        n_sig=n_sig,
        fs=fs,
        sig_len=sig_len,
        file_name=[f"{name}.mat"] * n_sig,
        fmt=["16"] * n_sig,
        samps_per_frame=[1] * n_sig,
        byte_offset=[24] * n_sig,
        adc_gain=[gain] * n_sig,
        baseline=[0] * n_sig,
        units=["mV"] * n_sig,
        sig_name=leads,
        adc_res=[16] * n_sig,
        adc_zero=[0] * n_sig,
        init_value=[int(v) for v in d_signal[:, 0]],
        checksum=checksums(d_signal),
        block_size=[0] * n_sig,
        comments=comments or [],
    )
    header.wrheader(write_dir=str(directory))
    return directory / f"{name}.hea"


def digital(signal_mv: np.ndarray, gain: float = 1000.0) -> np.ndarray:
    """mV -> int16 digital samples at ``gain`` units per mV."""
    return np.clip(np.rint(signal_mv * gain), -32767, 32767).astype(np.int16)


def write_heedb(root: Path, rng: np.random.Generator) -> list[FakeRecord]:
    """Institutions I0001 (``.mat``, ``SexDSC``) and I0006 (``.dat``, ``Sex``); 250/500 Hz; 8 or 12 leads."""
    eight = ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]
    specs = {  # site -> (FileName, patient, fs, leads)
        "I0001": [
            ("/S0001/2020/de_0001_a", "1001", 500, STANDARD_12),
            ("/S0001/2020/de_0001_b", "1001", 250, STANDARD_12),
            ("/S0001/2021/de_0002_a", "1002", 500, eight),
        ],
        "I0006": [
            ("WFDB/2013/MUSE_20130101_000000_00001", "6001", 500, STANDARD_12),
            ("WFDB/2014/MUSE_20140101_000000_00002", "6002", 250, STANDARD_12),
        ],
    }
    written = []
    for site, records in specs.items():
        rows = []
        for file_name, patient, fs, leads in records:
            rel = Path(file_name.lstrip("/"))
            directory = root / site / (rel.parent if rel.parts[0] == "WFDB" else Path("WFDB") / rel.parent)
            d = digital(synthetic_ecg(rng, len(leads), 10 * fs, fs))
            write_wfdb_record(directory, rel.name, d, fs, leads, mat=site == "I0001")
            sex_column = "SexDSC" if site == "I0001" else "Sex"
            rows.append(
                {
                    "BDSPPatientID": patient,
                    "FileID": rel.name,
                    "FileName": file_name,
                    sex_column: "Female",
                    "AgeAtAcquisition": 60 * 365.2425,
                    "ECGAcquisitionTime": "2020-01-01 00:00:00",
                }
            )
            record_id = f"heedb/{site}/{rel.name}"
            written.append(FakeRecord(record_id, f"heedb/{patient}", fs, 10 * fs, len(leads)))
        (root / site / "metadata").mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_csv(root / site / "metadata" / "metadata.csv", index=False)
    return written


CODE15_COLUMNS = ["exam_id", "age", "is_male", "nn_predicted_age", "1dAVb", "RBBB", "LBBB", "SB", "AF", "ST"]
CODE15_COLUMNS += ["patient_id", "normal_ecg", "death", "timey", "trace_file"]


def padded_tracing(rng: np.random.Generator, num_samples: int) -> np.ndarray:
    """float32 [4096, 12]: a ``num_samples`` signal centred in zeros, as the release stores it."""
    tracing = np.zeros((4096, 12), dtype=np.float32)
    start = (4096 - num_samples) // 2
    tracing[start : start + num_samples] = synthetic_ecg(rng, 12, num_samples, 400.0).T
    return tracing


def write_code15_part(path: Path, exam_ids: list[int], tracings: np.ndarray) -> None:
    """One ``exams_part{i}.hdf5`` with ``tracings`` [N, 4096, 12] and ``exam_id`` [N]."""
    with h5py.File(path, "w") as f:
        f.create_dataset("tracings", data=tracings.astype(np.float32))
        f.create_dataset("exam_id", data=np.asarray(exam_ids, dtype=np.int64))


def write_exams_csv(root: Path, exams: list[tuple[int, int, str]]) -> None:
    """``exams.csv`` rows for ``(exam_id, patient_id, trace_file)``."""
    rows = [
        dict.fromkeys(CODE15_COLUMNS, False)
        | {"exam_id": e, "age": 50, "nn_predicted_age": 51.5, "patient_id": p, "trace_file": f}
        | {"RBBB": e % 2 == 0, "normal_ecg": e % 2 == 1, "death": "", "timey": ""}
        for e, p, f in exams
    ]
    pd.DataFrame(rows, columns=CODE15_COLUMNS).to_csv(root / "exams.csv", index=False)


def write_code15(root: Path, rng: np.random.Generator) -> list[FakeRecord]:
    """Two parts of 10 s (4000 samples + 48 zeros each side), 7.3 s (2934) and full-length (4096) exams,
    each part ending with the release's filler row (``exam_id`` 0, all zeros)."""
    root.mkdir(parents=True, exist_ok=True)
    parts = {0: [(101, 1, 4000), (102, 1, 2934), (103, 2, 4096)], 1: [(201, 3, 4000), (202, 4, 2934)]}
    written, exams = [], []
    for part, rows in parts.items():
        trace_file = f"exams_part{part}.hdf5"
        tracings = np.stack([padded_tracing(rng, n) for _, _, n in rows] + [np.zeros((4096, 12))])
        write_code15_part(root / trace_file, [e for e, _, _ in rows] + [0], tracings)
        for exam_id, patient, n in rows:
            exams.append((exam_id, patient, trace_file))
            written.append(FakeRecord(f"code15/{exam_id}", f"code15/{patient}", 400.0, n, 12))
    write_exams_csv(root, exams)
    return written


ICENTIA_BEATS = ["N", "N", "S", "N", "V", "Q"]


def write_icentia11k(root: Path, rng: np.random.Generator, seconds: float = 65.0) -> list[FakeRecord]:
    """``RECORDS`` and ``pXX/pXXXXX/pXXXXX_sYY.{hea,dat,atr}``: patient 0 with two segments, patient 1
    with one; 250 Hz single lead, beats N/S/V/Q every 0.8 s and rhythm changes ``(N`` -> ``(AFIB``."""
    fs, written, names = 250, [], []
    for patient, segments in ((0, 2), (1, 1)):
        for segment in range(segments):
            pid = f"p{patient:05d}"
            name = f"{pid}_s{segment:02d}"
            directory = root / f"p{patient // 1000:02d}" / pid
            n = int(seconds * fs)
            write_wfdb_record(directory, name, digital(synthetic_ecg(rng, 1, n, fs)), fs, ["ECG"])
            beats = np.arange(int(0.4 * fs), n, int(0.8 * fs))
            samples = np.concatenate([[0, n // 2], beats])
            symbols = ["+", "+"] + [ICENTIA_BEATS[i % len(ICENTIA_BEATS)] for i in range(len(beats))]
            aux = ["(N", "(AFIB"] + [""] * len(beats)
            order = np.argsort(samples, kind="stable")
            wfdb.wrann(
                name,
                "atr",
                sample=samples[order],
                symbol=[symbols[i] for i in order],
                aux_note=[aux[i] for i in order],
                fs=fs,
                write_dir=str(directory),
            )
            names.append(f"{directory.relative_to(root).as_posix()}/{name}")
            written.append(FakeRecord(f"icentia11k/{name}", f"icentia11k/{pid}", fs, n, 1))
    (root / "RECORDS").write_text("\n".join(names) + "\n")
    return written
