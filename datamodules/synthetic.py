"""The embedded default dataset: simulated 12-, 2- and 1-lead ECGs as shards, built once and cached.

Each simulated patient is one 12-lead ECGSYN run (neurokit2 ``ecg_simulate(method="multileads")``, lead
order I, II, III, aVR, aVL, aVF, V1-V6) with its own heart rate, heart-rate variability and P-QRS-T shape
(jittered ECGSYN angles, amplitudes and widths). Every record of the patient is a random stretch of that
run, time-warped to a heart rate within ±10%, with its own gain per lead, baseline wander and white noise.
Records rotate over three sources: ``synthetic_12lead`` (all 12 leads), ``synthetic_2lead`` (Holter-style
MLII + V1) and ``synthetic_1lead`` (a single patch lead ``ECG``). neurokit2's multilead model gives its lead
II a small QRS under a large T wave, so MLII and ECG are taken from its lead I, whose P-QRS-T is closest to
ECGSYN's classic MLII-like waveform.

The cache directory holds the shards and a ``manifest.json`` in the ``prepare`` format plus a ``synthetic``
entry with the generation parameters; it is rebuilt only when the manifest is missing or they differ.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from datamodules.record import ECGRecord
from datamodules.shards import write_shard
from ecg_dino.leads import STANDARD_12

log = logging.getLogger(__name__)

DEFAULT_CACHE_DIR = "data_cache/synthetic"
GENERATOR_VERSION = 1
# source -> ((simulated lead, lead name in the record), ...)
SOURCES: dict[str, tuple[tuple[str, str], ...]] = {
    "synthetic_12lead": tuple((lead, lead) for lead in STANDARD_12),
    "synthetic_2lead": (("I", "MLII"), ("V1", "V1")),
    "synthetic_1lead": (("I", "ECG"),),
}
ECGSYN_TI = np.array([-70.0, -15.0, 0.0, 15.0, 100.0])  # P Q R S T angles (degrees), neurokit2 defaults
ECGSYN_AI = np.array([1.2, -5.0, 30.0, -7.5, 0.75])
ECGSYN_BI = np.array([0.25, 0.1, 0.1, 0.1, 0.4])
MAX_WARP = 0.1  # records differ from their patient's heart rate by up to ±10%


def _simulate_patient(seed: int, seconds: float, sample_rate_hz: int) -> tuple[np.ndarray, float]:
    """One patient's 12-lead ECGSYN run, float32 [12, samples] mV, and its mean heart rate."""
    import neurokit2 as nk

    rng = np.random.default_rng(seed)
    heart_rate = float(rng.uniform(50, 110))
    ecg = nk.ecg_simulate(
        duration=seconds,
        sampling_rate=sample_rate_hz,
        method="multileads",
        heart_rate=heart_rate,
        heart_rate_std=float(rng.uniform(1, 5)),
        noise=0,
        random_state=seed,
        ti=ECGSYN_TI + rng.uniform(-8, 8, size=5),
        ai=ECGSYN_AI * rng.uniform(0.7, 1.3, size=5),
        bi=ECGSYN_BI * rng.uniform(0.8, 1.2, size=5),
    )
    return ecg[list(STANDARD_12)].to_numpy(dtype=np.float32).T, heart_rate


def _patient_records(
    patient: int, seed: int, record_ids: list[int], duration_s: float, sample_rate_hz: float
) -> list[ECGRecord]:
    """The records of one simulated patient (record ``j`` belongs to source ``j % 3``)."""
    sim_rate = round(sample_rate_hz)
    run, heart_rate = _simulate_patient(seed, duration_s * (1 + MAX_WARP) + 1.0, sim_rate)
    rng = np.random.default_rng([seed, 1])
    n_out = round(duration_s * sample_rate_hz)
    t = np.arange(n_out) / sample_rate_hz
    records = []
    for j in record_ids:
        source = list(SOURCES)[j % len(SOURCES)]
        warp = rng.uniform(1 - MAX_WARP, 1 + MAX_WARP)  # heart rate multiplier
        span = duration_s * warp * sim_rate  # simulated samples squeezed into the record
        pos = rng.uniform(0, run.shape[1] - 1 - span) + np.arange(n_out) * (span / n_out)
        i0, frac = pos.astype(np.int64), (pos % 1).astype(np.float32)
        signal = run[:, i0] * (1 - frac) + run[:, i0 + 1] * frac  # [12, T] linear interpolation
        lead_rows = [STANDARD_12.index(sim) for sim, _ in SOURCES[source]]
        signal = signal[lead_rows] * rng.uniform(0.5, 1.5) * rng.lognormal(0, 0.2, size=(len(lead_rows), 1))
        wander = rng.uniform(0, 0.15, (len(lead_rows), 1)) * np.sin(
            2 * np.pi * rng.uniform(0.05, 0.5) * t + rng.uniform(0, 2 * np.pi, (len(lead_rows), 1))
        )
        signal = signal + wander + rng.normal(0, rng.uniform(0.002, 0.03), size=signal.shape)
        records.append(
            ECGRecord(
                signal=signal,
                sample_rate_hz=sample_rate_hz,
                leads=tuple(name for _, name in SOURCES[source]),
                record_id=f"{source}_{j:05d}",
                patient_id=f"synthetic_{patient:04d}",
                source=source,
                labels={"heart_rate_bpm": round(heart_rate * warp, 1)},
            )
        )
    return records


