"""Harvard-Emory ECG Database (BDSP, versions 2.0-5.0): 10-s 12-lead WFDB records at 250 or 500 Hz.

Assumed layout (BDSP data description; the layout open-source HEEDB loaders use), under ``root`` or
``root/ECG``, one folder per institution:

    I0001/WFDB/S0001/2020/<name>.hea + <name>.mat     Massachusetts General (WFDB header + MATLAB v4 data)
    I0001/metadata/metadata.csv                        BDSPPatientID, FileName ("/S0001/2020/<name>"),
                                                       SexDSC, AgeAtAcquisition (days), ...
    I0006/WFDB/2013/<name>.hea + <name>.dat            Emory
    I0006/metadata/metadata.csv                        BDSPPatientID, FileName ("WFDB/2013/<name>"), Sex, ...

``FileName`` is relative to ``<site>/WFDB`` when it starts with ``/`` and to ``<site>`` when it starts with
``WFDB/``. Records may hold fewer than 12 leads. The 12SL statements (``<site>/12SL_diagnoses``) are not read.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import pandas as pd

from datamodules.readers.base import Reader, RecordRef, make_record
from datamodules.readers.wfdb_io import read_wfdb
from datamodules.record import ECGRecord

DAYS_PER_YEAR = 365.2425


def header_path(site: Path, file_name: str) -> Path:
    """The ``.hea`` of a metadata ``FileName``, with or without an extension."""
    rel = PurePosixPath(file_name.strip().lstrip("/"))
    if rel.suffix in {".hea", ".mat", ".dat"}:
        rel = rel.with_suffix("")
    base = site if rel.parts[0] == "WFDB" else site / "WFDB"
    return base / rel.parent / f"{rel.name}.hea"


def _column(meta: pd.DataFrame, *names: str) -> pd.Series:
    """The first of ``names`` present in the metadata table, else a column of missing values."""
    for name in names:
        if name in meta:
            return meta[name]
    return pd.Series(None, index=meta.index, dtype=object)


class HEEDBReader(Reader):
    """``root`` holds ``I0001/`` and/or ``I0006/`` (or ``ECG/`` containing them)."""

    source = "heedb"

    def _list(self) -> Iterator[RecordRef]:
        root = self.root / "ECG" if (self.root / "ECG").is_dir() else self.root
        sites = sorted(p for p in root.iterdir() if (p / "metadata" / "metadata.csv").is_file())
        if not sites:
            raise FileNotFoundError(f"{root}: no <site>/metadata/metadata.csv (expected I0001/, I0006/)")
        for site in sites:
            meta = pd.read_csv(site / "metadata" / "metadata.csv", dtype=str)
            sex = _column(meta, "SexDSC", "Sex")  # I0001 and I0006 name it differently
            age = pd.to_numeric(_column(meta, "AgeAtAcquisition"), errors="coerce")
            patients = meta["BDSPPatientID"]
            for file_name, patient, age_days, sex_name in zip(meta["FileName"], patients, age, sex):
                if not isinstance(file_name, str):  # a row without a file is no record
                    continue
                header = header_path(site, file_name)
                if not self._wanted(header.stem):
                    continue
                labels = {
                    "site": site.name,
                    "age": None if math.isnan(age_days) else round(age_days / DAYS_PER_YEAR, 1),
                    "sex": sex_name if isinstance(sex_name, str) else None,
                }
                yield RecordRef(
                    record_id=f"{self.source}/{site.name}/{header.stem}",
                    path=str(header),
                    patient_id=f"{self.source}/{patient.strip()}" if isinstance(patient, str) else "",
                    labels=labels,
                )

    def read(self, ref: RecordRef) -> ECGRecord:
        wf = read_wfdb(Path(ref.path))
        return make_record(ref, self.source, wf.signal, wf.sample_rate_hz, wf.sig_name)
