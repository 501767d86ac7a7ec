"""A short pretraining fit on fixed global batches, on 1 process or sharded with FSDP2 on N CPU processes.

Run as a script by ``test_distributed.py`` (``python tests/fsdp_worker.py OUT WORLD fsdp2|fsdp1``: FSDP2 on
CPU processes or FSDP1 on GPUs; Lightning's launcher starts the other ranks by running it again); the 1-process
reference runs in the test itself. Each rank
writes ``OUT/<phase>_rank<r>.pt`` with its losses, parameter shard shapes, an EMA check and teacher outputs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import lightning as L
import numpy as np
import torch
from conftest import TINY_MODULE, random_batch
from lightning.pytorch.strategies import ModelParallelStrategy
from torch.utils.data import DataLoader

from callbacks.ema_teacher import EMATeacher, local_tensor
from callbacks.safe_checkpoint import SafeModelCheckpoint
from ecg_dino.hparams import GramArgs, KoLeoArgs
from ecg_dino.module import DinoPretrainModule
from ecg_dino.parallel import DinoFSDPStrategy, close_process_group
from ecg_dino.probes.online import OnlineProbe, ProbeSet

GLOBAL_B = 4
MAX_STEPS = 4
NAN_STEP = 1  # the last rank's loss is NaN at this step, so every rank must skip it
EMA_STEP = 2  # the teacher update after this step is checked against the formula
CKPT_EVERY = 2
# KoLeo off: its distributed gradient differs by design (the gathered neighbour is a constant).
MODULE = dict(TINY_MODULE, gram=GramArgs(loss_weight=1.0), koleo=KoLeoArgs(loss_weight=0.0))


def rank_rows(n_crops: int, rank: int, world: int) -> torch.Tensor:
    """Rows of this rank's samples in a crop-major global batch (row c*B + b is crop c of sample b)."""
    per = GLOBAL_B // world
    return torch.cat([torch.arange(c * GLOBAL_B + rank * per, c * GLOBAL_B + (rank + 1) * per) for c in range(n_crops)])


def rank_batch(batch: dict, rank: int, world: int) -> dict:
    out = {k: batch[k] for k in ("sample_rate_hz", "n_global_crops", "n_local_crops")}
    for group in ("global", "local"):
        n_crops = batch[group]["signal"].shape[0] // GLOBAL_B
        rows = rank_rows(n_crops, rank, world)
        out[group] = {k: v[rows] for k, v in batch[group].items()}
    return out


def global_batch(step: int) -> dict:
    return random_batch(B=GLOBAL_B, seed=step)


class FixedBatchModule(DinoPretrainModule):
    """Trains on this rank's share of fixed global batches; iBOT masks are drawn for the whole global batch
    (so a sample gets the same mask however the batch is split) and the last rank's loss is NaN at NAN_STEP."""

    def train_dataloader(self) -> DataLoader:
        rank, world = self.trainer.global_rank, self.trainer.world_size
        batches = [rank_batch(global_batch(s), rank, world) for s in range(self.trainer.global_step, MAX_STEPS)]
        return DataLoader(batches, batch_size=None)

    def _ibot_masks(self, patch_mask: torch.Tensor, step: int) -> torch.Tensor:
        g = global_batch(step)["global"]
        ps = self.student.backbone.patch_samples
        in_time = torch.arange(patch_mask.shape[-1])[None, :] < (g["valid_samples"] // ps)[:, None]
        full = g["lead_mask"][:, :, None] & in_time[:, None, :]  # [2*GLOBAL_B, L, P]
        masks = self.mask_generator(full, generator=torch.Generator().manual_seed(step))
        return masks[rank_rows(2, self.trainer.global_rank, self.trainer.world_size)]

    def compute_losses(self, batch: dict, step: int, teacher_temp: float) -> dict:
        out = super().compute_losses(batch, step, teacher_temp)
        if step == NAN_STEP and self.trainer.global_rank == self.trainer.world_size - 1:
            out["loss"] = out["loss"] * float("nan")
        return out


def max_abs(x: torch.Tensor) -> float:
    return float(x.abs().max()) if x.numel() else 0.0


class Recorder(L.Callback):
    """Losses per step and this rank's student and teacher shards at the start of some steps."""

    def __init__(self) -> None:
        self.losses: dict[int, float] = {}
        self.snapshots: dict[int, tuple[list[torch.Tensor], list[torch.Tensor]]] = {}
        self.teacher_in_train_mode: list[bool] = []

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor) -> None:
        """After the step's forward: were the teachers in train mode while it ran?"""
        branches = (pl_module.teacher, pl_module.gram_teacher)
        self.teacher_in_train_mode.append(any(m.training for b in branches for m in b.modules()))

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: object) -> None:
        if trainer.global_step in (NAN_STEP, NAN_STEP + 1, EMA_STEP, EMA_STEP + 1):
            snap = [
                [local_tensor(p).detach().clone() for p in branch.parameters()]
                for branch in (pl_module.student, pl_module.teacher)
            ]
            self.snapshots[trainer.global_step] = tuple(snap)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: dict, *args: object
    ) -> None:
        self.losses[trainer.global_step - 1] = float(outputs["loss"])

    def skipped_update(self) -> float:
        """Largest change of a student shard over the step with the NaN loss (0 when the update was dropped)."""
        before, after = self.snapshots[NAN_STEP][0], self.snapshots[NAN_STEP + 1][0]
        return max(max_abs(a - b) for a, b in zip(after, before))

    def ema_error(self, trainer: L.Trainer) -> float:
        """Largest |teacher' - (m * teacher + (1 - m) * student')| over this rank's shards."""
        ema = next(c for c in trainer.callbacks if isinstance(c, EMATeacher))
        m = ema.momentum(EMA_STEP)
        _, teacher = self.snapshots[EMA_STEP]
        student_next, teacher_next = self.snapshots[EMA_STEP + 1]
        return max(max_abs(tn - (m * t + (1 - m) * sn)) for t, sn, tn in zip(teacher, student_next, teacher_next))


