"""CPSC 2021 (paroxysmal atrial fibrillation): two-lead 200 Hz WFDB records with ``.atr`` beats and rhythms.

Records are named ``data_<patient>_<recording>``; the header comment gives the rhythm class (non-AF,
persistent or paroxysmal AF). Long recordings are cut into ``window_seconds`` windows (default 10 s).
"""

from __future__ import annotations

import re
from typing import Any

from datamodules.readers.wfdb_io import WfdbReader, WfdbSignal


class CPSC2021Reader(WfdbReader):
    """``root`` holds ``data_<patient>_<recording>.hea/.dat/.atr``."""

    source = "cpsc2021"
    default_window_seconds = 10.0
    annotator = "atr"

    def patient_id(self, name: str) -> str:
        match = re.match(r"(data_\d+)_\d+$", name)
        return f"{self.source}/{match.group(1) if match else name}"

    def labels(self, wf: WfdbSignal) -> dict[str, Any]:
        return {"rhythm": wf.comments[0].strip()} if wf.comments else {}
