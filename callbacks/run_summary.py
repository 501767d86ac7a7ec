"""Tell the user where a run's TensorBoard logs and checkpoints are, and how to look at them."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.utilities import rank_zero_info


class RunSummary(L.Callback):
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        ckpt = trainer.checkpoint_callback
        last = getattr(ckpt, "last_model_path", "") or getattr(ckpt, "best_model_path", "")
        logdir = trainer.logger.log_dir if trainer.logger else "(no logger)"
        rank_zero_info(
            f"\nrun finished at step {trainer.global_step}\n"
            f"  TensorBoard logs: {logdir}   (make tensorboard)\n"
            f"  last checkpoint:  {last}\n"
        )
