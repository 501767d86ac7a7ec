"""``ecg-dino embed``: embed a dataset folder with a frozen backbone into one Parquet file."""

from __future__ import annotations

import sys

from ecg_dino.checkpoint import CheckpointError
from ecg_dino.commands.arguments import fail, parse
from ecg_dino.features.dataset import DatasetEmbedding, embed_dataset

PROG = "ecg-dino embed"
EXAMPLE = (
    f"{PROG} --ckpt runs/pretrain_debug_cpu/version_0/checkpoints/last.ckpt --data shards/ptbxl --out ptbxl.parquet"
)
QUARANTINE_SHOWN = 10  # quarantine reasons printed; the file holds them all


def main(argv: list[str] | None = None) -> int:
    """Parse, embed, print the row count and the records skipped; 2 on an error naming the file."""
    job = parse(DatasetEmbedding, argv, PROG, EXAMPLE, __doc__)
    try:
        summary = embed_dataset(job)
    except (CheckpointError, FileNotFoundError, ValueError) as e:
        return fail(PROG, e)
    print(f"wrote {summary.rows} embeddings to {job.out}")
    if summary.quarantine_file is not None:
        for _, _, reason in summary.quarantine[:QUARANTINE_SHOWN]:
            print(f"{PROG}: quarantine: {reason}", file=sys.stderr)
        print(f"{len(summary.quarantine)} quarantine row(s) in {summary.quarantine_file}", file=sys.stderr)
    return 0
