"""What every reader shares: the reference to one raw record, the reader interface and window cutting.

A reader lists ``RecordRef``s cheaply (no signal I/O) so ``prepare`` can split the work by record, then
reads one ref at a time into a full-length ``ECGRecord`` at its native rate. Long recordings are cut into
windows by ``cut_windows``; ``prepare`` cuts after resampling so no window starts at a filter edge.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from datamodules.record import BadRecordError, ECGRecord

# A window shorter than this at the end of a recording is dropped: too short to crop from.
MIN_WINDOW_SECONDS = 1.0
# Millivolts per physical unit, by the unit's lower-case name (WFDB headers, EDF dimensions, NumPy sidecars).
MV_PER_UNIT = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3}


@dataclass(frozen=True)
class RecordRef:
    """Where one raw record lives: ``path`` is the file named in quarantine reports.

    ``index`` is the row inside a multi-record file (CODE-15% HDF5); ``patient_id``/``labels`` come from a
    metadata table when the source has one, so workers need not reload it. ``problem`` is set when listing
    already found the record unusable (an unreadable HDF5 file, a malformed table row).
    """

    record_id: str
    path: str
    index: int | None = None
    patient_id: str = ""
    labels: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    problem: str = ""


class Reader(ABC):
    """A raw dataset on disk: ``list_records()`` then ``load(ref)``; iterating yields native-rate windows."""

    source: ClassVar[str]
    default_window_seconds: ClassVar[float | None] = None

    def __init__(
        self,
        root: str | Path,
        *,
        records: Iterable[str] | None = None,
        exclude: Iterable[str] | None = None,
        window_seconds: float | None = None,
        lead_map: dict[str, str] | None = None,
    ) -> None:
        self.root = Path(root)
        self.lead_map = dict(lead_map or {})  # lead names as written in the files -> vocabulary leads
        self.records = None if records is None else {str(n) for n in records}
        self.exclude = {str(n) for n in exclude or ()}
        # None means "the source's default" (10 s for long recordings); 0 keeps whole records.
        chosen = self.default_window_seconds if window_seconds is None else window_seconds
        self.window_seconds = chosen or None

    @abstractmethod
    def _list(self) -> Iterable[RecordRef]:
        """Every record of the source, unfiltered, in any order."""

    @abstractmethod
    def read(self, ref: RecordRef) -> ECGRecord:
        """The whole record at its native rate; raises ``BadRecordError`` naming the file."""

    def load(self, ref: RecordRef) -> ECGRecord:
        """``read(ref)``, or the ``BadRecordError`` that listing already found."""
        if ref.problem:
            raise BadRecordError(ref.problem)
        return self.read(ref)

    def count_windows(self, ref: RecordRef) -> int:
        """How many shard records ``ref`` becomes (a chunking weight); 1 unless the source is windowed."""
        return 1

    def key_files(self, ref: RecordRef) -> list[Path]:
        """The files whose change changes the record (the embedding cache's fingerprint)."""
        return [Path(ref.path)]

    def list_records(self) -> list[RecordRef]:
        """Refs kept by the ``records``/``exclude`` filters, sorted by file so chunking is deterministic."""
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: raw {self.source} folder not found")
        refs = [r for r in self._list() if self._wanted(record_name(r.record_id))]
        return sorted(refs, key=lambda r: (r.path, -1 if r.index is None else r.index))

    def _wanted(self, name: str) -> bool:
        return (self.records is None or name in self.records) and name not in self.exclude

    def __iter__(self) -> Iterator[ECGRecord]:
        for ref in self.list_records():
            yield from cut_windows(self.load(ref), self.window_seconds)


def make_record(
    ref: RecordRef,
    source: str,
    signal: np.ndarray,
    sample_rate_hz: float,
    leads: Iterable[str],
    labels: dict[str, Any] | None = None,
    annotations: dict[str, Any] | None = None,
    notes: Iterable[str] = (),
) -> ECGRecord:
    """The ``ECGRecord`` of ``ref``; a bad lead name becomes a ``BadRecordError`` naming the file."""
    try:
        return ECGRecord(
            signal=signal,
            sample_rate_hz=float(sample_rate_hz),
            leads=tuple(leads),
            record_id=ref.record_id,
            patient_id=ref.patient_id or ref.record_id,
            source=source,
            labels={**ref.labels, **(labels or {})},
            annotations=annotations,
            notes=tuple(notes),
        )
    except ValueError as e:  # UnknownLeadError, duplicate leads, shape mismatch
        raise BadRecordError(f"{ref.path}: {e}") from e


def mv_per_unit(unit: str | None, where: str) -> float:
    """Millivolts per ``unit`` (mV, uV/µV, V; WFDB's default, the millivolt, when empty); ``BadRecordError``
    naming ``where`` for a unit that is not a voltage."""
    if not unit:
        return 1.0
    if unit.strip().lower() not in MV_PER_UNIT:
        raise BadRecordError(f"{where}: unit {unit!r} is not a voltage (mV, uV or V)")
    return MV_PER_UNIT[unit.strip().lower()]


def record_name(record_id: str) -> str:
    """``mitdb/101`` -> ``101``: the name that the records/exclude filters match."""
    return record_id.rsplit("/", 1)[-1]


def num_windows(num_samples: int, sample_rate_hz: float, window_seconds: float | None) -> int:
    """How many windows ``cut_windows`` makes of a recording this long."""
    return len(window_bounds(num_samples, sample_rate_hz, window_seconds))


def window_bounds(num_samples: int, sample_rate_hz: float, window_seconds: float | None) -> list[tuple[int, int]]:
    """``[start, stop)`` of consecutive windows; a tail shorter than ``MIN_WINDOW_SECONDS`` is dropped."""
    if not window_seconds:
        return [(0, num_samples)]
    size = max(1, round(window_seconds * sample_rate_hz))
    min_tail = min(size, math.ceil(MIN_WINDOW_SECONDS * sample_rate_hz))
    bounds = [(s, min(s + size, num_samples)) for s in range(0, num_samples, size)]
    return [(a, b) for a, b in bounds if b - a >= min_tail]


def window_id(record_id: str, k: int) -> str:
    """Id of the ``k``-th window of a record: ``mitdb/101`` -> ``mitdb/101_w0003``."""
    return f"{record_id}_w{k:04d}"


def take_window(record: ECGRecord, start: int, stop: int, record_id: str) -> ECGRecord:
    """Samples ``[start, stop)`` of ``record`` as a record of its own, annotations re-based."""
    return replace(
        record,
        signal=record.signal[:, start:stop],
        record_id=record_id,
        annotations=slice_annotations(record.annotations, start, stop),
    )


def cut_windows(record: ECGRecord, window_seconds: float | None) -> Iterator[ECGRecord]:
    """Consecutive windows ``<id>_w0000, _w0001, …``; the record itself when ``window_seconds`` is None."""
    if not window_seconds:
        yield record
        return
    bounds = window_bounds(record.num_samples, record.sample_rate_hz, window_seconds)
    for k, (start, stop) in enumerate(bounds):
        yield take_window(record, start, stop, window_id(record.record_id, k))


def slice_annotations(annotations: dict[str, Any] | None, start: int, stop: int) -> dict[str, Any] | None:
    """Annotations falling in ``[start, stop)``, their samples shifted so ``start`` becomes 0."""
    if annotations is None:
        return None
    sample = np.asarray(annotations["sample"], dtype=np.int64)
    keep = np.flatnonzero((sample >= start) & (sample < stop))
    out: dict[str, Any] = {"sample": (sample[keep] - start).tolist()}
    for key, values in annotations.items():
        if key != "sample":
            out[key] = [values[i] for i in keep]
    return out
