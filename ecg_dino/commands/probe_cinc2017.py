"""``ecg-dino probe-cinc2017``: 4-class rhythm probe (N, A, O, ~) at label fractions, robustness; a report."""

from __future__ import annotations

from ecg_dino.commands.arguments import parse, run_probe
from ecg_dino.probes.options import CinC2017ProbeOptions
from ecg_dino.probes.run_cinc2017 import probe_cinc2017

PROG = "ecg-dino probe-cinc2017"
EXAMPLE = f"{PROG} --ckpt runs/pretrain_cpu_many/version_0/checkpoints/last.ckpt --cinc2017 ../shared/data/cinc2017"


def main(argv: list[str] | None = None) -> int:
    """Parse, probe, print the headline table and where the report is; 2 on an error naming the file."""
    return run_probe(PROG, probe_cinc2017, parse(CinC2017ProbeOptions, argv, PROG, EXAMPLE, __doc__))
