"""``ecg-dino prepare``: convert a raw ECG dataset into Parquet shards at one sample rate (resumable)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from datamodules.manifest import PrepareError
from datamodules.prepare import PrepareOptions, run
from datamodules.readers import READERS
from ecg_dino.commands.arguments import SOURCE_FLAGS, source_arguments, source_options

log = logging.getLogger(__name__)


def parse_names(text: str) -> list[str]:
    """``"100,101"`` or ``"@names.txt"`` (one per line) -> record names."""
    if text.startswith("@"):
        return [line.strip() for line in Path(text[1:]).read_text().splitlines() if line.strip()]
    return [name.strip() for name in text.split(",") if name.strip()]


def parse_folds(text: str) -> list[int]:
    """``"1-8"``, ``"9,10"`` or ``"1-3,5"`` -> fold numbers."""
    folds: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        folds.extend(range(int(low), int(high or low) + 1))
    return folds


def build_parser() -> argparse.ArgumentParser:
    """Every flag of ``ecg-dino prepare`` (one per ``PrepareOptions`` field, ``SourceOptions``' included)."""
    parser = argparse.ArgumentParser(
        prog="ecg-dino prepare",
        description="Convert a raw ECG dataset into Parquet shards at one sample rate (resumable).",
    )
    parser.add_argument("--source", required=True, choices=sorted(READERS))
    parser.add_argument("--raw", required=True, help="folder of the raw download")
    parser.add_argument("--out", required=True, help="shard folder (several sources may share it)")
    parser.add_argument("--sample-rate-hz", type=float, default=250.0, help="target rate (default 250)")
    parser.add_argument(
        "--records-per-shard",
        type=int,
        default=1000,
        help="output records (windows) per shard (default 1000)",
    )
    parser.add_argument("--row-group-size", type=int, default=256, help="records per Parquet row group")
    parser.add_argument("--workers", type=int, default=1, help="conversion processes (default 1)")
    parser.add_argument(
        "--window-seconds",
        type=float,
        default=None,
        help="window length; default 10 for mitdb/cpsc2021/icentia11k/cinc2017, none for others; 0 = whole records",
    )
    parser.add_argument("--include-records", type=parse_names, help="only these records: 100,101 or @file")
    parser.add_argument("--exclude-records", type=parse_names, help="skip these records: 102,104 or @file")
    parser.add_argument("--folds", type=parse_folds, help="ptbxl: strat_folds to keep, e.g. 1-8")
    parser.add_argument(
        "--splits",
        type=parse_names,
        help="cinc2017: splits to keep, e.g. train,val (the test split is never for pretraining)",
    )
    parser.add_argument(
        "--ptbxl-records", default="records500", choices=["records500", "records100"], help="ptbxl folder"
    )
    parser.add_argument(
        "--code15-mv-per-unit", type=float, default=1.0, help="code15: millivolts per stored unit (default 1)"
    )
    source_arguments(parser)
    return parser


def parse(argv: list[str] | None) -> PrepareOptions:
    """The command line as ``PrepareOptions``; an inconsistent combination is a usage error."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        fields = {k: v for k, v in vars(args).items() if k not in SOURCE_FLAGS}
        return PrepareOptions(**fields, source_options=source_options(args))
    except ValueError as e:
        parser.error(str(e))


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``ecg-dino prepare``; returns the exit status."""
    opts = parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        run(opts)
    except (FileNotFoundError, PrepareError) as e:
        log.error("prepare: %s", e)
        return 2
    return 0
