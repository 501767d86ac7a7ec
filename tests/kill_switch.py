"""A callback that SIGKILLs its own process at the start of a given step: a crash at a known point of a run."""

from __future__ import annotations

import os
import signal

import lightning as L


class SigkillAt(L.Callback):
    def __init__(self, step: int) -> None:
        super().__init__()
        self.step = step

    def on_train_batch_start(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)
