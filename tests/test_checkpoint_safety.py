"""A checkpoint write that dies midway never replaces the last good checkpoint (files and sharded directories)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from conftest import TINY_MODULE, random_batch
from torch.utils.data import DataLoader

from callbacks.safe_checkpoint import SafeModelCheckpoint, discard, publish
from ecg_dino.checkpoint import load_backbone
from ecg_dino.module import DinoPretrainModule


def sharded_dir(path: Path, step: int) -> Path:
    """A stand-in for a sharded checkpoint directory."""
    path.mkdir()
    (path / "__0_0.distcp").write_text(f"step {step}")
    (path / "meta.pt").write_text(f"step {step}")
    return path


def step_of(path: Path) -> str:
    return (path / "meta.pt").read_text()


def test_publish_replaces_a_file_atomically(tmp_path: Path) -> None:
    final, partial = tmp_path / "last.ckpt", tmp_path / "last.ckpt.partial"
    final.write_text("old")
    partial.write_text("new")
    publish(partial, final)
    assert final.read_text() == "new" and not partial.exists()


def test_publish_replaces_a_directory_and_leaves_nothing_behind(tmp_path: Path) -> None:
    final = sharded_dir(tmp_path / "last.ckpt", 1)
    publish(sharded_dir(tmp_path / "last.ckpt.partial", 2), final)
    assert step_of(final) == "step 2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


def test_publish_after_a_kill_between_the_two_renames(tmp_path: Path) -> None:
    """Killed after ``last.ckpt`` became ``last.ckpt.old``: the old one is still whole, and the next save
    completes the swap."""
    old = sharded_dir(tmp_path / "last.ckpt.old", 1)
    final = tmp_path / "last.ckpt"
    publish(sharded_dir(tmp_path / "last.ckpt.partial", 2), final)
    assert step_of(final) == "step 2" and not old.exists()


def test_discard_removes_files_and_directories(tmp_path: Path) -> None:
    file, folder = tmp_path / "a.ckpt", sharded_dir(tmp_path / "b.ckpt", 0)
    file.write_text("x")
    discard(file)
    discard(folder)
    discard(tmp_path / "missing.ckpt")
    assert list(tmp_path.iterdir()) == []


def test_last_checkpoint_survives_a_write_that_dies_midway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save = L.Trainer.save_checkpoint

    def dies_at_step_4(trainer: L.Trainer, filepath: str | Path, *args, **kwargs) -> None:
        if trainer.global_step == 4:
            Path(filepath).write_bytes(b"PK\x03\x04 half a checkpoint")
            raise RuntimeError("killed while writing")
        save(trainer, filepath, *args, **kwargs)

    monkeypatch.setattr(L.Trainer, "save_checkpoint", dies_at_step_4)
    ckpt = SafeModelCheckpoint(dirpath=tmp_path, every_n_train_steps=2, save_last=True, save_top_k=0)
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=6,
        logger=False,
        callbacks=[ckpt],
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    batches = DataLoader([random_batch(seed=i) for i in range(6)], batch_size=None)
    with pytest.raises(RuntimeError, match="killed while writing"):
        trainer.fit(DinoPretrainModule(**TINY_MODULE), batches)

    last = tmp_path / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 2
    load_backbone(last)
    assert (tmp_path / "last.ckpt.partial").exists()  # the torn write, cleared by the next save
