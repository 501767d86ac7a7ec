"""One WFDB record read with the checks ``wfdb`` skips: file sizes against the header, checksums, units.

``wfdb`` reads a header that promises more samples than the file holds as a reshape error, and one that
promises fewer as a silently shortened record; both are reported here as the header/file disagreement
they are, naming the files.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import wfdb

from datamodules.readers.base import Reader, RecordRef, make_record, mv_per_unit, num_windows
from datamodules.record import BadRecordError, ECGRecord
from ecg_dino.leads import map_leads

# Bytes per stored sample of the fixed-width WFDB signal formats (compressed formats are not size-checked).
BYTES_PER_SAMPLE = {"8": 1, "16": 2, "24": 3, "32": 4, "61": 2, "80": 1, "160": 2, "212": 1.5}
BYTES_PER_SAMPLE |= {"310": 4 / 3, "311": 4 / 3}


@dataclass
class WfdbSignal:
    """A WFDB record in physical units: ``signal`` float32 [leads, samples] in mV (NaN at invalid samples)."""

    signal: np.ndarray
    sample_rate_hz: float
    sig_name: list[str]
    comments: list[str]


def read_wfdb(header: Path, verify_checksums: bool = True) -> WfdbSignal:
    """Read the record whose header is ``header``; raise ``BadRecordError`` naming the faulty file.

    ``verify_checksums=False`` is for sources whose headers carry a placeholder checksum (CinC 2017: 0 in all)."""
    if not header.is_file():
        raise BadRecordError(f"{header}: header file missing")
    if header.stat().st_size == 0:
        raise BadRecordError(f"{header}: empty file")
    record_path = str(header.with_suffix(""))
    try:
        h = wfdb.rdheader(record_path)
    except Exception as e:
        raise BadRecordError(f"{header}: unreadable header ({type(e).__name__}: {e})") from e
    if not h.n_sig or not h.sig_len:
        raise BadRecordError(f"{header}: zero-length record ({h.n_sig} signals of {h.sig_len} samples)")
    _check_signal_files(header, h)
    try:
        r = wfdb.rdrecord(record_path, physical=False)
    except Exception as e:
        raise BadRecordError(f"{header}: unreadable signal ({type(e).__name__}: {e})") from e
    if verify_checksums:
        _check_checksums(header, r)
    physical = r.dac(expanded=False, return_res=64)  # [T, L] in the header's units
    scale = np.array([mv_per_unit(unit, f"{header}: lead {name}") for name, unit in zip(r.sig_name, r.units)])
    return WfdbSignal(
        signal=(physical * scale).T.astype(np.float32),
        sample_rate_hz=float(r.fs),
        sig_name=[str(n) for n in r.sig_name],
        comments=[str(c) for c in r.comments or []],
    )


def _check_signal_files(header: Path, h: wfdb.Record) -> None:
    """Every signal file exists and holds exactly the bytes the header's length implies."""
    for file_name in dict.fromkeys(h.file_name):
        path = header.parent / file_name
        if not path.is_file():
            raise BadRecordError(f"{path}: signal file missing (named by {header.name})")
        idx = [i for i, f in enumerate(h.file_name) if f == file_name]
        fmts = {h.fmt[i] for i in idx}
        if len(fmts) != 1 or (fmt := fmts.pop()) not in BYTES_PER_SAMPLE:
            continue
        samples_per_frame = sum(h.samps_per_frame[i] or 1 for i in idx)
        frame_bytes = samples_per_frame * BYTES_PER_SAMPLE[fmt]
        expected = (h.byte_offset[idx[0]] or 0) + math.ceil(h.sig_len * frame_bytes)
        actual = path.stat().st_size
        declared = f"{header.name} declares {h.sig_len} samples = {expected} bytes"
        if actual < expected:
            raise BadRecordError(f"{path}: truncated signal file ({actual} bytes; {declared})")
        if actual > expected + math.ceil(frame_bytes):
            raise BadRecordError(f"{path}: wrong length in header ({actual} bytes on disk; {declared})")


def _check_checksums(header: Path, r: wfdb.Record) -> None:
    """The header's per-signal 16-bit checksums match the samples read."""
    if not r.checksum:
        return
    for name, want, got in zip(r.sig_name, r.checksum, r.calc_checksum()):
        if want is not None and (int(want) - int(got)) % 65536:
            raise BadRecordError(
                f"{header}: checksum mismatch for lead {name} (header {want}, samples give {got}): "
                "header and signal file disagree"
            )


def read_annotations(header: Path, extension: str) -> dict[str, Any] | None:
    """Beat and rhythm annotations ``{"sample", "symbol", "aux_note"}`` of the record, None if it has none."""
    if not header.with_suffix(f".{extension}").is_file():
        return None
    try:
        ann = wfdb.rdann(str(header.with_suffix("")), extension)
    except Exception as e:
        raise BadRecordError(f"{header.with_suffix('.' + extension)}: unreadable annotations ({e})") from e
    return {
        "sample": np.asarray(ann.sample, dtype=np.int64),
        "symbol": list(ann.symbol),
        "aux_note": [(note or "").rstrip("\x00") for note in ann.aux_note],
    }


def list_headers(root: Path, pattern: str = "*.hea") -> list[Path]:
    """Headers named by ``root/RECORDS`` when present (a PhysioNet release), else every match below root.

    A ``RECORDS`` line ending in ``/`` names a subfolder, listed the same way.
    """
    records = root / "RECORDS"
    if not records.is_file():
        return sorted(root.rglob(pattern))
    headers = []
    for name in (line.strip() for line in records.read_text().splitlines()):
        if name.endswith("/"):
            headers += list_headers(root / name, pattern)
        elif name:
            headers.append(root / f"{name}.hea")
    return headers


class WfdbReader(Reader):
    """A folder of WFDB records, one ref per header; subclasses add patient ids, labels and leads."""

    annotator: ClassVar[str | None] = None
    header_pattern: ClassVar[str] = "*.hea"

    def _list(self) -> Iterator[RecordRef]:
        for header in list_headers(self.root, self.header_pattern):
            if self._wanted(header.stem):
                yield RecordRef(
                    record_id=f"{self.source}/{header.stem}",
                    path=str(header),
                    patient_id=self.patient_id(header.stem),
                )

    def count_windows(self, ref: RecordRef) -> int:
        if not self.window_seconds:
            return 1
        try:
            h = wfdb.rdheader(str(Path(ref.path).with_suffix("")))
            return max(1, num_windows(h.sig_len, h.fs, self.window_seconds))
        except Exception:  # an unreadable header is reported when the record is read
            return 1

    def patient_id(self, name: str) -> str:
        """Patient of the record ``name``; one patient per record unless the source says otherwise."""
        return f"{self.source}/{name}"

    def labels(self, wf: WfdbSignal) -> dict[str, Any]:
        """Labels found in the header (comments)."""
        return {}

    def leads(self, wf: WfdbSignal, ref: RecordRef) -> list[str]:
        """Lead names as the header gives them."""
        return wf.sig_name

    def read(self, ref: RecordRef) -> ECGRecord:
        header = Path(ref.path)
        wf = read_wfdb(header)
        annotations = read_annotations(header, self.annotator) if self.annotator else None
        leads = map_leads(self.leads(wf, ref), self.lead_map)
        return make_record(ref, self.source, wf.signal, wf.sample_rate_hz, leads, self.labels(wf), annotations)
