"""``ecg-dino download``: fetch an open PhysioNet WFDB database with ``wfdb.dl_database``."""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass

from datamodules.download import DATABASES, download


@dataclass(frozen=True)
class DownloadOptions:
    """Which database, into which folder."""

    database: str
    out: str
    overwrite: bool = False


def parse(argv: list[str] | None) -> DownloadOptions:
    """The command line as ``DownloadOptions``."""
    parser = argparse.ArgumentParser(prog="ecg-dino download", description=__doc__)
    parser.add_argument("database", choices=sorted(DATABASES), help="PhysioNet database name")
    parser.add_argument("--out", required=True, help="folder to download into")
    parser.add_argument("--overwrite", action="store_true", help="download files that are already present")
    args = parser.parse_args(argv)
    return DownloadOptions(args.database, args.out, args.overwrite)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``ecg-dino download <database> --out DIR``; returns the exit status."""
    opts = parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    download(opts.database, opts.out, opts.overwrite)
    return 0
