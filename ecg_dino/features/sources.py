"""A dataset folder as a list of records plus a cache key: raw folders through ``datamodules.readers``,
prepared Parquet shard folders through ``datamodules.shards``.

Raw records get ``prepare``'s checks (``check_signal``: empty, NaN/Inf, all flat; the readers' own: unknown
leads, wrong shapes, unreadable files): a bad record is skipped and kept in ``quarantine`` as ``[file,
record_id, reason]`` rows, as are a kept record's notes (an EDF file's skipped channels).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from datamodules.convert import reason_for
from datamodules.readers import READERS, Reader, RecordRef, SourceOptions, make_reader
from datamodules.record import ECGRecord, check_signal
from datamodules.shards import iter_records

SOURCES = (*READERS, "shards")
# Files whose presence at the top of a folder names its kind, in the order they are tried.
GUESSES = (
    ("shards", ("*.parquet",)),
    ("ptbxl", ("ptbxl_database.csv",)),
    ("mitdb", ("*.atr",)),
    ("wfdb", ("*.hea",)),
    ("edf", ("*.edf", "*.EDF", "*.bdf", "*.BDF")),
    ("numpy", ("*.npy", "*.npz")),
)


def guess_source(root: Path) -> str:
    """The source kind of a folder, from the first of ``GUESSES`` whose files it holds."""
    for source, patterns in GUESSES:
        if any(any(root.glob(pattern)) for pattern in patterns):
            return source
    raise ValueError(f"{root}: cannot tell the dataset kind; pass --source ({', '.join(SOURCES)})")


def file_fingerprint(paths: list[Path]) -> str:
    """Hash of file names and sizes (and a JSON sidecar's contents): changes when files are added, removed or
    rewritten with a new size, or a sidecar is edited."""
    h = hashlib.sha256()
    for p in paths:
        h.update(f"{p}:{p.stat().st_size if p.is_file() else -1}\n".encode())
        if p.suffix == ".json" and p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


@dataclass
class ReaderSource:
    """Whole records (never windowed) of a raw dataset folder; bad ones skipped into ``quarantine``."""

    reader: Reader
    refs: list[RecordRef]
    options: dict = field(default_factory=dict)  # the reader's generic-source options (part of the key)
    quarantine: list[list[str]] = field(default_factory=list)

    @property
    def key(self) -> str:
        paths = [p for r in self.refs for p in self.reader.key_files(r)]
        options = json.dumps(self.options, sort_keys=True)
        return f"{self.reader.source}:{self.reader.root.resolve()}:{file_fingerprint(paths)}:{options}"

    def __len__(self) -> int:
        return len(self.refs)

    def records(self) -> Iterator[ECGRecord]:
        self.quarantine.clear()
        for ref in self.refs:
            try:
                record = self.reader.load(ref)
                check_signal(record, ref.path)
            except Exception as e:  # one bad record must not stop the rest, as in ``prepare``
                self.quarantine.append([ref.path, ref.record_id, reason_for(e, ref)])
                continue
            self.quarantine.extend([ref.path, record.record_id, note] for note in record.notes)
            yield record


@dataclass
class ShardSource:
    """Every record of a prepared shard folder (``*.parquet``), checked when it was prepared."""

    root: Path
    quarantine: list[list[str]] = field(default_factory=list)

    @property
    def files(self) -> list[Path]:
        return sorted(self.root.glob("*.parquet"))

    @property
    def key(self) -> str:
        return f"shards:{self.root.resolve()}:{file_fingerprint(self.files)}"

    def __len__(self) -> int:
        import pyarrow.parquet as pq

        return sum(pq.ParquetFile(f).metadata.num_rows for f in self.files)

    def records(self) -> Iterator[ECGRecord]:
        for f in self.files:
            yield from iter_records(f)


def open_source(
    root: Path, source: str | None = None, options: SourceOptions | None = None
) -> ReaderSource | ShardSource:
    """The records of ``root`` as ``source`` (guessed from the folder's files when None), read with the generic
    sources' ``options``."""
    if not Path(root).is_dir():
        raise FileNotFoundError(f"{root}: dataset folder not found")
    source = source or guess_source(Path(root))
    reader_options = (options or SourceOptions()).reader_options(source)
    if source == "shards":
        return ShardSource(Path(root))
    reader = make_reader(source, root, window_seconds=0, **reader_options)
    return ReaderSource(reader, reader.list_records(), reader_options)
