"""``ecg-dino embed``: embed a dataset folder with a frozen backbone into one Parquet file."""

from __future__ import annotations

from ecg_dino.checkpoint import CheckpointError
from ecg_dino.commands.arguments import fail, parse
from ecg_dino.features.dataset import DatasetEmbedding, embed_dataset

PROG = "ecg-dino embed"
EXAMPLE = (
    f"{PROG} --ckpt runs/pretrain_debug_cpu/version_0/checkpoints/last.ckpt --data shards/ptbxl --out ptbxl.parquet"
)


def main(argv: list[str] | None = None) -> int:
    """Parse, embed, print the row count; 2 on an error naming the file."""
    job = parse(DatasetEmbedding, argv, PROG, EXAMPLE, __doc__)
    try:
        rows = embed_dataset(job)
    except (CheckpointError, FileNotFoundError, ValueError) as e:
        return fail(PROG, e)
    print(f"wrote {rows} embeddings to {job.out}")
    return 0