def probe_outputs(module: DinoPretrainModule) -> dict[str, torch.Tensor]:
    """The teacher backbone's outputs on a fixed input (a collective under FSDP)."""
    crops = {k: v.to(module.device) for k, v in random_batch(B=2, seed=99)["global"].items()}
    with torch.no_grad():
        out = module.teacher.backbone.forward_features(**crops, sample_rate_hz=250.0)
    return {"cls": out["cls"].cpu(), "patches": out["patches"].cpu()}


def online_probe() -> OnlineProbe:
    """An online probe, every 2 steps, on a synthetic set whose class 1 holds an 8 Hz sine in its noise."""
    n, rng = 32, np.random.default_rng(5)
    labels = np.arange(n) % 2
    sine = np.sin(2 * np.pi * 8 * np.arange(250) / 250)
    probe = OnlineProbe(every_n_steps=2)
    probe.sets = [
        ProbeSet(
            "synthetic",
            signal=(0.3 * rng.standard_normal((n, 2, 250)) + labels[:, None, None] * sine).astype(np.float32),
            lead_ids=np.tile([1, 6], (n, 1)),
            lead_mask=np.ones((n, 2), bool),
            valid_samples=np.full(n, 250),
            item=np.arange(n),
            labels=labels,
            folds=(np.arange(n) // 2) % 2,
            multilabel=False,
        )
    ]
    return probe


def strategy(world: int, kind: str) -> tuple[str, L.pytorch.strategies.Strategy | str]:
    """(accelerator, strategy): one CPU process, FSDP2 on CPU processes or FSDP1 on GPUs."""
    if world == 1:
        return "cpu", "auto"
    if kind == "fsdp1":
        return "gpu", DinoFSDPStrategy()
    return "cpu", ModelParallelStrategy(data_parallel_size=world, tensor_parallel_size=1)


def fit(
    out_dir: Path,
    world: int,
    ckpt_path: Path | None = None,
    kind: str = "fsdp2",
) -> tuple[L.Trainer, FixedBatchModule, dict]:
    """Fit to MAX_STEPS (from ``ckpt_path`` if given) and return what a test compares."""
    L.seed_everything(0)
    module = FixedBatchModule(**MODULE)
    accelerator, strategy_ = strategy(world, kind)
    recorder, probe = Recorder(), online_probe()
    ckpt = SafeModelCheckpoint(dirpath=out_dir / "ckpt", every_n_train_steps=CKPT_EVERY, save_last=True, save_top_k=-1)
    trainer = L.Trainer(
        accelerator=accelerator,
        devices=world,
        strategy=strategy_,
        max_steps=MAX_STEPS,
        gradient_clip_val=1.0,
        callbacks=[recorder, ckpt, probe],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        use_distributed_sampler=False,  # each rank's loader already holds its share
    )
    trainer.fit(module, ckpt_path=ckpt_path)
    result = {
        "losses": recorder.losses,
        "ema_error": recorder.ema_error(trainer),
        "skipped_update": recorder.skipped_update() if NAN_STEP in recorder.snapshots else None,
        "nonfinite_steps": float(trainer.callback_metrics["train/nonfinite_steps"]),
        "shards": {n: (tuple(p.shape), tuple(local_tensor(p).shape)) for n, p in module.named_parameters()},
        "probe": probe_outputs(module),
        "online_probe": probe.history,
        "teacher_in_train_mode": recorder.teacher_in_train_mode,
    }
    return trainer, module, result


def main(out_dir: Path, world: int, kind: str) -> None:
    trainer, _, first = fit(out_dir, world, kind=kind)
    torch.save(first, out_dir / f"first_rank{trainer.global_rank}.pt")
    _, _, resumed = fit(out_dir, world, out_dir / "ckpt" / f"epoch=0-step={CKPT_EVERY}.ckpt", kind)
    torch.save(resumed, out_dir / f"resumed_rank{trainer.global_rank}.pt")
    close_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
