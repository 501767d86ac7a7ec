"""``ecg-dino show``: dense-feature pictures of ECGs (patch-token PCA colours, class-token attention), one PNG each."""

from __future__ import annotations

import argparse
from pathlib import Path

from datamodules.noise import NOISE_TYPES
from datamodules.record import BadRecordError
from ecg_dino.checkpoint import CheckpointError
from ecg_dino.commands.arguments import fail
from ecg_dino.features.sources import SOURCES
from ecg_dino.pictures.show import ShowOptions, show

PROG = "ecg-dino show"


def parse(argv: list[str] | None) -> ShowOptions:
    """The command line as ``ShowOptions``."""
    p = argparse.ArgumentParser(prog=PROG, description=__doc__)
    p.add_argument("--ckpt", type=Path, required=True, help="Lightning/consolidated checkpoint or .safetensors")
    p.add_argument("--data", type=Path, required=True, help="dataset folder")
    p.add_argument("--out", type=Path, default=None, help="PNG folder (default: <ckpt folder>/pictures)")
    p.add_argument("--record", default=None, help="record name (119) or id (mitdb/119); default: every record")
    p.add_argument("--source", choices=sorted(SOURCES), default=None, help="dataset kind (guessed if omitted)")
    p.add_argument("--start", type=float, default=0.0, help="window start in seconds")
    p.add_argument("--seconds", type=float, default=10.0, help="window length in seconds")
    p.add_argument("--noise", choices=NOISE_TYPES, default=None, help="also the window with this NSTDB noise")
    p.add_argument("--snr", type=float, default=6.0, help="SNR of the added noise in dB")
    p.add_argument("--nstdb", type=Path, default=None, help="NSTDB folder (default: next to the data folder)")
    p.add_argument("--pca-from", type=Path, default=None, help="fit the PCA on this folder's records instead")
    p.add_argument("--pca-records", type=int, default=32, help="records of --pca-from to fit on")
    p.add_argument("--compare-random", action="store_true", help="beside the random-init twin (seed --seed)")
    p.add_argument("--which", default="teacher", choices=("teacher", "student"))
    p.add_argument("--seed", type=int, default=0, help="seeds the random-init twin and the noise excerpt")
    p.add_argument("--limit", type=int, default=None, help="at most this many records")
    p.add_argument("--dpi", type=int, default=100)
    args = p.parse_args(argv)
    return ShowOptions(
        ckpt=args.ckpt,
        data=args.data,
        out=args.out,
        record=args.record,
        source=args.source,
        start_seconds=args.start,
        seconds=args.seconds,
        noise=args.noise,
        snr_db=args.snr,
        nstdb=args.nstdb,
        pca_from=args.pca_from,
        pca_records=args.pca_records,
        compare_random=args.compare_random,
        which=args.which,
        seed=args.seed,
        limit=args.limit,
        dpi=args.dpi,
    )


def main(argv: list[str] | None = None) -> int:
    """Parse, draw, print each PNG's path; 2 on an error naming the file."""
    opts = parse(argv)
    try:
        for path in show(opts):
            print(path)
    except (CheckpointError, FileNotFoundError, BadRecordError, ValueError) as e:
        return fail(PROG, e)
    return 0
