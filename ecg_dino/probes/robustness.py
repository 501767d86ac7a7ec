"""Robustness conditions for the probes: NSTDB noise at fixed SNRs (evaluation split) and lead subsets.

Noise is added at the model's sample rate in consecutive ``segment_seconds`` segments (the NSTDB evaluation
split holds 6 min per noise type, shorter than a Holter record), each with its own random noise excerpt and
the requested per-lead SNR (``datamodules.noise.add_noise``). A lead subset is passed to the model as fewer
leads, which the backbone handles by masking absent leads; it is never zero-filled.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from datamodules.noise import NOISE_TYPES, add_noise
from datamodules.record import ECGRecord
from ecg_dino.leads import LIMB_6, STANDARD_12
from ecg_dino.signal import resample

SNRS_DB = (24.0, 18.0, 12.0, 6.0, 0.0, -6.0)
LEAD_SUBSETS: dict[int, tuple[str, ...]] = {
    12: STANDARD_12,
    6: LIMB_6,
    3: ("I", "II", "V2"),
    2: ("II", "V1"),
    1: ("II",),
}


@dataclass(frozen=True)
class Condition:
    """One test-time perturbation: noise of ``noise_type`` at ``snr_db``, or only the leads ``leads``."""

    name: str
    noise_type: str | None = None
    snr_db: float | None = None
    leads: tuple[str, ...] | None = None


def noise_conditions(
    snrs_db: tuple[float, ...] = SNRS_DB, noise_types: tuple[str, ...] = NOISE_TYPES
) -> list[Condition]:
    """Each of ``noise_types`` (NSTDB: bw, em, ma) at every SNR, named like ``em_6dB``."""
    return [Condition(f"{t}_{s:g}dB", noise_type=t, snr_db=s) for t in noise_types for s in snrs_db]


def lead_conditions() -> list[Condition]:
    """The lead subsets (12, 6 limb, 3, 2, lead II), named like ``leads_3``."""
    return [Condition(f"leads_{n}", leads=leads) for n, leads in LEAD_SUBSETS.items()]


def condition_rng(seed: int, condition: Condition, record_index: int) -> np.random.Generator:
    """A generator fixed by (seed, condition, record), so every model sees the same noisy signals."""
    return np.random.default_rng([seed, zlib.crc32(condition.name.encode()), record_index])


def noise_source(noise_dir: Path) -> str:
    """'nstdb' when every real noise record is there, else 'synthetic' (``datamodules.noise`` falls back)."""
    return "nstdb" if all((Path(noise_dir) / f"{t}.hea").is_file() for t in NOISE_TYPES) else "synthetic"


def apply_condition(
    record: ECGRecord,
    condition: Condition,
    sample_rate_hz: float,
    rng: np.random.Generator,
    noise_dir: Path,
    segment_seconds: float = 10.0,
) -> ECGRecord:
    """The record at ``sample_rate_hz`` with the condition applied (noise added or leads dropped)."""
    signal = resample(record.signal, record.sample_rate_hz, sample_rate_hz)
    leads = record.leads
    if condition.leads is not None:
        missing = [lead for lead in condition.leads if lead not in leads]
        if missing:
            raise ValueError(f"{record.record_id}: lacks leads {missing} needed for {condition.name}")
        keep = [leads.index(lead) for lead in condition.leads]
        signal, leads = signal[keep], condition.leads
    if condition.noise_type is not None:
        seg = max(1, round(segment_seconds * sample_rate_hz))
        signal = np.concatenate(
            [
                add_noise(
                    signal[:, s : s + seg],
                    condition.noise_type,
                    condition.snr_db,
                    rng,
                    split="eval",
                    sample_rate_hz=sample_rate_hz,
                    noise_dir=str(noise_dir),
                )
                for s in range(0, signal.shape[1], seg)
            ],
            axis=1,
        )
    return replace(record, signal=signal, sample_rate_hz=sample_rate_hz, leads=leads)
