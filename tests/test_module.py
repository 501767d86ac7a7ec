"""DinoPretrainModule: a short Lightning fit on in-memory batches, losses, gradients, teacher, logs."""

from pathlib import Path

import lightning as L
import pytest
import torch
from conftest import TINY_MODULE, random_batch
from torch.utils.data import DataLoader

from ecg_dino.hparams import GramArgs
from ecg_dino.module import DinoPretrainModule


def loader(n_batches: int = 4) -> DataLoader:
    batches = [random_batch(seed=i) for i in range(n_batches)]
    return DataLoader(batches, batch_size=None, shuffle=False)


def test_every_student_parameter_gets_a_gradient():
    module = DinoPretrainModule(**TINY_MODULE, gram=GramArgs(loss_weight=1.0)).train()
    out = module.compute_losses(random_batch(), step=0, teacher_temp=0.04)
    assert set(out) >= {"loss", "dino_loss", "ibot_loss", "koleo_loss", "gram_loss", "diag/teacher_cls_std"}
    out["loss"].backward()
    trainable = [(n, p) for n, p in module.student.named_parameters() if p.requires_grad]
    missing = [n for n, p in trainable if p.grad is None]
    assert missing == []
    assert all(p.grad is None for p in module.teacher.parameters())


def test_teacher_starts_as_student_copy():
    module = DinoPretrainModule(**TINY_MODULE)
    for (n, s), t in zip(module.student.named_parameters(), module.teacher.parameters()):
        torch.testing.assert_close(s, t, msg=n)


def test_fit_logs_every_loss_and_moves_teacher(tmp_path: Path):
    module = DinoPretrainModule(**TINY_MODULE, gram=GramArgs(loss_weight=1.0, start_step=2, refresh_every=2))
    teacher_before = [p.clone() for p in module.teacher.parameters()]
    trainer = L.Trainer(
        max_steps=4,
        accelerator="cpu",
        logger=L.pytorch.loggers.TensorBoardLogger(tmp_path, name="t"),
        log_every_n_steps=1,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, train_dataloaders=loader())
    assert trainer.global_step == 4
    logged = trainer.logged_metrics
    for key in (
        "train/loss",
        "train/dino_loss",
        "train/ibot_loss",
        "train/koleo_loss",
        "train/gram_loss",
        "diag/teacher_cls_std",
        "diag/teacher_mean_entropy",
        "diag/prototypes_used",
        "sched/lr",
        "sched/momentum",
        "sched/teacher_temp",
    ):
        assert key in logged, key
    moved = any(not torch.equal(a, b) for a, b in zip(teacher_before, module.teacher.parameters()))
    assert moved, "the EMA teacher never changed"
    assert list((tmp_path / "t").rglob("events.out.tfevents.*")), "no TensorBoard event file"


@pytest.mark.parametrize("algorithm", ["norm", "value"])
def test_bf16_fit_clips_gradients_with_the_fused_optimizer(algorithm: str):
    """bf16-mixed with clipping and the fused AdamW, a pair Lightning's mixed-precision plugin refuses to clip."""
    clipped: list[torch.Tensor] = []

    class Recorded(DinoPretrainModule):
        def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
            super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)
            grads = [p.grad for p in self.student.parameters() if p.grad is not None]
            norm = torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))
            clipped.append(norm if algorithm == "norm" else max(g.abs().max() for g in grads))

    trainer = L.Trainer(
        max_steps=2,
        accelerator="cpu",
        precision="bf16-mixed",
        gradient_clip_val=1e-3,
        gradient_clip_algorithm=algorithm,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    module = Recorded(**TINY_MODULE)
    trainer.fit(module, train_dataloaders=loader(2))
    assert trainer.global_step == 2 and module.optimizers().optimizer.defaults["fused"]
    assert len(clipped) == 2 and all(float(c) <= 1e-3 * (1 + 1e-4) for c in clipped), clipped


def test_teacher_reads_the_clean_view_when_the_batch_has_one():
    module = DinoPretrainModule(**TINY_MODULE, gram=GramArgs(loss_weight=1.0)).train()
    batch = random_batch()
    torch.manual_seed(0)
    plain = module.compute_losses(batch, step=0, teacher_temp=0.04)
    batch["global"]["teacher_signal"] = batch["global"]["signal"].clone()
    torch.manual_seed(0)
    same = module.compute_losses(batch, step=0, teacher_temp=0.04)
    for key in ("dino_loss", "ibot_loss", "gram_loss"):
        torch.testing.assert_close(same[key], plain[key], msg=key)
    batch["global"]["teacher_signal"] = torch.zeros_like(batch["global"]["signal"])  # a different teacher view
    torch.manual_seed(0)
    other = module.compute_losses(batch, step=0, teacher_temp=0.04)
    for key in ("diag/teacher_cls_std", "ibot_loss", "gram_loss"):  # teacher class tokens, patch targets
        assert not torch.allclose(other[key], plain[key]), key
    torch.testing.assert_close(other["koleo_loss"], plain["koleo_loss"])  # the student side is unchanged


def test_crop_counts_come_from_the_batch_and_are_checked():
    module = DinoPretrainModule(**TINY_MODULE).train()
    three = random_batch(B=2, n_local=3)
    assert torch.isfinite(module.compute_losses(three, step=0, teacher_temp=0.04)["loss"])
    one_global = random_batch(B=4) | {"n_global_crops": 1}  # 8 rows read as 1 crop × 8: no DINO pairs
    with pytest.raises(ValueError, match="at least 2 global crops"):
        module.compute_losses(one_global, step=0, teacher_temp=0.04)
    wrong_local = random_batch(B=4, n_local=2) | {"n_local_crops": 3}
    with pytest.raises(ValueError, match="crop-major"):
        module.compute_losses(wrong_local, step=0, teacher_temp=0.04)


def test_gram_weight_is_zero_then_ramps_to_full():
    module = DinoPretrainModule(**TINY_MODULE, gram=GramArgs(loss_weight=2.0, start_step=2, warmup_steps=3))
    weights: list[float] = []

    class Record(L.Callback):
        def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
            weights.append(float(trainer.callback_metrics["sched/gram_weight"]))

    trainer = L.Trainer(
        max_steps=7,
        accelerator="cpu",
        logger=False,
        callbacks=[Record()],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, train_dataloaders=loader(7))
    assert weights == pytest.approx([0, 0, 0, 1, 2, 2, 2])
