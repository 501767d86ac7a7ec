"""``ecg-dino download``: fetch an open PhysioNet WFDB database with ``wfdb.dl_database``.

Only databases whose WFDB records are all a user needs are offered (``nstdb`` for the noise bank, ``mitdb``);
PTB-XL, CODE-15%, Icentia11k and HEEDB ship tables or other files and are downloaded from their own pages.
"""

from __future__ import annotations

import argparse
import logging

import wfdb

log = logging.getLogger(__name__)

DATABASES = {"nstdb": "MIT-BIH Noise Stress Test Database", "mitdb": "MIT-BIH Arrhythmia Database"}


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``ecg-dino download <database> --out DIR``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="ecg-dino download", description=__doc__.splitlines()[0])
    parser.add_argument("database", choices=sorted(DATABASES), help="PhysioNet database name")
    parser.add_argument("--out", required=True, help="folder to download into")
    parser.add_argument("--overwrite", action="store_true", help="download files that are already present")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    log.info("downloading %s (%s) into %s", args.database, DATABASES[args.database], args.out)
    wfdb.dl_database(args.database, dl_dir=args.out, records="all", overwrite=args.overwrite)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