def _generate(params: dict, num_workers: int) -> list[ECGRecord]:
    """All records, patients simulated in parallel processes; the result depends only on ``params``."""
    n_records, per_patient = params["num_records"], params["records_per_patient"]
    n_patients = -(-n_records // per_patient)
    seeds = [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(params["seed"]).spawn(n_patients)]
    record_ids = [list(range(p * per_patient, min((p + 1) * per_patient, n_records))) for p in range(n_patients)]
    simulate = functools.partial(
        _patient_records, duration_s=params["duration_s"], sample_rate_hz=params["sample_rate_hz"]
    )
    if num_workers <= 1:
        chunks = list(map(simulate, range(n_patients), seeds, record_ids))
    else:
        import neurokit2  # noqa: F401  (imported once here, inherited by the forked workers)

        with ProcessPoolExecutor(num_workers) as pool:
            chunks = list(pool.map(simulate, range(n_patients), seeds, record_ids))
    return [record for chunk in chunks for record in chunk]


def _write(records: list[ECGRecord], out_dir: Path, params: dict) -> None:
    """Shards (one per source), an empty quarantine and the manifest (last, atomically), as ``prepare``."""
    for old in out_dir.glob("*.parquet"):
        old.unlink()
    shards, sources = [], {}
    for source in SOURCES:
        chunk = [r for r in records if r.source == source]
        if not chunk:
            continue
        entry = write_shard(chunk, out_dir / f"{source}.parquet", row_group_size=64)
        shards.append({**entry, "source": source})
        samples = entry["num_samples"]
        sources[source] = {
            "records": entry["num_records"],
            "samples": samples,
            "seconds": samples / params["sample_rate_hz"],
        }
    manifest = {
        "target_sample_rate_hz": params["sample_rate_hz"],
        "shards": shards,
        "sources": sources,
        "quarantine_count": 0,
        "synthetic": params,
    }
    (out_dir / "quarantine.csv").write_text("file,record_id,reason\n")  # nothing simulated is bad
    tmp = out_dir / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2))
    tmp.replace(out_dir / "manifest.json")


def build_synthetic_dataset(
    cache_dir: str | Path = DEFAULT_CACHE_DIR,
    num_records: int = 512,
    sample_rate_hz: float = 250.0,
    duration_s: float = 10.0,
    records_per_patient: int = 16,
    seed: int = 0,
    num_workers: int | None = None,
) -> Path:
    """Build (or reuse) the synthetic shard directory and return its path."""
    out_dir = Path(cache_dir)
    params = {
        "version": GENERATOR_VERSION,
        "num_records": num_records,
        "sample_rate_hz": float(sample_rate_hz),
        "duration_s": float(duration_s),
        "records_per_patient": records_per_patient,
        "seed": seed,
    }
    manifest = out_dir / "manifest.json"
    if manifest.exists() and json.loads(manifest.read_text()).get("synthetic") == params:
        return out_dir
    start = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    if num_workers is None:
        num_workers = len(os.sched_getaffinity(0))
    records = _generate(params, min(num_workers, -(-num_records // records_per_patient)))
    _write(records, out_dir, params)
    log.info("built %d synthetic ECGs in %s in %.1f s", len(records), out_dir, time.perf_counter() - start)
    return out_dir
