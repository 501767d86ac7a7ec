"""Which weights to embed with: a checkpoint's branch, or the same architecture randomly initialised."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from ecg_dino.checkpoint import backbone_state, checkpoint_sha256, load_backbone
from ecg_dino.model.vit import ECGViT, build_vit


@dataclass(frozen=True, kw_only=True)
class CheckpointOptions:
    """Which weights: a checkpoint and its branch (the flags ``--ckpt`` and ``--which`` of every tool)."""

    ckpt: Path
    """Lightning or consolidated checkpoint, or a backbone.safetensors export"""
    which: Literal["teacher", "student"] = "teacher"
    """the checkpoint's branch: the EMA teacher (the one to use) or the student"""


@dataclass(frozen=True)
class BackboneSpec:
    """Which weights to embed with: a checkpoint's ``which`` branch, or its architecture freshly initialised.

    ``random_init_seed`` builds the checkpoint's backbone config and calls ``init_weights()`` under that seed
    (the random-init baseline: same architecture, no pretraining).
    """

    checkpoint: Path
    which: str = "teacher"
    random_init_seed: int | None = None

    def load(self) -> ECGViT:
        """The backbone in eval mode."""
        if self.random_init_seed is None:
            return load_backbone(self.checkpoint, self.which)
        config, _ = backbone_state(self.checkpoint, self.which)
        with torch.random.fork_rng():
            torch.manual_seed(self.random_init_seed)
            model = build_vit(**config)
            model.init_weights()
        return model.eval()

    def cache_key(self) -> str:
        """The embedding cache's name for these weights: the file's hash, or the config and seed."""
        if self.random_init_seed is None:
            return f"{checkpoint_sha256(self.checkpoint)}:{self.which}"
        config, _ = backbone_state(self.checkpoint, self.which)
        return f"random-init:{json.dumps(config, sort_keys=True)}:{self.random_init_seed}"
