"""``ecg-dino compare``: one table (Markdown + JSON) and robustness plots from several probe reports."""

from __future__ import annotations

import argparse
from pathlib import Path

from ecg_dino.commands.arguments import fail
from ecg_dino.probes.compare import ComparisonOptions, write_comparison

PROG = "ecg-dino compare"


def parse(argv: list[str] | None) -> ComparisonOptions:
    """The command line as ``ComparisonOptions``."""
    p = argparse.ArgumentParser(prog=PROG, description=__doc__)
    p.add_argument("--mitbih", nargs="*", default=[], help="NAME=probe-mitbih/report.json …")
    p.add_argument("--ptbxl", nargs="*", default=[], help="NAME=probe-ptbxl/report.json …")
    p.add_argument("--cinc2017", nargs="*", default=[], help="NAME=probe-cinc2017/report.json …")
    p.add_argument("--out", type=Path, required=True, help="folder for comparison.md/.json and the plots")
    args = p.parse_args(argv)
    return ComparisonOptions(args.out, tuple(args.mitbih), tuple(args.ptbxl), tuple(args.cinc2017))


def main(argv: list[str] | None = None) -> int:
    """Parse, compare, print the table; 2 on an unreadable or mismatched report."""
    opts = parse(argv)
    try:
        markdown = write_comparison(opts)
    except (OSError, ValueError, KeyError) as e:
        return fail(PROG, e)
    print(markdown.read_text())
    return 0
