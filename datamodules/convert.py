"""One raw record -> shard records at the target rate, and one chunk of records -> one Parquet shard.

Per record: resample once with ``ecg_dino.signal.resample`` (the resampler embedding uses too, so training and
embedding see the same samples) -> cut into windows -> drop leads that are flat in a window. A bad record never
stops a chunk: it becomes a quarantine row naming the file; a reader's notes on a kept record (channels it
skipped) become rows too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from datamodules.readers import Reader, RecordRef
from datamodules.readers.base import take_window, window_bounds, window_id
from datamodules.record import BadRecordError, ECGRecord, check_signal
from datamodules.shards import write_shard
from ecg_dino.signal import resample, resample_ratio


def rescale_annotations(
    annotations: dict[str, Any] | None, up: int, down: int, num_in: int, num_out: int
) -> dict[str, Any] | None:
    """Annotation samples mapped to the new rate; those outside the native signal are dropped."""
    if annotations is None:
        return None
    sample = np.asarray(annotations["sample"], dtype=np.int64)
    keep = np.flatnonzero((sample >= 0) & (sample < num_in))
    moved = np.minimum(np.rint(sample[keep] * up / down), num_out - 1)
    out: dict[str, Any] = {"sample": moved.astype(np.int64)}
    for key, values in annotations.items():
        if key != "sample":
            out[key] = [values[i] for i in keep]
    return out


def convert_record(
    record: ECGRecord, sample_rate_hz: float, window_seconds: float | None, where: str
) -> tuple[list[ECGRecord], list[tuple[str, str]]]:
    """Shard records of one checked record, and ``(record_id, reason)`` notes for dropped leads/windows.

    Flatness is judged on the native samples each window covers, before the filter smears neighbours in.
    """
    up, down = resample_ratio(record.sample_rate_hz, sample_rate_hz)
    signal = resample(record.signal, record.sample_rate_hz, sample_rate_hz)  # [L, T']
    n_in, n_out = record.num_samples, signal.shape[1]
    resampled = replace(
        record,
        signal=signal,
        sample_rate_hz=float(sample_rate_hz),
        annotations=rescale_annotations(record.annotations, up, down, n_in, n_out),
    )
    windows, notes = [], []
    for k, (start, stop) in enumerate(window_bounds(n_out, sample_rate_hz, window_seconds)):
        record_id = window_id(record.record_id, k) if window_seconds else record.record_id
        native = record.signal[:, start * down // up : min(n_in, -(-stop * down // up))]
        flat = np.ptp(native, axis=1) == 0
        if flat.all():
            notes.append((record_id, f"{where}: every lead is flat (constant) in window {k}; window skipped"))
            continue
        window = take_window(resampled, start, stop, record_id)
        if flat.any():
            dropped = [lead for lead, f in zip(window.leads, flat) if f]
            reason = f"{where}: flat (constant) lead {', '.join(dropped)} dropped; record kept"
            notes.append((record_id, reason))
            window = replace(
                window,
                signal=window.signal[~flat],
                leads=tuple(lead for lead, f in zip(window.leads, flat) if not f),
            )
        windows.append(window)
    return windows, notes


def reason_for(error: Exception, ref: RecordRef) -> str:
    """A quarantine reason naming the file: a ``BadRecordError`` already does, anything else gets the path."""
    if isinstance(error, BadRecordError):
        return str(error)
    return f"{ref.path}: {type(error).__name__}: {error}"


@dataclass(frozen=True)
class ChunkTask:
    """One shard to write: the refs of one chunk and how to convert them."""

    refs: tuple[RecordRef, ...]
    path: Path
    sample_rate_hz: float
    window_seconds: float | None
    row_group_size: int


def convert_chunk(reader: Reader, task: ChunkTask) -> dict[str, Any]:
    """Write the shard of one chunk; return its manifest entry, quarantine rows included."""
    quarantine: list[list[str]] = []

    def records():
        for ref in task.refs:
            try:
                record = reader.load(ref)
                check_signal(record, ref.path)
                windows, notes = convert_record(record, task.sample_rate_hz, task.window_seconds, ref.path)
            except Exception as e:  # one bad record must not stop the conversion of the rest
                quarantine.append([ref.path, ref.record_id, reason_for(e, ref)])
                continue
            notes = [(record.record_id, note) for note in record.notes] + notes
            quarantine.extend([ref.path, record_id, reason] for record_id, reason in notes)
            yield from windows

    entry = write_shard(records(), task.path, task.row_group_size)
    return {
        **entry,
        "source": reader.source,
        "records_sha256": records_key(task.refs),
        "quarantine": quarantine,
    }


def records_key(refs: tuple[RecordRef, ...] | list[RecordRef]) -> str:
    """Fingerprint of a chunk's record ids: a finished shard is reused only for the same records."""
    return hashlib.sha256("\n".join(r.record_id for r in refs).encode()).hexdigest()
