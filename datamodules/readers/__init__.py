"""Readers of raw ECG datasets, one module per source, all yielding ``ECGRecord``s.

``make_reader("mitdb", root, records=["100"])`` builds one; ``reader.list_records()`` gives the refs that
``prepare`` splits across workers and ``reader.load(ref)`` reads one at its native rate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datamodules.readers.base import Reader, RecordRef, cut_windows
from datamodules.readers.cinc2017 import CinC2017Reader
from datamodules.readers.cinc2021 import CinC2021Reader
from datamodules.readers.code15 import CODE15Reader
from datamodules.readers.cpsc2021 import CPSC2021Reader
from datamodules.readers.edf import EDFReader
from datamodules.readers.generic import GENERIC_SOURCES, SourceOptions
from datamodules.readers.heedb import HEEDBReader
from datamodules.readers.icentia11k import Icentia11kReader
from datamodules.readers.mitdb import MITDBReader
from datamodules.readers.numpy_folder import NumpyFolderReader
from datamodules.readers.ptbxl import PTBXLReader
from datamodules.readers.wfdb_folder import WfdbFolderReader

READERS: dict[str, type[Reader]] = {
    reader.source: reader
    for reader in (
        PTBXLReader,
        MITDBReader,
        CinC2017Reader,
        CinC2021Reader,
        CPSC2021Reader,
        HEEDBReader,
        CODE15Reader,
        Icentia11kReader,
        WfdbFolderReader,
        EDFReader,
        NumpyFolderReader,
    )
}


def make_reader(source: str, root: str | Path, **options: Any) -> Reader:
    """The reader of ``source`` over the raw folder ``root``; ``options`` go to its constructor."""
    if source not in READERS:
        raise ValueError(f"unknown source {source!r}; known: {', '.join(READERS)}")
    return READERS[source](root, **options)


__all__ = ["GENERIC_SOURCES", "READERS", "Reader", "RecordRef", "SourceOptions", "cut_windows", "make_reader"]
