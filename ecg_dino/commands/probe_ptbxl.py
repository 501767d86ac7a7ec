"""``ecg-dino probe-ptbxl``: linear probes on PTB-XL label sets, fractions, robustness; writes a report."""

from __future__ import annotations

import argparse
from pathlib import Path

from datamodules.record import BadRecordError
from ecg_dino.checkpoint import CheckpointError
from ecg_dino.commands.arguments import fail, head_arguments, probe_arguments, probe_options
from ecg_dino.features.records import LONG_RULES, EmbedOptions
from ecg_dino.probes import ptbxl
from ecg_dino.probes.options import PTBXLProbeOptions
from ecg_dino.probes.run_ptbxl import probe_ptbxl

PROG = "ecg-dino probe-ptbxl"


def parse(argv: list[str] | None) -> PTBXLProbeOptions:
    """The command line as ``PTBXLProbeOptions``."""
    p = argparse.ArgumentParser(prog=PROG, description=__doc__)
    p.add_argument("--ptbxl", type=Path, required=True, help="PTB-XL folder (ptbxl_database.csv, records500/)")
    p.add_argument("--label-sets", nargs="+", default=list(ptbxl.LABEL_SETS), choices=ptbxl.LABEL_SETS)
    p.add_argument("--fractions", nargs="+", type=float, default=list(ptbxl.FRACTIONS))
    p.add_argument("--records-folder", default="records500", choices=("records500", "records100"))
    p.add_argument("--limit", type=int, default=None, help="only the first N records (smoke tests)")
    p.add_argument("--crop-seconds", type=float, default=EmbedOptions.crop_seconds, help="the trained crop length")
    p.add_argument("--long-rule", choices=LONG_RULES, default=EmbedOptions.long_rule)
    p.add_argument("--batch-size", type=int, default=EmbedOptions.batch_size)
    head_arguments(p)
    probe_arguments(p)
    args = p.parse_args(argv)
    return PTBXLProbeOptions(
        ptbxl=args.ptbxl,
        label_sets=tuple(args.label_sets),
        fractions=tuple(args.fractions),
        records_folder=args.records_folder,
        limit=args.limit,
        crop_seconds=args.crop_seconds,
        long_rule=args.long_rule,
        batch_size=args.batch_size,
        head=args.head,
        attentive_queries=args.attentive_queries,
        **probe_options(args),
    )


def main(argv: list[str] | None = None) -> int:
    """Parse, probe, print where the report is; 2 on an error naming the file."""
    opts = parse(argv)
    try:
        out = probe_ptbxl(opts)
    except (CheckpointError, FileNotFoundError, BadRecordError, ValueError) as e:
        return fail(PROG, e)
    print(f"wrote {out / 'report.md'}")
    return 0
