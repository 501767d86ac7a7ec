"""Load a frozen backbone from a Lightning checkpoint, a consolidated checkpoint, a safetensors export or a saved
encoder folder (``config.json`` + ``model.safetensors``).

Every path loads tensors only (``torch.load(weights_only=True)`` or safetensors): no pickle from files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ecg_dino.consolidate import consolidated_checkpoint
from ecg_dino.files import file_sha256
from ecg_dino.model.vit import ECGViT, build_vit

SAFETENSORS_CONFIG_KEY = "ecg_dino_backbone"
SAFETENSORS_CROP_KEY = "ecg_dino_global_crop_seconds"
# A saved encoder folder (``ECGEncoder.save_pretrained``, the Hugging Face layout): the config and the weights.
PRETRAINED_CONFIG = "config.json"
PRETRAINED_WEIGHTS = "model.safetensors"


class CheckpointError(ValueError):
    """A file that is not a loadable ecg-dino backbone; the message names the file."""


def weights_path(path: str | Path) -> Path:
    """A saved encoder folder -> its ``model.safetensors``; any other path unchanged."""
    path = Path(path)
    return path / PRETRAINED_WEIGHTS if (path / PRETRAINED_CONFIG).is_file() else path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """``torch.load`` with ``weights_only=True`` (a sharded checkpoint directory is consolidated in memory);
    a clear error naming the file otherwise."""
    path = Path(path)
    if path.is_dir():
        try:
            return consolidated_checkpoint(path)
        except ValueError as e:
            raise CheckpointError(str(e)) from e
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{path}: cannot be read as a weights-only checkpoint ({e})") from e


def checkpoint_sha256(path: str | Path) -> str:
    """SHA-256 of a checkpoint file (cache keys, exports); a ``CheckpointError`` naming it when there is none."""
    path = weights_path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    return file_sha256(path)


def trained_crop_seconds(path: str | Path) -> float:
    """The global crop length a checkpoint was pretrained on, which its features are best read in: from an
    export's metadata, a checkpoint's data-module state, else the run's ``config.yaml`` beside ``checkpoints/``
    (checkpoints written before the state held it)."""
    path = weights_path(path)
    if path.suffix == ".safetensors":
        with safe_open(str(path), framework="pt") as f:
            seconds = (f.metadata() or {}).get(SAFETENSORS_CROP_KEY)
        if seconds is None:
            raise CheckpointError(f"{path}: export holds no pretraining crop length; pass the crop length explicitly")
        return float(seconds)
    state = read_checkpoint(path).get("PretrainDataModule", {})
    if "global_crop_seconds" in state:
        return float(state["global_crop_seconds"])
    config = path.parent.parent / "config.yaml"
    if config.is_file():
        multicrop = yaml.safe_load(config.read_text()).get("data", {}).get("init_args", {}).get("multicrop") or {}
        seconds = multicrop.get("init_args", multicrop).get("global_crop_seconds")
        if seconds is not None:
            return float(seconds)
    raise CheckpointError(f"{path}: holds no global crop length and {config} names none; pass it explicitly")


def backbone_state(path: str | Path, which: str = "teacher") -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(backbone config, backbone state dict) of ``which`` branch (teacher or student) of a checkpoint."""
    path = weights_path(path)
    if path.suffix == ".safetensors":
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                if SAFETENSORS_CONFIG_KEY not in meta:
                    raise CheckpointError(f"{path}: safetensors file without an ecg-dino backbone config")
                return json.loads(meta[SAFETENSORS_CONFIG_KEY]), {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        except SafetensorError as e:  # a truncated or foreign file
            raise CheckpointError(f"{path}: cannot be read as a safetensors file ({e})") from e
    ckpt = read_checkpoint(path)
    hparams = ckpt.get("hyper_parameters", {})
    if "state_dict" not in ckpt or "backbone" not in hparams:
        raise CheckpointError(f"{path}: not an ecg-dino pretraining checkpoint (no state_dict/backbone config)")
    prefix = f"{which}.backbone."
    state = {k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    if not state:
        raise CheckpointError(f"{path}: holds no '{which}' backbone weights")
    return {"size": "tiny", **(hparams["backbone"] or {})}, state


def load_backbone(path: str | Path, which: str = "teacher") -> ECGViT:
    """The ``which`` backbone of a checkpoint, in eval mode, with every weight matched by name and shape."""
    return build_backbone(path, *backbone_state(path, which))


def build_backbone(path: str | Path, config: dict[str, Any], state: dict[str, torch.Tensor]) -> ECGViT:
    """The backbone of ``config`` holding ``state`` (read from ``path``, named in errors), in eval mode."""
    model = build_vit(**config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not fit the backbone {config}: {e}") from e
    return model.eval()


def export_safetensors(
    model: ECGViT, config: dict[str, Any], path: str | Path, crop_seconds: float | None = None
) -> None:
    """Write the backbone's weights with its config (and the pretraining's global crop length, when known) in the
    safetensors metadata: one self-contained file."""
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    metadata = {SAFETENSORS_CONFIG_KEY: json.dumps(config)}
    if crop_seconds is not None:
        metadata[SAFETENSORS_CROP_KEY] = repr(float(crop_seconds))
    save_file(state, str(path), metadata=metadata)
