"""``ecg-dino export``: a checkpoint's frozen backbone -> ``backbone.safetensors`` + ``backbone.json``."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from ecg_dino.checkpoint import CheckpointError
from ecg_dino.commands.arguments import fail
from ecg_dino.export import export_backbone

PROG = "ecg-dino export"


@dataclass(frozen=True)
class ExportOptions:
    """Which checkpoint branch to export, and where."""

    ckpt: Path
    out: Path
    which: str = "teacher"


def parse(argv: list[str] | None) -> ExportOptions:
    """The command line as ``ExportOptions``."""
    p = argparse.ArgumentParser(prog=PROG, description=__doc__)
    p.add_argument("--ckpt", type=Path, required=True, help="Lightning or consolidated checkpoint")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--which", default="teacher", choices=("teacher", "student"))
    args = p.parse_args(argv)
    return ExportOptions(args.ckpt, args.out, args.which)


def main(argv: list[str] | None = None) -> int:
    """``ecg-dino export --ckpt last.ckpt --out exported/``; 2 on a checkpoint that is no backbone."""
    opts = parse(argv)
    try:
        info = export_backbone(opts.ckpt, opts.out, opts.which)
    except CheckpointError as e:
        return fail(PROG, e)
    print(f"exported {info['num_parameters']:,} parameters to {opts.out / 'backbone.safetensors'}")
    return 0
