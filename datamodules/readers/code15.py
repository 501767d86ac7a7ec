"""CODE-15% (Zenodo 4916206): 345,779 12-lead exams at 400 Hz in HDF5 parts, labels in ``exams.csv``.

Each ``exams_part{i}.hdf5`` holds ``tracings`` [N, 4096, 12] float32 (leads DI, DII, DIII, AVR, AVL, AVF,
V1-V6) and ``exam_id`` [N]; rows with ``exam_id`` 0 are filler and skipped. Signals of ~7 or 10 s are
zero-padded to 4096 samples on both sides; the all-zero rows at either end are stripped.

Units: the release states none; the authors' code README says "scale 1e-4V ... multiplied by 1000 to get
V", which contradicts itself, and the PhysioNet Challenge 2025 converter writes the stored values as mV.
Stored values are read as mV (``mv_per_unit=1.0``); pass another factor if that proves wrong.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from datamodules.readers.base import Reader, RecordRef, make_record
from datamodules.record import BadRecordError, ECGRecord

SAMPLE_RATE_HZ = 400.0
LEADS = ("DI", "DII", "DIII", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6")
LABELS = ("1dAVb", "RBBB", "LBBB", "SB", "ST", "AF", "normal_ecg")


def exam_ids(part: Path) -> np.ndarray:
    """The ``exam_id`` column of one part, after checking the part holds matching ``tracings``."""
    if part.stat().st_size == 0:
        raise BadRecordError(f"{part}: empty file")
    try:
        with h5py.File(part, "r") as f:
            for name in ("tracings", "exam_id"):
                if name not in f:
                    raise BadRecordError(f"{part}: HDF5 file has no {name!r} dataset")
            ids, shape = f["exam_id"][:], f["tracings"].shape
    except OSError as e:
        raise BadRecordError(f"{part}: not a readable HDF5 file ({e})") from e
    if len(shape) != 3 or shape[0] != len(ids) or shape[2] != len(LEADS):
        raise BadRecordError(f"{part}: tracings shape {shape} does not match {len(ids)} exams of 12 leads")
    return ids


def _value(exam: dict[str, Any], name: str, kind: type) -> Any:
    """``exams.csv`` cell converted to ``kind``, None where it is empty."""
    value = exam.get(name)
    return None if pd.isna(value) else kind(value)


@lru_cache(maxsize=32)
def _open(path: str) -> h5py.File:
    return h5py.File(path, "r")


class CODE15Reader(Reader):
    """``root`` holds ``exams.csv`` and ``exams_part*.hdf5``."""

    source = "code15"

    def __init__(self, root: str | Path, *, mv_per_unit: float = 1.0, **filters: Any) -> None:
        super().__init__(root, **filters)
        self.mv_per_unit = mv_per_unit

    def _list(self) -> Iterator[RecordRef]:
        table = pd.read_csv(self.root / "exams.csv").drop_duplicates("exam_id")
        exams = table.set_index("exam_id").to_dict("index")
        for part in sorted(self.root.glob("exams_part*.hdf5")):
            try:
                ids = exam_ids(part)
            except BadRecordError as e:
                yield RecordRef(f"{self.source}/{part.name}", str(part), problem=str(e))
                continue
            for row, exam_id in enumerate(ids.tolist()):
                if exam_id == 0:
                    continue
                record_id, exam = f"{self.source}/{exam_id}", exams.get(exam_id)
                if exam is None:
                    problem = f"{part}: exam_id {exam_id} (row {row}) is not in exams.csv"
                    yield RecordRef(record_id, str(part), index=row, problem=problem)
                    continue
                labels = {name: _value(exam, name, bool) for name in (*LABELS, "is_male") if name in exam}
                labels["age"] = _value(exam, "age", int)
                patient = _value(exam, "patient_id", int)
                patient = "" if patient is None else f"{self.source}/{patient}"
                yield RecordRef(record_id, str(part), index=row, patient_id=patient, labels=labels)

    def read(self, ref: RecordRef) -> ECGRecord:
        tracing = _open(ref.path)["tracings"][ref.index]  # [4096, 12]
        nonzero = np.flatnonzero(np.any(tracing != 0, axis=1))
        if nonzero.size == 0:
            raise BadRecordError(f"{ref.path}: exam {ref.record_id} (row {ref.index}) is an all-zero tracing")
        signal = tracing[nonzero[0] : nonzero[-1] + 1].T * self.mv_per_unit  # [12, T]
        return make_record(ref, self.source, signal, SAMPLE_RATE_HZ, LEADS)
