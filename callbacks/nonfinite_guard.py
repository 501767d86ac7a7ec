"""Skip the optimizer update when the loss is NaN or Inf on any rank; stop the run after too many in a row.

Lightning refuses a ``training_step`` that returns None under more than one process, and FSDP needs every
rank to run backward anyway, so the step runs in full and only the update is dropped: before backward the
finite-loss flag is all-reduced (every rank decides alike), and before the optimizer step the gradients of a
bad step are set to None, so AdamW changes nothing (no moments, no weight decay). ``global_step`` still
advances, keeping schedules, masks and data in step, and the EMA teacher takes its usual step towards the
unchanged student. The running count is logged as ``train/nonfinite_steps``; after ``max_consecutive`` bad
steps in a row the guard saves a checkpoint and raises ``NonFiniteLossError``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.distributed as dist

from callbacks.safe_checkpoint import save_checkpoint_safely
from ecg_dino.distributed import is_distributed


class NonFiniteLossError(RuntimeError):
    """The loss was NaN or Inf for too many consecutive steps."""


def all_ranks_finite(loss: torch.Tensor) -> bool:
    """True when ``loss`` is finite on every rank of the default process group (a collective)."""
    bad = (~torch.isfinite(loss.detach())).any().float().reshape(1)
    if is_distributed():
        dist.all_reduce(bad, op=dist.ReduceOp.MAX)
    return not bool(bad.item())


class NonFiniteGuard(L.Callback):
    """Drop the update of steps with a non-finite loss, count them, stop after a streak of them."""

    def __init__(self, max_consecutive: int = 10) -> None:
        super().__init__()
        self.max_consecutive = max_consecutive
        self.total = 0
        self.consecutive = 0
        self._skip = False

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor) -> None:
        self._skip = not all_ranks_finite(loss)

    def on_before_optimizer_step(
        self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        if self._skip:
            optimizer.zero_grad(set_to_none=True)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        self.total += int(self._skip)
        self.consecutive = self.consecutive + 1 if self._skip else 0
        self._skip = False
        pl_module.log("train/nonfinite_steps", float(self.total), on_step=True, on_epoch=False)
        if self.consecutive >= self.max_consecutive:
            path = self._checkpoint_path(trainer)
            save_checkpoint_safely(trainer, path)
            raise NonFiniteLossError(
                f"the loss was NaN or Inf for {self.consecutive} consecutive steps (up to step "
                f"{trainer.global_step - 1}; {self.total} in this run), so training stopped. Checkpoint: {path}. "
                "Lower the learning rate, raise gradient clipping or check the data, then resume from it."
            )

    @staticmethod
    def _checkpoint_path(trainer: L.Trainer) -> Path:
        dirpath = getattr(trainer.checkpoint_callback, "dirpath", None) or trainer.default_root_dir
        return Path(dirpath) / f"nonfinite-step={trainer.global_step}.ckpt"

    def state_dict(self) -> dict[str, int]:
        return {"total": self.total, "consecutive": self.consecutive}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        self.total, self.consecutive = state_dict["total"], state_dict["consecutive"]
