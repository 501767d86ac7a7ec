"""``ecg-dino probe-ptbxl``: linear and attentive probes on PTB-XL label sets, label fractions, robustness; a report."""

from __future__ import annotations

from ecg_dino.commands.arguments import parse, run_probe
from ecg_dino.probes.options import PTBXLProbeOptions
from ecg_dino.probes.run_ptbxl import probe_ptbxl

PROG = "ecg-dino probe-ptbxl"
EXAMPLE = f"{PROG} --ckpt runs/pretrain_debug_cpu/version_0/checkpoints/last.ckpt --ptbxl ../shared/data/ptbxl"


def main(argv: list[str] | None = None) -> int:
    """Parse, probe, print the headline table and where the report is; 2 on an error naming the file."""
    return run_probe(PROG, probe_ptbxl, parse(PTBXLProbeOptions, argv, PROG, EXAMPLE, __doc__))
