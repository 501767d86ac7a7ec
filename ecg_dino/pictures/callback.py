"""``FeaturePictures``: the ``ecg-dino show`` picture of one fixed ECG, drawn from the teacher during pretraining and
logged to TensorBoard as the image ``pictures/features`` (a YAML ``trainer.callbacks`` class_path; nothing imports it).

The ECG is a record of a dataset folder (``data``, ``record``, ``start_seconds``, ``seconds``: default 10), or,
without ``data``, the first global crop of the first training batch, kept for the whole run (its clean
``teacher_signal`` when the data module gives one; padded leads and time are not drawn).
``pictures/cost_fraction`` is the share of wall time spent here since the fit began. Under FSDP2 every rank runs
the forward; rank 0 draws and logs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
from lightning.pytorch.loggers import TensorBoardLogger

from datamodules.noise import NOISE_TYPES, add_noise, noise_folder
from ecg_dino.pictures.figure import to_rgb
from ecg_dino.pictures.show import picture, select_records
from ecg_dino.pictures.tokens import Tracing


class FeaturePictures(L.Callback):
    """Log the teacher's picture of one fixed ECG at the first step and every ``every_n_steps`` steps."""

    def __init__(
        self,
        every_n_steps: int = 500,
        data: str | None = None,
        source: str | None = None,
        record: str | None = None,
        start_seconds: float = 0.0,
        seconds: float | None = None,
        noise: str | None = None,
        snr_db: float = 6.0,
        nstdb: str | None = None,
        dpi: int = 80,
    ) -> None:
        super().__init__()
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps must be positive, got {every_n_steps}")
        if noise is not None and noise not in NOISE_TYPES:
            raise ValueError(f"unknown noise type {noise!r}; choose from {', '.join(NOISE_TYPES)}")
        self.every_n_steps = every_n_steps
        self.data, self.source, self.record = data, source, record
        self.start_seconds, self.seconds = start_seconds, seconds
        self.noise, self.snr_db, self.nstdb = noise, snr_db, nstdb
        self.dpi = dpi
        self.clean: Tracing | None = None
        self.noisy: Tracing | None = None
        self.logged_steps: list[int] = []
        self._seconds_spent = 0.0
        self._fit_start = 0.0

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.data is not None and self.clean is None:
            record = next(select_records(Path(self.data), self.source, self.record, 1))
            rate = pl_module.teacher.backbone.sample_rate_hz
            self._keep(Tracing.from_record(record, rate, self.start_seconds, self.seconds or 10.0))

    def _keep(self, clean: Tracing) -> None:
        """Fix the ECG (and its noisy twin, one fixed noise excerpt) for the whole run."""
        self.clean = clean
        self.seconds = self.seconds or clean.signal.shape[1] / clean.sample_rate_hz
        if self.noise is not None:
            folder = str(noise_folder(self.nstdb, self.data or "."))
            rng = np.random.default_rng(0)
            signal = add_noise(clean.signal, self.noise, self.snr_db, rng, "eval", clean.sample_rate_hz, folder)
            self.noisy = clean.with_signal(signal, f"+ NSTDB {self.noise} at {self.snr_db:g} dB")

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._fit_start = time.perf_counter()
        self._seconds_spent = 0.0

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, *args: Any) -> None:
        if self.clean is None:
            self._keep(Tracing.from_crops(batch["global"], 0, float(batch["sample_rate_hz"]), "first training crop"))
        if trainer.global_step == 0:
            self.log_picture(trainer, pl_module)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        step = trainer.global_step
        if step % self.every_n_steps == 0 or step == trainer.max_steps:
            self.log_picture(trainer, pl_module)

    def log_picture(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Draw the teacher's picture on every rank's forward; rank 0 logs it (once per step)."""
        step = trainer.global_step
        if self.clean is None or (self.logged_steps and self.logged_steps[-1] == step):
            return
        t0 = time.perf_counter()
        backbone = pl_module.teacher.backbone
        with trainer.precision_plugin.forward_context():
            fig = picture(
                {"teacher": backbone}, self.clean, self.noisy, {"teacher": None}, self.seconds, f"step {step}", self.dpi
            )
        if trainer.is_global_zero:
            image = to_rgb(fig)
            for logger in trainer.loggers:
                if isinstance(logger, TensorBoardLogger):
                    logger.experiment.add_image("pictures/features", image, step, dataformats="HWC")
        self._seconds_spent += time.perf_counter() - t0
        elapsed = max(time.perf_counter() - self._fit_start, 1e-9)
        metrics = {
            "pictures/seconds": time.perf_counter() - t0,
            "pictures/cost_fraction": self._seconds_spent / elapsed,
        }
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=step)
        self.logged_steps.append(step)
