"""One single-file checkpoint from a sharded one (``ecg-dino consolidate``): the full model weights rebuilt from
the ``torch.distributed.checkpoint`` shards with Lightning's ``meta.pt``, without the optimizer state, written
beside the destination and renamed into place. It loads with ``torch.load(weights_only=True)`` and
``ecg_dino.checkpoint.load_backbone``; training resumes from the sharded directory itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.load import _METADATA_FILENAME
from torch.distributed.checkpoint import FileSystemReader
from torch.distributed.checkpoint.format_utils import _EmptyStateDictLoadPlanner
from torch.distributed.checkpoint.state_dict_loader import _load_state_dict

from callbacks.safe_checkpoint import PARTIAL, publish


def consolidated_checkpoint(src: str | Path) -> dict[str, Any]:
    """The full model weights of a sharded checkpoint with its Lightning metadata, no optimizer state."""
    src = Path(src)
    if not (src.is_dir() and (src / _METADATA_FILENAME).is_file()):
        raise ValueError(f"{src}: not a sharded Lightning checkpoint (a directory with {_METADATA_FILENAME})")
    weights: dict[str, Any] = {}
    # Private torch API, as in Lightning's own consolidation: rebuild tensors from the shard metadata only.
    _load_state_dict(
        weights,
        storage_reader=FileSystemReader(src),
        planner=_EmptyStateDictLoadPlanner(keys={"state_dict"}),
        no_dist=True,
    )
    meta = torch.load(src / _METADATA_FILENAME, map_location="cpu", weights_only=True)
    return {**meta, "state_dict": weights["state_dict"]}


def consolidate(src: str | Path, dst: str | Path) -> Path:
    """Write ``consolidated_checkpoint(src)`` to ``dst`` (beside it first, then renamed into place)."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    partial = dst.with_name(dst.name + PARTIAL)
    torch.save(consolidated_checkpoint(src), partial)
    publish(partial, dst)
    return dst
