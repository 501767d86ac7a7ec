"""Fetch an open PhysioNet WFDB database with ``wfdb.dl_database`` (``ecg-dino download``).

Only databases whose WFDB records are all a user needs are offered (``nstdb`` for the noise bank, ``mitdb``);
PTB-XL, CODE-15%, Icentia11k and HEEDB ship tables or other files and are downloaded from their own pages.
"""

from __future__ import annotations

import logging

import wfdb

log = logging.getLogger(__name__)

DATABASES = {"nstdb": "MIT-BIH Noise Stress Test Database", "mitdb": "MIT-BIH Arrhythmia Database"}


def download(database: str, out: str, overwrite: bool = False) -> None:
    """Every record of ``database`` (a key of ``DATABASES``) into ``out``; present files kept unless ``overwrite``."""
    log.info("downloading %s (%s) into %s", database, DATABASES[database], out)
    wfdb.dl_database(database, dl_dir=out, records="all", overwrite=overwrite)
