"""EDF, EDF+ and BDF files (read with ``edfio``): one's own recordings from Holter, sleep and device software.

Each channel label goes through the reader's ``lead_map`` and the vocabulary's case-insensitive aliases, as is and
without an ``ECG `` prefix (``ECG II`` -> II). Channels that are not ECG leads (a label neither knows, such as
``EEG Fp1``, or a physical dimension that is not a voltage, such as SpO2 in %) are skipped and reported in the
record's notes; a file left with no ECG channel is a ``BadRecordError``. ECG channels sampled below the file's
highest ECG rate are resampled to it (``ecg_dino.signal.resample``). EDF+ annotations are not read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import edfio
import numpy as np

from datamodules.readers.base import MV_PER_UNIT, Reader, RecordRef, make_record
from datamodules.record import BadRecordError, ECGRecord
from ecg_dino.leads import UnknownLeadError, canonical_lead, map_leads
from ecg_dino.signal import resample

READ = {".edf": edfio.read_edf, ".bdf": edfio.read_bdf}
ECG_PREFIX = re.compile(r"^ECG\s+", re.IGNORECASE)


def ecg_lead(label: str, lead_map: dict[str, str]) -> str | None:
    """The vocabulary lead of a channel label (through ``lead_map``, then without an ``ECG `` prefix), or None."""
    for name in map_leads(dict.fromkeys([label.strip(), ECG_PREFIX.sub("", label.strip())]), lead_map):
        try:
            return canonical_lead(name)
        except UnknownLeadError:
            continue
    return None


class EDFReader(Reader):
    """``root`` holds ``*.edf``/``*.bdf`` files at any depth, one record (and one patient) per file."""

    source = "edf"

    def _list(self) -> Iterator[RecordRef]:
        for path in sorted(p for p in self.root.rglob("*") if p.suffix.lower() in READ and p.is_file()):
            record_id = f"{self.source}/{path.relative_to(self.root).with_suffix('').as_posix()}"
            yield RecordRef(record_id=record_id, path=str(path), patient_id=record_id)

    def read(self, ref: RecordRef) -> ECGRecord:
        path = Path(ref.path)
        try:
            edf = READ[path.suffix.lower()](path)
            channels = [(s.label, s.physical_dimension, s.sampling_frequency, s.data) for s in edf.signals]
        except Exception as e:  # edfio raises ValueError, struct and Unicode errors on malformed headers
            raise BadRecordError(f"{path}: unreadable EDF file ({type(e).__name__}: {e})") from e
        kept, notes = [], []
        for label, unit, rate_hz, data in channels:
            lead = ecg_lead(label, self.lead_map)
            if lead is None:
                notes.append(f"{path}: channel {label!r} skipped: not an ECG lead (map it with a lead map, LABEL=LEAD)")
            elif unit.strip().lower() not in MV_PER_UNIT:
                notes.append(f"{path}: channel {label!r} skipped: physical dimension {unit!r} is not a voltage")
            else:
                kept.append((lead, rate_hz, data * MV_PER_UNIT[unit.strip().lower()]))
        if not kept:
            labels = ", ".join(repr(c[0]) for c in channels) or "none"
            raise BadRecordError(f"{path}: no ECG channel among {labels} (map a label with a lead map, LABEL=LEAD)")
        rate_hz = max(r for _, r, _ in kept)
        signals = [resample(x, r, rate_hz) for _, r, x in kept]
        notes += [f"{path}: lead {lead} resampled from {r:g} to {rate_hz:g} Hz" for lead, r, _ in kept if r != rate_hz]
        num_samples = min(len(x) for x in signals)
        signal = np.stack([x[:num_samples] for x in signals])  # [L, T]
        return make_record(ref, self.source, signal, rate_hz, [lead for lead, _, _ in kept], notes=notes)
