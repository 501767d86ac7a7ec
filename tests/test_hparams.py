"""Hyperparameter groups: checkpoints hold them as plain dicts (weights-only loading) and rebuild the module;
the flat names of checkpoints from before the grouping map onto every field of every group."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import lightning as L
import torch
from conftest import TINY_MODULE, random_batch
from torch.utils.data import DataLoader

from ecg_dino.hparams import FLAT_NAMES, GROUPS, GramArgs, PretrainConfig, TeacherArgs, grouped
from ecg_dino.module import DinoPretrainModule

# The hyperparameters of a checkpoint written by ``ecg-dino fit`` before the grouping (commit e2cc631), verbatim.
OLD_HPARAMS = {
    "_class_path": "ecg_dino.module.DinoPretrainModule",
    "backbone": {"depth": 2, "embed_dim": 64, "num_heads": 2, "size": "tiny"},
    "num_prototypes": 64,
    "ibot_num_prototypes": 64,
    "head_hidden_dim": 64,
    "head_bottleneck_dim": 32,
    "head_layers": 3,
    "normalized_prototypes": False,
    "student_temp": 0.1,
    "teacher_temp": 0.07,
    "teacher_temp_warmup_start": 0.04,
    "teacher_temp_warmup_steps": 2,
    "dino_loss_weight": 1.0,
    "ibot_loss_weight": 1.0,
    "koleo_loss_weight": 0.1,
    "koleo_across_ranks": False,
    "mask_sample_probability": 0.5,
    "mask_ratio_range": [0.1, 0.5],
    "gram_loss_weight": 1.0,
    "gram_start_step": 2,
    "gram_warmup_steps": 0,
    "gram_refresh_every": 1000,
    "lr": 0.001,
    "min_lr": 1e-06,
    "warmup_steps": 2,
    "weight_decay": 0.04,
    "weight_decay_end": 0.2,
    "layer_decay": 1.0,
    "betas": [0.9, 0.999],
    "freeze_prototypes_steps": 0,
    "momentum_start": 0.992,
    "momentum_end": 1.0,
    "seed": 0,
    "activation_checkpointing": False,
    "max_nonfinite_steps": 10,
    "_instantiator": "lightning.pytorch.cli.instantiate_module",
}


def test_old_flat_hyperparameters_map_onto_every_group_field() -> None:
    ungrouped = {"_class_path", "_instantiator", "backbone", "student_temp", "seed", "activation_checkpointing"}
    assert set(FLAT_NAMES) == set(OLD_HPARAMS) - ungrouped - {"max_nonfinite_steps"}
    assert sorted(FLAT_NAMES.values()) == sorted((g, f.name) for g, cls in GROUPS.items() for f in fields(cls))
    new = grouped(OLD_HPARAMS)
    assert set(new) == set(OLD_HPARAMS) - set(FLAT_NAMES) | set(GROUPS)
    cfg = PretrainConfig.of(**{g: new[g] for g in GROUPS})
    assert (cfg.dino.num_prototypes, cfg.head.bottleneck_dim, cfg.teacher.temp_warmup_steps) == (64, 32, 2)
    assert (cfg.gram.start_step, cfg.optim.lr, cfg.ibot.mask_ratio_range) == (2, 1e-3, [0.1, 0.5])
    assert grouped(new) == new  # grouped hyperparameters pass through


def test_a_fit_checkpoint_loads_weights_only_and_rebuilds_the_module(tmp_path: Path) -> None:
    """Groups given as dataclasses are stored as plain dicts, which ``torch.load(weights_only=True)`` accepts."""
    module = DinoPretrainModule(
        **TINY_MODULE | {"teacher": TeacherArgs(temp=0.05)}, gram=GramArgs(loss_weight=1.0, start_step=1)
    )
    trainer = L.Trainer(
        max_steps=2,
        accelerator="cpu",
        logger=False,
        default_root_dir=tmp_path,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, DataLoader([random_batch(seed=i) for i in range(2)], batch_size=None))
    (path,) = tmp_path.rglob("*.ckpt")
    hparams = torch.load(path, weights_only=True)["hyper_parameters"]
    assert all(type(hparams[g]) is dict for g in GROUPS)
    assert hparams["gram"]["loss_weight"] == 1.0 and hparams["teacher"]["temp"] == 0.05
    rebuilt = DinoPretrainModule.load_from_checkpoint(path)
    assert rebuilt.cfg == module.cfg and rebuilt.gram_teacher is not None
    assert all(torch.equal(v, module.state_dict()[k]) for k, v in rebuilt.state_dict().items())
