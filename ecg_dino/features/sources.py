"""A dataset folder as a list of records plus a cache key: raw folders through ``datamodules.readers``,
prepared Parquet shard folders through ``datamodules.shards``."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from datamodules.readers import READERS, make_reader
from datamodules.readers.base import Reader, RecordRef
from datamodules.record import ECGRecord
from datamodules.shards import iter_records

SOURCES = (*READERS, "shards")


def guess_source(root: Path) -> str:
    """The source kind of a folder: shards (``*.parquet``), PTB-XL (``ptbxl_database.csv``), MIT-BIH (``.atr``)."""
    if any(root.glob("*.parquet")):
        return "shards"
    if (root / "ptbxl_database.csv").is_file():
        return "ptbxl"
    if any(root.glob("*.atr")):
        return "mitdb"
    raise ValueError(f"{root}: cannot tell the dataset kind; pass --source ({', '.join(SOURCES)})")


def file_fingerprint(paths: list[Path]) -> str:
    """Hash of file names and sizes: changes when files are added, removed or rewritten with a new size."""
    h = hashlib.sha256()
    for p in paths:
        h.update(f"{p}:{p.stat().st_size if p.is_file() else -1}\n".encode())
    return h.hexdigest()[:16]


@dataclass
class ReaderSource:
    """Whole records (never windowed) of a raw dataset folder."""

    reader: Reader
    refs: list[RecordRef]

    @property
    def key(self) -> str:
        paths = [Path(r.path) for r in self.refs]
        return f"{self.reader.source}:{self.reader.root.resolve()}:{file_fingerprint(paths)}"

    def __len__(self) -> int:
        return len(self.refs)

    def records(self) -> Iterator[ECGRecord]:
        for ref in self.refs:
            yield self.reader.load(ref)


@dataclass
class ShardSource:
    """Every record of a prepared shard folder (``*.parquet``)."""

    root: Path

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


def open_source(root: Path, source: str | None = None) -> ReaderSource | ShardSource:
    """The records of ``root`` as ``source`` (guessed from the folder's files when None)."""
    if not Path(root).is_dir():
        raise FileNotFoundError(f"{root}: dataset folder not found")
    source = source or guess_source(Path(root))
    if source == "shards":
        return ShardSource(Path(root))
    reader = make_reader(source, root, window_seconds=0)
    return ReaderSource(reader, reader.list_records())
