"""``ecg-dino curves``: the online-probe learning curves of several runs, from their TensorBoard event files.

Writes ``online_probe_curves.png`` (one panel per probe set, one line per run, the step-0 value of each run as
its random-init reference), ``online_probe_curves.md`` (every logged point) and ``online_probe_curves.json``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ecg_dino.commands.arguments import fail
from ecg_dino.probes.curves import CurvesOptions, write_curves

PROG = "ecg-dino curves"


def parse(argv: list[str] | None) -> CurvesOptions:
    """The command line as ``CurvesOptions``."""
    p = argparse.ArgumentParser(prog=PROG, description=__doc__)
    p.add_argument("runs", nargs="+", help="NAME=runs/<name>/version_<n> (a folder holding event files)")
    p.add_argument("--out", type=Path, required=True, help="folder for the PNG, Markdown and JSON")
    p.add_argument(
        "--x", choices=("step", "minutes"), default="step", help="plot against the step or the wall time (minutes)"
    )
    args = p.parse_args(argv)
    return CurvesOptions(tuple(args.runs), args.out, args.x)


def main(argv: list[str] | None = None) -> int:
    """Parse, plot, print where the files are; 2 on a missing run folder or a malformed pair."""
    opts = parse(argv)
    try:
        png = write_curves(opts)
    except (FileNotFoundError, ValueError) as e:
        return fail(PROG, e)
    print(f"wrote {png} and .md/.json")
    return 0
