"""The EMA and Gram teachers run deterministically (eval mode, no drop-path) inside a real ``Trainer.fit``."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from conftest import TINY_MODULE, random_batch
from torch.utils.data import DataLoader

from ecg_dino.hparams import GramArgs
from ecg_dino.module import DinoPretrainModule


class RecordingModule(DinoPretrainModule):
    """Runs the teachers twice on the step's global crops before each real step and records what it saw."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.seen: list[dict] = []

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        crops = batch["global"] | {"sample_rate_hz": batch["sample_rate_hz"]}
        with torch.no_grad():
            runs = [
                [branch.backbone.forward_features(**crops)["cls"] for branch in (self.teacher, self.gram_teacher)]
                for _ in range(2)
            ]
        self.seen.append(
            {
                "training": [m.training for t in (self.teacher, self.gram_teacher) for m in t.modules()],
                "max_diff": max(float((a - b).abs().max()) for a, b in zip(*runs)),
            }
        )
        return super().training_step(batch, batch_idx)

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self.log("val/loss", self.compute_losses(batch, self.global_step, 0.04)["loss"], batch_size=1)


def _fit(module: DinoPretrainModule, root: Path, ckpt_path: str | None = None, max_steps: int = 4) -> L.Trainer:
    batches = [random_batch(seed=i) for i in range(max_steps)]
    trainer = L.Trainer(
        max_steps=max_steps,
        accelerator="cpu",
        default_root_dir=root,
        logger=False,
        val_check_interval=2,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    loader = DataLoader(batches, batch_size=None)
    trainer.fit(
        module, train_dataloaders=loader, val_dataloaders=DataLoader(batches[:1], batch_size=None), ckpt_path=ckpt_path
    )
    return trainer


def _module() -> RecordingModule:
    backbone = TINY_MODULE["backbone"] | {"drop_path_rate": 0.5}
    return RecordingModule(**(TINY_MODULE | {"backbone": backbone}), gram=GramArgs(loss_weight=1.0))


def test_teachers_are_deterministic_and_in_eval_mode_during_fit(tmp_path: Path):
    module = _module()
    _fit(module, tmp_path)
    assert len(module.seen) == 4  # steps before and after each validation run
    for step, seen in enumerate(module.seen):
        assert not any(seen["training"]), f"a teacher submodule is in train mode at step {step}"
        assert seen["max_diff"] == 0.0, f"teacher forward not deterministic at step {step}: {seen['max_diff']}"


def test_teachers_stay_in_eval_mode_after_resume(tmp_path: Path):
    first = _module()
    trainer = _fit(first, tmp_path, max_steps=2)
    ckpt = trainer.checkpoint_callback.best_model_path or str(next(tmp_path.rglob("*.ckpt")))
    resumed = _module()
    _fit(resumed, tmp_path / "resumed", ckpt_path=ckpt, max_steps=4)
    assert len(resumed.seen) == 2
    for seen in resumed.seen:
        assert not any(seen["training"]) and seen["max_diff"] == 0.0


def test_student_keeps_drop_path_teachers_do_not():
    module = _module()
    rates = lambda branch: [b.drop_path.p for b in branch.backbone.blocks]  # noqa: E731
    assert max(rates(module.student)) == 0.5
    assert max(rates(module.teacher)) == 0.0
    assert max(b.drop_path.p for b in module.gram_teacher.backbone.blocks) == 0.0
