"""Export (``ecg-dino export``): a checkpoint's frozen backbone -> ``backbone.safetensors`` + ``backbone.json``.

The safetensors file is self-contained (its metadata holds the backbone config, so ``load_backbone`` reads
it directly); ``backbone.json`` repeats the config with what a user needs to feed the model (sample rate,
patch length, width, lead vocabulary) and where the weights came from.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ecg_dino.checkpoint import (
    CheckpointError,
    backbone_state,
    checkpoint_sha256,
    export_safetensors,
    load_backbone,
    trained_crop_seconds,
)
from ecg_dino.leads import LEADS
from ecg_dino.version import __version__


def export_backbone(ckpt: Path, out: Path, which: str = "teacher") -> dict:
    """Write ``out/backbone.safetensors`` and ``out/backbone.json``; check the export reloads identically."""
    config, _ = backbone_state(ckpt, which)
    model = load_backbone(ckpt, which)
    try:
        crop_seconds: float | None = trained_crop_seconds(ckpt)
    except CheckpointError:
        crop_seconds = None
    out.mkdir(parents=True, exist_ok=True)
    weights = out / "backbone.safetensors"
    export_safetensors(model, config, weights, crop_seconds)
    reloaded = load_backbone(weights).state_dict()
    if any(not torch.equal(v, reloaded[k]) for k, v in model.state_dict().items()):
        raise CheckpointError(f"{weights}: exported weights differ from {ckpt}")
    info = {
        "config": config,
        "which": which,
        "source_checkpoint": str(ckpt),
        "source_sha256": checkpoint_sha256(ckpt),
        "sample_rate_hz": model.sample_rate_hz,
        "patch_samples": model.patch_samples,
        "global_crop_seconds": crop_seconds,
        "embed_dim": model.embed_dim,
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "leads": list(LEADS),
        "ecg_dino_version": __version__,
    }
    (out / "backbone.json").write_text(json.dumps(info, indent=1))
    return info
