"""Checkpoints written beside their final path and then renamed, so a run killed while writing never
replaces the last good checkpoint with a half-written one.

Works for single files (any strategy) and for sharded checkpoint directories (``ModelParallelStrategy``,
which bypasses ``CheckpointIO``). A file is published with one atomic ``os.replace``. A directory cannot
atomically replace a non-empty directory, so the old one is first renamed to ``<name>.old``: at every instant
``<name>`` or ``<name>.old`` holds a complete checkpoint, and ``<name>.old`` exists only when it does.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from weakref import proxy

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint

PARTIAL, OLD, TRASH = ".partial", ".old", ".trash"


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def discard(path: Path) -> None:
    """Delete a file or directory; a directory is renamed first so it never lingers half-deleted."""
    if path.is_dir():
        trash = _sibling(path, TRASH)
        shutil.rmtree(trash, ignore_errors=True)
        os.rename(path, trash)
        shutil.rmtree(trash)
    elif path.exists() or path.is_symlink():
        path.unlink()


def publish(partial: Path, path: Path) -> None:
    """Move the complete checkpoint ``partial`` (file or directory) to ``path``, replacing what was there."""
    if partial.is_file() and not path.is_dir():
        os.replace(partial, path)
        return
    old = _sibling(path, OLD)
    if path.exists():
        discard(old)
        os.rename(path, old)
    os.rename(partial, path)
    discard(old)


def save_checkpoint_safely(trainer: L.Trainer, path: str | Path, weights_only: bool = False) -> None:
    """``trainer.save_checkpoint`` to ``<path>.partial`` on every rank, then rank 0 publishes it as ``path``."""
    path = Path(path)
    partial = _sibling(path, PARTIAL)
    if trainer.is_global_zero:
        discard(partial)  # left by a write that was killed
    trainer.strategy.barrier("safe_checkpoint_clean")
    trainer.save_checkpoint(partial, weights_only)  # ends with a barrier
    if trainer.is_global_zero:
        publish(partial, path)
    trainer.strategy.barrier("safe_checkpoint_publish")


class SafeModelCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` whose every save (``last.ckpt`` included) goes through ``save_checkpoint_safely``."""

    def _save_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        save_checkpoint_safely(trainer, filepath, self.save_weights_only)
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.after_save_checkpoint(proxy(self))
