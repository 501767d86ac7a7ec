"""Shared fixtures: paths to the real data beside the repo and small pretraining batches."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ecg_dino.leads import STANDARD_12, lead_indices

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
needs_shared_data = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason=f"real PhysioNet data not present at {SHARED_DATA}"
)


def random_crops(n: int, leads: list[str], samples: int, generator: torch.Generator) -> dict:
    """Crops in the documented batch layout, with every lead present."""
    return {
        "signal": torch.randn(n, len(leads), samples, generator=generator),
        "lead_ids": torch.tensor(lead_indices(leads)).expand(n, -1).contiguous(),
        "lead_mask": torch.ones(n, len(leads), dtype=torch.bool),
        "valid_samples": torch.full((n,), samples),
    }


def random_batch(B: int = 4, n_local: int = 2, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {
        "global": random_crops(2 * B, list(STANDARD_12[:6]), 500, g),
        "local": random_crops(n_local * B, ["II", "V1"], 250, g),
        "sample_rate_hz": 250.0,
        "n_global_crops": 2,
        "n_local_crops": n_local,
    }


# The groups as plain dicts, as a YAML's model.init_args or a checkpoint's hyperparameters give them.
TINY_MODULE = dict(
    backbone={"size": "tiny", "depth": 2, "embed_dim": 64, "num_heads": 2},
    head={"hidden_dim": 64, "bottleneck_dim": 32},
    dino={"num_prototypes": 64},
    ibot={"num_prototypes": 64},
    teacher={"temp_warmup_steps": 2},
    optim={"warmup_steps": 2},
)


@pytest.fixture
def tiny_backbone_file(tmp_path: Path) -> Path:
    """A 1-block, 32-dim ViT with seeded random weights, exported as the probes' ``.safetensors`` input."""
    from ecg_dino.checkpoint import export_safetensors
    from ecg_dino.model.vit import build_vit

    config = {"size": "tiny", "depth": 1, "embed_dim": 32, "num_heads": 2}
    torch.manual_seed(1)
    model = build_vit(**config)
    model.init_weights()
    path = tmp_path / "tiny.safetensors"
    export_safetensors(model, config, path)
    return path


def fit_with_callback(tmp_path: Path, callback, steps: int = 3):
    """A ``steps``-step fit of the tiny module on random batches with ``callback``; its TensorBoard events."""
    import lightning as L
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.data import DataLoader

    from ecg_dino.module import DinoPretrainModule

    trainer = L.Trainer(
        max_steps=steps,
        accelerator="cpu",
        logger=L.pytorch.loggers.TensorBoardLogger(tmp_path, name="t"),
        callbacks=[callback],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    batches = DataLoader([random_batch(seed=i) for i in range(steps)], batch_size=None)
    trainer.fit(DinoPretrainModule(**TINY_MODULE), train_dataloaders=batches)
    events = EventAccumulator(str(next((tmp_path / "t").rglob("events.out.tfevents.*")).parent))
    events.Reload()
    return events
