"""``ecg-dino probe-ptbxl``: linear probes on PTB-XL label sets, fractions, robustness; writes a report."""

from __future__ import annotations

import argparse
from pathlib import Path

from ecg_dino.commands.arguments import record_probe_arguments, record_probe_options, write_probe_report
from ecg_dino.features.records import LONG_RULES, EmbedOptions
from ecg_dino.probes import ptbxl
from ecg_dino.probes.options import PTBXLProbeOptions
from ecg_dino.probes.run_ptbxl import probe_ptbxl


def parse(argv: list[str] | None) -> PTBXLProbeOptions:
    """The command line as ``PTBXLProbeOptions``."""
    p = argparse.ArgumentParser(prog="ecg-dino probe-ptbxl", description=__doc__)
    p.add_argument("--ptbxl", type=Path, required=True, help="PTB-XL folder (ptbxl_database.csv, records500/)")
    p.add_argument("--label-sets", nargs="+", default=list(ptbxl.LABEL_SETS), choices=ptbxl.LABEL_SETS)
    p.add_argument("--records-folder", default="records500", choices=("records500", "records100"))
    p.add_argument("--long-rule", choices=LONG_RULES, default=EmbedOptions.long_rule)
    record_probe_arguments(p, PTBXLProbeOptions, "only the first N records (smoke tests)")
    args = p.parse_args(argv)
    return PTBXLProbeOptions(
        ptbxl=args.ptbxl,
        label_sets=tuple(args.label_sets),
        records_folder=args.records_folder,
        long_rule=args.long_rule,
        **record_probe_options(args),
    )


def main(argv: list[str] | None = None) -> int:
    """Parse, probe, print where the report is; 2 on an error naming the file."""
    return write_probe_report("ecg-dino probe-ptbxl", probe_ptbxl, parse(argv))
