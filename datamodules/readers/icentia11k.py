"""Icentia11k (PhysioNet ``icentia11k-continuous-ecg`` 1.0): single-lead patch recordings, 250 Hz.

Layout (as published): ``RECORDS`` plus ``p00/p00000/p00000_s00.{hea,dat,atr}``: two-digit patient
groups, one folder per patient, each patient's weeks of recording split into ~70-min segments ``sNN``.
``.atr`` holds beats (N, S, V, Q) and rhythm changes (aux notes such as ``(AFIB``). The CardioSTAT
electrode vector is no standard lead, so the one signal is the generic ``ECG`` lead whatever the header
calls it. Segments are cut into ``window_seconds`` windows (default 10 s).
"""

from __future__ import annotations

import re

from datamodules.readers.base import RecordRef
from datamodules.readers.wfdb_io import WfdbReader, WfdbSignal
from datamodules.record import BadRecordError


class Icentia11kReader(WfdbReader):
    """``root`` is the database folder holding ``RECORDS`` and ``pXX/pXXXXX/pXXXXX_sYY.*``."""

    source = "icentia11k"
    default_window_seconds = 10.0
    annotator = "atr"
    header_pattern = "p*_s*.hea"

    def patient_id(self, name: str) -> str:
        match = re.match(r"(p\d+)_s\d+$", name)
        return f"{self.source}/{match.group(1) if match else name}"

    def leads(self, wf: WfdbSignal, ref: RecordRef) -> list[str]:
        if len(wf.sig_name) != 1:
            raise BadRecordError(f"{ref.path}: expected one signal, header has {len(wf.sig_name)}")
        return ["ECG"]
