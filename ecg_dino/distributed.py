"""Rank and world size of the default process group, for code that runs with or without ``torch.distributed``."""

from __future__ import annotations

import torch.distributed as dist


def is_distributed() -> bool:
    """True when a default process group is up (collectives are needed and allowed)."""
    return dist.is_available() and dist.is_initialized()


def rank_and_world_size() -> tuple[int, int]:
    """(rank, world size) of the default process group; (0, 1) without one."""
    return (dist.get_rank(), dist.get_world_size()) if is_distributed() else (0, 1)


def world_size() -> int:
    """Number of ranks of the default process group, 1 when ``torch.distributed`` is not initialised."""
    return rank_and_world_size()[1]
