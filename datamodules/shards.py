"""Parquet shards of ECG records: int16 samples with a per-lead scale, one row per record.

Layout of a shard (one Parquet file, row groups of ``row_group_size`` records so readers can stream and
split work by row group):

| column | type | meaning |
|---|---|---|
| record_id, patient_id, source | string | identity; patient ids keep splits patient-disjoint |
| sample_rate_hz | float32 | the target rate every record was resampled to |
| leads | list<string> | canonical lead names, one per signal row |
| num_samples | int32 | samples per lead |
| scale_mv | list<float32> | millivolts per int16 unit, per lead |
| signal | binary | int16 little-endian, lead-major [leads, samples] |
| labels | string | JSON of the record's labels |
| annotations | string | JSON of beat annotations, or null |
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from datamodules.record import ECGRecord
from ecg_dino.files import file_sha256

SCHEMA = pa.schema(
    [
        ("record_id", pa.string()),
        ("patient_id", pa.string()),
        ("source", pa.string()),
        ("sample_rate_hz", pa.float32()),
        ("leads", pa.list_(pa.string())),
        ("num_samples", pa.int32()),
        ("scale_mv", pa.list_(pa.float32())),
        ("signal", pa.binary()),
        ("labels", pa.string()),
        ("annotations", pa.string()),
    ]
)
INT16_MAX = 32767
# ECG front ends resolve 1–5 µV; a finer step stores only noise bits, which zstd cannot compress.
MIN_STEP_MV = 1e-3


def quantise(signal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float32 [L, T] mV -> (int16 [L, T], scale_mv [L]): a 1 µV step, coarser only where a lead's peak
    exceeds ±32.767 mV."""
    peak = np.abs(signal).max(axis=1)
    scale = np.maximum(peak / INT16_MAX, MIN_STEP_MV).astype(np.float32)
    q = np.rint(signal / scale[:, None]).clip(-INT16_MAX, INT16_MAX).astype("<i2")
    return q, scale


def _json_default(o: object) -> object:
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _row(record: ECGRecord) -> dict:
    q, scale = quantise(record.signal)
    return {
        "record_id": record.record_id,
        "patient_id": record.patient_id,
        "source": record.source,
        "sample_rate_hz": float(record.sample_rate_hz),
        "leads": list(record.leads),
        "num_samples": record.num_samples,
        "scale_mv": scale.tolist(),
        "signal": q.tobytes(),
        "labels": json.dumps(record.labels, default=_json_default),
        "annotations": None if record.annotations is None else json.dumps(record.annotations, default=_json_default),
    }


def write_shard(records: Iterable[ECGRecord], path: str | Path, row_group_size: int = 256) -> dict:
    """Write records to ``path`` atomically (temp file + rename); return ``{path, num_records, num_samples,
    sha256, bytes}`` for the manifest."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    n_records = n_samples = 0
    with pq.ParquetWriter(tmp, SCHEMA, compression="zstd") as writer:
        batch: list[dict] = []
        for record in records:
            batch.append(_row(record))
            n_records += 1
            n_samples += record.num_samples
            if len(batch) == row_group_size:
                writer.write_table(pa.Table.from_pylist(batch, schema=SCHEMA), row_group_size=row_group_size)
                batch = []
        if batch:
            writer.write_table(pa.Table.from_pylist(batch, schema=SCHEMA), row_group_size=row_group_size)
    tmp.replace(path)
    return {
        "path": path.name,
        "num_records": n_records,
        "num_samples": n_samples,
        "sha256": file_sha256(path),
        "bytes": path.stat().st_size,
    }


def num_row_groups(path: str | Path) -> int:
    return pq.ParquetFile(path).num_row_groups


def decode_row(row: dict) -> ECGRecord:
    """One Parquet row (as a dict) -> ECGRecord in float32 millivolts."""
    n_leads = len(row["leads"])
    q = np.frombuffer(row["signal"], dtype="<i2").reshape(n_leads, row["num_samples"])
    signal = q.astype(np.float32) * np.asarray(row["scale_mv"], dtype=np.float32)[:, None]
    return ECGRecord(
        signal=signal,
        sample_rate_hz=float(row["sample_rate_hz"]),
        leads=tuple(row["leads"]),
        record_id=row["record_id"],
        patient_id=row["patient_id"],
        source=row["source"],
        labels=json.loads(row["labels"]) if row["labels"] else {},
        annotations=json.loads(row["annotations"]) if row["annotations"] else None,
    )


def iter_records(path: str | Path, row_groups: Sequence[int] | None = None) -> Iterator[ECGRecord]:
    """Stream the records of one shard, optionally only the given row groups (for rank × worker splits)."""
    pf = pq.ParquetFile(path)
    groups = range(pf.num_row_groups) if row_groups is None else row_groups
    for g in groups:
        for row in pf.read_row_group(g).to_pylist():
            yield decode_row(row)
