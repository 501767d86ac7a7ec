"""``ecg-dino show``: dense-feature pictures of ECGs (patch-token PCA colours, class-token attention), one PNG each."""

from __future__ import annotations

from datamodules.record import BadRecordError
from ecg_dino.checkpoint import CheckpointError
from ecg_dino.commands.arguments import fail, parse
from ecg_dino.pictures.show import ShowOptions, show

PROG = "ecg-dino show"
EXAMPLE = (
    f"{PROG} --ckpt runs/pretrain_cpu_many/version_0/checkpoints/last.ckpt --data ../shared/data/mitdb "
    "--record 228 --start 460 --compare-random"
)


def main(argv: list[str] | None = None) -> int:
    """Parse, draw, print each PNG's path; 2 on an error naming the file."""
    opts = parse(ShowOptions, argv, PROG, EXAMPLE, __doc__)
    try:
        for path in show(opts):
            print(path)
    except (CheckpointError, FileNotFoundError, BadRecordError, ValueError) as e:
        return fail(PROG, e)
    return 0
