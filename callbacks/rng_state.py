"""Every rank's global random states (torch, CUDA, numpy, Python) in each checkpoint, restored on resume.

Drop-path and anything else drawing from the global generators then continues as in an uninterrupted run.
States are restored right before the first resumed batch, after Lightning has built the DataLoader iterator
(which draws a seed from the torch generator). Stored as tensors and tuples, so the checkpoint still loads
with ``weights_only=True``. A resume on a different world size keeps the freshly seeded states.
"""

from __future__ import annotations

import random
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.distributed as dist
from lightning.pytorch.utilities import rank_zero_warn

from ecg_dino.distributed import is_distributed


def capture() -> dict[str, Any]:
    """This process's random states."""
    _, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": (torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)),
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def restore(state: dict[str, Any]) -> None:
    """Set this process's random states from ``capture()``'s output."""
    torch.set_rng_state(state["torch"])
    keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state(("MT19937", keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


class RNGState(L.Callback):
    """Save all ranks' random states with every checkpoint; restore this rank's before the first batch."""

    def __init__(self) -> None:
        super().__init__()
        self._resumed: list[dict[str, Any]] | None = None

    def state_dict(self) -> dict[str, Any]:
        states = [capture()]
        if is_distributed():
            states = [None] * dist.get_world_size()
            dist.all_gather_object(states, capture())
        return {"ranks": states}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._resumed = state_dict["ranks"]

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        if self._resumed is None:
            return
        if len(self._resumed) == trainer.world_size:
            restore(self._resumed[trainer.global_rank])
        else:
            rank_zero_warn(
                f"random states saved by {len(self._resumed)} ranks, resuming on {trainer.world_size}: "
                "drop-path draws will differ from the interrupted run"
            )
        self._resumed = None
