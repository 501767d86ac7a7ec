"""``ecg-dino consolidate <sharded checkpoint dir> <out.ckpt>``: one file from a sharded checkpoint.

A ``ModelParallelStrategy`` checkpoint is a directory of ``torch.distributed.checkpoint`` shards (model and
optimizer) plus Lightning's ``meta.pt`` (hyper-parameters, step, loops, callbacks, data position). The output
keeps Lightning's single-file layout minus the optimizer state: the full ``state_dict`` (``student.*``,
``teacher.*``, ``gram_teacher.*``) and everything in ``meta.pt``. It loads with ``torch.load(weights_only=True)``
and ``ecg_dino.checkpoint.load_backbone``; resume training from the sharded directory itself. Runs in one
process without GPUs; the whole model must fit in CPU memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ecg_dino.commands.arguments import fail, parse
from ecg_dino.consolidate import consolidate

PROG = "ecg-dino consolidate"
EXAMPLE = f"{PROG} runs/vits/version_0/checkpoints/last.ckpt vits_last.ckpt"


@dataclass(frozen=True)
class ConsolidateOptions:
    """The sharded checkpoint directory and the single file to write."""

    sharded: Path
    """sharded checkpoint directory, e.g. runs/x/version_0/checkpoints/last.ckpt"""
    output: Path
    """the single-file checkpoint to write"""


def main(argv: list[str] | None = None) -> int:
    """Parse, consolidate, print the tensor count and size; 2 for a directory that is no checkpoint."""
    opts = parse(ConsolidateOptions, argv, PROG, EXAMPLE, __doc__, positional=("sharded", "output"))
    try:
        out = consolidate(opts.sharded, opts.output)
    except ValueError as e:
        return fail(PROG, e)
    n = len(torch.load(out, map_location="cpu", weights_only=True)["state_dict"])
    print(f"wrote {out} ({n} tensors, {out.stat().st_size / 2**20:.1f} MiB)")
    return 0
