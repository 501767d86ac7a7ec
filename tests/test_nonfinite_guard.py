"""A NaN/Inf loss skips the update and is counted in TensorBoard; a streak of them stops the run with a
checkpoint and a clear message."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from conftest import TINY_MODULE, random_batch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.data import DataLoader

from callbacks.nonfinite_guard import NonFiniteLossError
from callbacks.safe_checkpoint import SafeModelCheckpoint
from ecg_dino.module import DinoPretrainModule

FIRST_BAD = 2
MAX_BAD = 3


class NaNFromStep(DinoPretrainModule):
    def compute_losses(self, batch: dict, step: int, teacher_temp: float) -> dict:
        out = super().compute_losses(batch, step, teacher_temp)
        if step >= FIRST_BAD:
            out["loss"] = out["loss"] * float("inf")
        return out


class StudentAt(L.Callback):
    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, *args) -> None:
        if trainer.global_step == FIRST_BAD:
            self.params = [p.detach().clone() for p in pl_module.student.parameters()]


def test_a_streak_of_nonfinite_losses_stops_with_a_checkpoint(tmp_path: Path) -> None:
    module = NaNFromStep(**TINY_MODULE, max_nonfinite_steps=MAX_BAD)
    snapshot = StudentAt()
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=20,
        log_every_n_steps=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=L.pytorch.loggers.TensorBoardLogger(tmp_path, name="run", version=0),
        callbacks=[snapshot, SafeModelCheckpoint(dirpath=tmp_path / "ckpt", save_top_k=0)],
    )
    batches = DataLoader([random_batch(seed=i) for i in range(20)], batch_size=None)
    with pytest.raises(NonFiniteLossError, match=f"NaN or Inf for {MAX_BAD} consecutive steps"):
        trainer.fit(module, batches)

    stop_step = FIRST_BAD + MAX_BAD
    ckpt = torch.load(tmp_path / "ckpt" / f"nonfinite-step={stop_step}.ckpt", weights_only=True)
    assert ckpt["global_step"] == stop_step
    for before, after in zip(snapshot.params, module.student.parameters()):
        torch.testing.assert_close(after, before, rtol=0, atol=0)  # no update since the first bad step
    events = EventAccumulator(str(tmp_path / "run" / "version_0"))
    events.Reload()
    counts = {e.step: e.value for e in events.Scalars("train/nonfinite_steps")}
    assert counts[FIRST_BAD - 1] == 0 and counts[FIRST_BAD] == 1 and counts[FIRST_BAD + 1] == 2
