"""MIT-BIH Arrhythmia Database (and the noisy 118e*/119e* records of the Noise Stress Test Database).

Half-hour two-lead Holter excerpts at 360 Hz with beat and rhythm annotations (``.atr``), cut into
``window_seconds`` windows (default 10 s) named ``mitdb/101_w0003``. Records 201 and 202 come from one
patient, and ``118e24`` etc. are record 118 with noise added, so patient ids follow the original record.
"""

from __future__ import annotations

import re
from typing import Any

from datamodules.readers.wfdb_io import WfdbReader, WfdbSignal

# "69 M 1085 1629 x1": age, sex, then recording details.
_AGE_SEX = re.compile(r"^\s*(\d+|\?)\s+([MF?])\b")
SAME_PATIENT = {"202": "201"}


class MITDBReader(WfdbReader):
    """``root`` holds ``100.hea/.dat/.atr`` … (``records=["118e24"]`` reads NSTDB's noisy records)."""

    source = "mitdb"
    default_window_seconds = 10.0
    annotator = "atr"

    def patient_id(self, name: str) -> str:
        number = re.match(r"\d{3}", name)
        if number is None:
            return f"{self.source}/{name}"
        return f"{self.source}/{SAME_PATIENT.get(number.group(), number.group())}"

    def labels(self, wf: WfdbSignal) -> dict[str, Any]:
        match = _AGE_SEX.match(wf.comments[0]) if wf.comments else None
        if match is None:
            return {}
        age, sex = match.groups()
        return {"age": None if age == "?" else int(age), "sex": None if sex == "?" else sex}
