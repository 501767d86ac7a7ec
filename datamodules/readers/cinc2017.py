"""PhysioNet/CinC Challenge 2017 (AF classification from a short single-lead ECG): AliveCor recordings, 300 Hz.

Layout (as published): ``RECORDS``, ``REFERENCE.csv`` (``A00001,N`` rows, no header) and ``A00001.{hea,mat}``
pairs, the ``.mat`` in WFDB format 16 behind a 24-byte MATLAB header (``wfdb`` reads it through the header's
byte offset). Every header gives checksum 0, a placeholder, so checksums are not verified; file sizes are.
Labels: ``N`` normal, ``A`` atrial fibrillation, ``O`` other rhythm, ``~`` too noisy. The handheld device
records one lead (lead I equivalent, often inverted), stored as the generic ``ECG`` lead. The challenge
released no patient ids, so each record is its own patient.

The project's fixed split (``split_of``): train A00001–A04500, validation A04501–A05000, test A05001–A06000.
Pretraining may use train and validation only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from datamodules.readers.base import RecordRef, make_record
from datamodules.readers.wfdb_io import WfdbReader, list_headers, read_wfdb
from datamodules.record import BadRecordError, ECGRecord
from ecg_dino.splits import CINC2017_SPLITS

CLASSES = ("N", "A", "O", "~")
RECORD_NAME = re.compile(r"A(\d{5})")


def split_of(name: str) -> str:
    """``A04501`` -> ``val``: the project's fixed record split; records past A06000 are ``unused``."""
    match = RECORD_NAME.fullmatch(name)
    if not match:
        raise ValueError(f"{name!r} is not a CinC-2017 record name (A00001 … A08528)")
    number = int(match.group(1))
    return next((split for split, (lo, hi) in CINC2017_SPLITS.items() if lo <= number <= hi), "unused")


def read_reference(path: Path) -> dict[str, str]:
    """``REFERENCE.csv`` -> {record: class}; a malformed row is an error naming the file and the line."""
    labels: dict[str, str] = {}
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, label = (part.strip() for part in line.partition(","))
        if not sep or not name:
            raise BadRecordError(f"{path}: line {line_no} is not 'record,label': {line!r:.60}")
        labels[name] = label
    return labels


class CinC2017Reader(WfdbReader):
    """``root`` holds ``REFERENCE.csv`` and the ``A*.hea``/``A*.mat`` pairs; ``splits`` keeps those splits."""

    source = "cinc2017"
    default_window_seconds = 10.0
    header_pattern = "A*.hea"

    def __init__(self, root: str | Path, *, splits: Iterable[str] | None = None, **filters: Any) -> None:
        super().__init__(root, **filters)
        unknown = set(splits or ()) - set(CINC2017_SPLITS)
        if unknown:
            raise ValueError(f"unknown CinC-2017 split(s) {sorted(unknown)}; choose from {', '.join(CINC2017_SPLITS)}")
        self.splits = None if splits is None else set(splits)

    def _list(self) -> Iterator[RecordRef]:
        reference = self.root / "REFERENCE.csv"
        if not reference.is_file():
            raise FileNotFoundError(f"{reference}: CinC-2017 label table not found")
        labels = read_reference(reference)
        for header in list_headers(self.root, self.header_pattern):
            name = header.stem
            if not self._wanted(name):
                continue
            if not RECORD_NAME.fullmatch(name):  # a stray file, e.g. "A00001 (1).hea": reported, never fatal
                problem = f"{header}: {name!r} is not a CinC-2017 record name (A00001 … A08528)"
                yield RecordRef(f"{self.source}/{name}", str(header), problem=problem)
                continue
            if self.splits is not None and split_of(name) not in self.splits:
                continue
            ref = RecordRef(record_id=f"{self.source}/{name}", path=str(header), patient_id=self.patient_id(name))
            label = labels.get(name)
            if label is None:
                yield RecordRef(ref.record_id, str(header), problem=f"{reference}: no label row for {name}")
            elif label not in CLASSES:
                problem = f"{reference}: {name} has label {label!r}, not one of {', '.join(CLASSES)}"
                yield RecordRef(ref.record_id, str(header), problem=problem)
            else:
                yield RecordRef(
                    ref.record_id,
                    ref.path,
                    patient_id=ref.patient_id,
                    labels={"rhythm": label, "split": split_of(name)},
                )

    def read(self, ref: RecordRef) -> ECGRecord:
        header = Path(ref.path)
        declared = header.read_text(errors="replace").split(maxsplit=1)[:1] if header.is_file() else []
        if declared and declared[0] != header.stem:
            raise BadRecordError(f"{header}: header names record {declared[0]!r}, not the file's {header.stem!r}")
        wf = read_wfdb(header, verify_checksums=False)  # every CinC-2017 header gives checksum 0, a placeholder
        if len(wf.sig_name) != 1:
            raise BadRecordError(f"{header}: expected one signal, header has {len(wf.sig_name)}")
        return make_record(ref, self.source, wf.signal, wf.sample_rate_hz, ["ECG"])
