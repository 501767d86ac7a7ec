"""``ecg-dino download``: fetch an open PhysioNet WFDB database with ``wfdb.dl_database``."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from datamodules.download import DATABASES, download
from ecg_dino.commands.arguments import parse

PROG = "ecg-dino download"
EXAMPLE = f"{PROG} nstdb --out ../shared/data/nstdb"


@dataclass(frozen=True)
class DownloadOptions:
    """Which database, into which folder."""

    database: str = field(metadata={"choices": tuple(sorted(DATABASES))})
    """PhysioNet database name"""
    out: str
    """folder to download into"""
    overwrite: bool = False
    """download files that are already present"""


def main(argv: list[str] | None = None) -> int:
    """Parse, download; returns the exit status."""
    opts = parse(DownloadOptions, argv, PROG, EXAMPLE, __doc__, positional=("database",))
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    download(opts.database, opts.out, opts.overwrite)
    return 0
