"""``ecg-dino embed``: embed a dataset folder with a frozen backbone into one Parquet file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ecg_dino.checkpoint import CheckpointError
from ecg_dino.commands.arguments import fail, optional_path, source_arguments, source_options
from ecg_dino.features.cache import DEFAULT_CACHE
from ecg_dino.features.dataset import DatasetEmbedding, embed_dataset
from ecg_dino.features.records import LONG_RULES, EmbedOptions
from ecg_dino.features.sources import SOURCES

PROG = "ecg-dino embed"
QUARANTINE_SHOWN = 10  # quarantine reasons printed; the file holds them all


def parse(argv: list[str] | None) -> DatasetEmbedding:
    """The command line as a ``DatasetEmbedding``."""
    p = argparse.ArgumentParser(prog=PROG, description=__doc__)
    p.add_argument("--ckpt", type=Path, required=True, help="Lightning/consolidated checkpoint or .safetensors")
    p.add_argument("--data", type=Path, required=True, help="dataset folder")
    p.add_argument("--source", choices=sorted(SOURCES), default=None, help="dataset kind (guessed if omitted)")
    p.add_argument("--out", type=Path, required=True, help="output .parquet")
    p.add_argument("--which", default="teacher", choices=("teacher", "student"))
    p.add_argument("--crop-seconds", type=float, default=EmbedOptions.crop_seconds)
    p.add_argument("--long-rule", choices=LONG_RULES, default=EmbedOptions.long_rule)
    p.add_argument("--stride-fraction", type=float, default=EmbedOptions.stride_fraction)
    p.add_argument(
        "--patches", action="store_true", help="also store patch embeddings [L, P, D] (float16) and patch_valid [L, P]"
    )
    p.add_argument(
        "--beats",
        action="store_true",
        help="per-beat embeddings instead (annotated beats, else R peaks from neurokit2)",
    )
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--batch-size", type=int, default=EmbedOptions.batch_size)
    p.add_argument("--cache-dir", type=optional_path, default=DEFAULT_CACHE, help="embedding cache ('' disables)")
    source_arguments(p)
    args = p.parse_args(argv)
    try:
        options = EmbedOptions(
            args.crop_seconds, args.long_rule, args.stride_fraction, args.patches, args.precision, args.batch_size
        )
        generic = source_options(args)
    except ValueError as e:
        p.error(str(e))
    return DatasetEmbedding(
        args.ckpt, args.data, args.out, args.source, args.which, options, args.beats, args.cache_dir, generic
    )


def main(argv: list[str] | None = None) -> int:
    """Parse, embed, print the row count and the records skipped; 2 on an error naming the file."""
    job = parse(argv)
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
