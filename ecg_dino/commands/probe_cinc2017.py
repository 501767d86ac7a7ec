"""``ecg-dino probe-cinc2017``: 4-class rhythm probe (N, A, O, ~) at label fractions, robustness; a report."""

from __future__ import annotations

import argparse
from pathlib import Path

from ecg_dino.commands.arguments import record_probe_arguments, record_probe_options, write_probe_report
from ecg_dino.probes.options import CinC2017ProbeOptions
from ecg_dino.probes.run_cinc2017 import probe_cinc2017


def parse(argv: list[str] | None) -> CinC2017ProbeOptions:
    """The command line as ``CinC2017ProbeOptions``."""
    p = argparse.ArgumentParser(prog="ecg-dino probe-cinc2017", description=__doc__)
    p.add_argument("--cinc2017", type=Path, required=True, help="CinC-2017 folder (REFERENCE.csv, A*.hea/.mat)")
    record_probe_arguments(p, CinC2017ProbeOptions, "only the first N records of each split (smoke tests)")
    args = p.parse_args(argv)
    return CinC2017ProbeOptions(cinc2017=args.cinc2017, **record_probe_options(args))


def main(argv: list[str] | None = None) -> int:
    """Parse, probe, print where the report is; 2 on an error naming the file."""
    return write_probe_report("ecg-dino probe-cinc2017", probe_cinc2017, parse(argv))
