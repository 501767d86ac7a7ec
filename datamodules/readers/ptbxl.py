"""PTB-XL: 10-s 12-lead ECGs at 500 Hz (``records500/``) or 100 Hz (``records100/``) with SCP-ECG labels.

``ptbxl_database.csv`` gives each ECG's file, patient, ``scp_codes`` (statement -> likelihood, parsed with
``ast.literal_eval``) and ``strat_fold`` (1-10; 9 and 10 are the recommended validation and test folds).
When ``scp_statements.csv`` is present the diagnostic superclasses (NORM, MI, STTC, CD, HYP) are added.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from datamodules.readers.base import Reader, RecordRef, make_record
from datamodules.readers.wfdb_io import read_wfdb
from datamodules.record import ECGRecord

RECORDS_FOLDERS = {"records500": "filename_hr", "records100": "filename_lr"}


def _literal_dict(text: str) -> dict | None:
    """``"{'NORM': 100.0}"`` -> dict, parsed safely; None for anything but a literal dict."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None
    return value if isinstance(value, dict) else None


class PTBXLReader(Reader):
    """``root`` holds ``ptbxl_database.csv``, ``scp_statements.csv`` and ``records500/``/``records100/``."""

    source = "ptbxl"

    def __init__(
        self,
        root: str | Path,
        *,
        folds: Iterable[int] | None = None,
        records_folder: str = "records500",
        **filters: Any,
    ) -> None:
        super().__init__(root, **filters)
        if records_folder not in RECORDS_FOLDERS:
            raise ValueError(f"records_folder must be records500 or records100, not {records_folder!r}")
        self.folds = None if folds is None else set(folds)
        self.records_folder = records_folder

    def _list(self) -> Iterator[RecordRef]:
        table = self.root / "ptbxl_database.csv"
        db = pd.read_csv(table)
        superclass = self._superclasses()
        for row in db.itertuples(index=False):
            fold = int(row.strat_fold)
            if self.folds is not None and fold not in self.folds:
                continue
            record_id = f"{self.source}/{int(row.ecg_id)}"
            header = str(self.root / f"{getattr(row, RECORDS_FOLDERS[self.records_folder])}.hea")
            codes = _literal_dict(row.scp_codes)
            if codes is None:
                problem = f"{table}: ecg_id {row.ecg_id}: scp_codes is not a literal dict: {row.scp_codes!r:.60}"
                yield RecordRef(record_id, str(table), problem=problem)
                continue
            labels = {
                "scp_codes": codes,
                "strat_fold": fold,
                "age": None if math.isnan(row.age) else int(row.age),
                "sex": {0: "M", 1: "F"}.get(row.sex),
            }
            if superclass:
                labels["diagnostic_superclass"] = sorted({superclass[c] for c in codes if c in superclass})
            patient = "" if math.isnan(row.patient_id) else f"{self.source}/{int(row.patient_id)}"
            yield RecordRef(record_id, header, patient_id=patient, labels=labels)

    def _superclasses(self) -> dict[str, str]:
        """SCP code -> diagnostic superclass, for the diagnostic statements of ``scp_statements.csv``."""
        path = self.root / "scp_statements.csv"
        if not path.is_file():
            return {}
        table = pd.read_csv(path, index_col=0)
        diagnostic = table[table["diagnostic"] == 1]
        return diagnostic["diagnostic_class"].dropna().to_dict()

    def read(self, ref: RecordRef) -> ECGRecord:
        wf = read_wfdb(Path(ref.path))
        return make_record(ref, self.source, wf.signal, wf.sample_rate_hz, wf.sig_name)
