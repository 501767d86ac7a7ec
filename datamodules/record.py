"""The one record type every reader yields and every shard stores."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ecg_dino.leads import canonical_leads


class BadRecordError(ValueError):
    """A record that cannot be used; the message names the file and the problem."""


@dataclass
class ECGRecord:
    """An ECG in physical units: ``signal`` is float32 [leads, samples] in millivolts.

    ``labels`` holds dataset labels (e.g. PTB-XL ``scp_codes``, CinC ``dx`` SNOMED codes); ``annotations``
    holds beat annotations as ``{"sample": int array, "symbol": list[str]}`` when the source has them.
    ``notes`` says what the reader left out of a kept record (an EDF file's non-ECG channels); ``prepare`` and
    ``embed`` report each in their quarantine rows.
    """

    signal: np.ndarray
    sample_rate_hz: float
    leads: tuple[str, ...]
    record_id: str
    patient_id: str
    source: str
    labels: dict[str, Any] = field(default_factory=dict)
    annotations: dict[str, Any] | None = None
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.leads = canonical_leads(self.leads)
        self.signal = np.asarray(self.signal, dtype=np.float32)
        if self.signal.ndim != 2 or self.signal.shape[0] != len(self.leads):
            raise BadRecordError(
                f"{self.record_id}: signal shape {self.signal.shape} does not match {len(self.leads)} leads"
            )

    @property
    def num_samples(self) -> int:
        return int(self.signal.shape[1])

    @property
    def duration_s(self) -> float:
        return self.num_samples / self.sample_rate_hz


def check_signal(record: ECGRecord, where: str) -> None:
    """Raise ``BadRecordError`` naming ``where`` for empty, non-finite or all-flat signals.

    A single flat lead is not an error here: ``prepare`` drops it and reports it.
    """
    if record.num_samples == 0:
        raise BadRecordError(f"{where}: zero-length record")
    if not np.isfinite(record.signal).all():
        raise BadRecordError(f"{where}: NaN or Inf samples")
    if np.all(np.ptp(record.signal, axis=1) == 0):
        raise BadRecordError(f"{where}: every lead is flat (constant)")
