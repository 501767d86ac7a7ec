"""``ecg-dino probe-mitbih``: AAMI beat probe (DS1 -> DS2, intra-patient, or another database) with baselines."""

from __future__ import annotations

from ecg_dino.commands.arguments import parse, run_probe
from ecg_dino.probes.options import MITBIHProbeOptions
from ecg_dino.probes.run_mitbih import probe_mitbih

PROG = "ecg-dino probe-mitbih"
EXAMPLE = f"{PROG} --ckpt runs/pretrain_debug_cpu/version_0/checkpoints/last.ckpt --mitdb ../shared/data/mitdb"


def main(argv: list[str] | None = None) -> int:
    """Parse, probe, print the headline table and where the report is; 2 on an error naming the file."""
    return run_probe(PROG, probe_mitbih, parse(MITBIHProbeOptions, argv, PROG, EXAMPLE, __doc__))
