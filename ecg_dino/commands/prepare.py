"""``ecg-dino prepare``: convert a raw ECG dataset into Parquet shards at one sample rate (resumable)."""

from __future__ import annotations

import logging

from datamodules.manifest import PrepareError
from datamodules.prepare import PrepareOptions, run
from ecg_dino.commands.arguments import parse

log = logging.getLogger(__name__)
PROG = "ecg-dino prepare"
EXAMPLE = f"{PROG} --source ptbxl --raw ../shared/data/ptbxl --out shards/ptbxl --folds 1-8"


def main(argv: list[str] | None = None) -> int:
    """Parse (an inconsistent combination is a usage error), convert; 2 on a missing folder or a bad manifest."""
    opts = parse(PrepareOptions, argv, PROG, EXAMPLE, __doc__)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        run(opts)
    except (FileNotFoundError, PrepareError) as e:
        log.error("prepare: %s", e)
        return 2
    return 0
