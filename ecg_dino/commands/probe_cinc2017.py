"""``ecg-dino probe-cinc2017``: 4-class rhythm probe (N, A, O, ~) at label fractions, robustness; a report."""

from __future__ import annotations

import argparse
from pathlib import Path

from datamodules.record import BadRecordError
from ecg_dino.checkpoint import CheckpointError
from ecg_dino.commands.arguments import fail, head_arguments, probe_arguments, probe_options
from ecg_dino.features.records import EmbedOptions
from ecg_dino.probes import cinc2017
from ecg_dino.probes.options import CinC2017ProbeOptions
from ecg_dino.probes.run_cinc2017 import probe_cinc2017

PROG = "ecg-dino probe-cinc2017"


def parse(argv: list[str] | None) -> CinC2017ProbeOptions:
    """The command line as ``CinC2017ProbeOptions``."""
    p = argparse.ArgumentParser(prog=PROG, description=__doc__)
    p.add_argument("--cinc2017", type=Path, required=True, help="CinC-2017 folder (REFERENCE.csv, A*.hea/.mat)")
    p.add_argument("--fractions", nargs="+", type=float, default=list(cinc2017.FRACTIONS))
    p.add_argument("--limit", type=int, default=None, help="only the first N records of each split (smoke tests)")
    p.add_argument("--crop-seconds", type=float, default=4.0, help="the trained crop length")
    p.add_argument("--batch-size", type=int, default=EmbedOptions.batch_size)
    head_arguments(p)
    probe_arguments(p)
    args = p.parse_args(argv)
    return CinC2017ProbeOptions(
        cinc2017=args.cinc2017,
        fractions=tuple(args.fractions),
        limit=args.limit,
        crop_seconds=args.crop_seconds,
        batch_size=args.batch_size,
        head=args.head,
        attentive_queries=args.attentive_queries,
        **probe_options(args),
    )


def main(argv: list[str] | None = None) -> int:
    """Parse, probe, print where the report is; 2 on an error naming the file."""
    opts = parse(argv)
    try:
        out = probe_cinc2017(opts)
    except (CheckpointError, FileNotFoundError, BadRecordError, ValueError) as e:
        return fail(PROG, e)
    print(f"wrote {out / 'report.md'}")
    return 0
