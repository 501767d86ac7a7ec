"""``ecg-dino export``: a checkpoint's frozen backbone -> ``backbone.safetensors`` + ``backbone.json``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ecg_dino.checkpoint import CheckpointError
from ecg_dino.commands.arguments import fail, parse
from ecg_dino.export import export_backbone
from ecg_dino.features.backbone import CheckpointOptions

PROG = "ecg-dino export"
EXAMPLE = f"{PROG} --ckpt runs/pretrain_debug_cpu/version_0/checkpoints/last.ckpt --out exported/"


@dataclass(frozen=True, kw_only=True)
class ExportOptions(CheckpointOptions):
    """Which checkpoint branch to export, and where."""

    out: Path
    """output folder"""


def main(argv: list[str] | None = None) -> int:
    """Parse, export, print the parameter count; 2 on a checkpoint that is no backbone."""
    opts = parse(ExportOptions, argv, PROG, EXAMPLE, __doc__)
    try:
        info = export_backbone(opts.ckpt, opts.out, opts.which)
    except CheckpointError as e:
        return fail(PROG, e)
    print(f"exported {info['num_parameters']:,} parameters to {opts.out / 'backbone.safetensors'}")
    return 0
