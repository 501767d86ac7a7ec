"""``ECGEncoder``: a frozen backbone as a Python object: load any weights file, embed arrays, save in the Hugging
Face layout (``config.json`` + ``model.safetensors``; nothing touches the hub).

``embed`` runs exactly the code of ``ecg-dino embed``: each array becomes an ``ECGRecord`` with the readers' checks
(``make_record``, ``check_signal``), then ``embed_records`` resamples it (``ecg_dino.signal.resample``), cuts the
sliding crops of the pretraining's global crop length and pools them, so the two give identical numbers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from datamodules.readers.base import RecordRef, make_record, mv_per_unit
from datamodules.record import ECGRecord, check_signal
from ecg_dino.checkpoint import (
    PRETRAINED_CONFIG,
    PRETRAINED_WEIGHTS,
    CheckpointError,
    backbone_state,
    build_backbone,
    export_safetensors,
    trained_crop_seconds,
    weights_path,
)
from ecg_dino.features.records import EmbedOptions, embed_records
from ecg_dino.leads import LEADS
from ecg_dino.model.vit import ECGViT
from ecg_dino.version import __version__


@dataclass(frozen=True)
class RecordEmbedding:
    """One record's embeddings, as ``ecg-dino embed --patches`` stores them."""

    cls: np.ndarray  # [D] class token, averaged over the record's crops
    mean: np.ndarray  # [D] mean of the valid patch tokens, averaged over the crops
    patches: np.ndarray  # [L, P, D] float16: each patch token averaged over the crops that hold it
    patch_valid: np.ndarray  # [L, P] bool: False where no crop covered the patch
    leads: tuple[str, ...]  # canonical names of the L rows, in the input's order
    patch_seconds: np.ndarray  # [P] start of each patch in seconds from the record's start


class ECGEncoder:
    """A frozen ECG backbone with the crop length it reads records in; ``from_pretrained`` builds one."""

    def __init__(self, backbone: ECGViT, config: dict[str, Any], crop_seconds: float, batch_size: int = 32) -> None:
        self.backbone = backbone.eval()
        self.config = config  # the backbone's ``build_vit`` arguments
        self.crop_seconds = float(crop_seconds)  # the pretraining's global crop length, unless given otherwise
        self.batch_size = batch_size

    @classmethod
    def from_pretrained(
        cls, path: str | Path, which: str = "teacher", crop_seconds: float | None = None, batch_size: int = 32
    ) -> ECGEncoder:
        """The ``which`` backbone of a Lightning or consolidated checkpoint, a safetensors export or a saved folder;
        ``crop_seconds`` defaults to the crop length it was pretrained on (an error naming the file when unknown)."""
        config, state = backbone_state(path, which)
        if (Path(path) / PRETRAINED_CONFIG).is_file():
            check_saved_config(Path(path), config)
        crop = trained_crop_seconds(path) if crop_seconds is None else crop_seconds
        return cls(build_backbone(weights_path(path), config, state), config, crop, batch_size)

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``model.safetensors`` (self-contained: its metadata holds the config too)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        export_safetensors(self.backbone, self.config, directory / PRETRAINED_WEIGHTS, self.crop_seconds)
        config = {
            "model_type": "ecg-dino",
            "backbone": self.config,
            "sample_rate_hz": self.backbone.sample_rate_hz,
            "patch_samples": self.backbone.patch_samples,
            "embed_dim": self.backbone.embed_dim,
            "global_crop_seconds": self.crop_seconds,
            "leads": list(LEADS),
            "ecg_dino_version": __version__,
        }
        (directory / PRETRAINED_CONFIG).write_text(json.dumps(config, indent=1))
        return directory

    def embed_options(self) -> EmbedOptions:
        """The ``ecg-dino embed`` options this encoder embeds with (sliding crops of ``crop_seconds``, patches)."""
        return EmbedOptions(crop_seconds=self.crop_seconds, patches=True, batch_size=self.batch_size)

    def embed(
        self, signal: Any, leads: Sequence[str], sample_rate_hz: float, units: str = "mV"
    ) -> RecordEmbedding | list[RecordEmbedding]:
        """Embed one record [L, T] (-> a ``RecordEmbedding``) or a batch, [B, L, T] or a list of [L, T_i] (-> a list);
        every record has ``leads`` (any known spelling) at ``sample_rate_hz``, in ``units`` (mV, uV or V)."""
        single = not isinstance(signal, list | tuple) and np.ndim(signal) == 2
        scale = mv_per_unit(units, "ECGEncoder.embed")
        inputs = [signal] if single else signal
        records = [self.record(x, leads, sample_rate_hz, scale, i) for i, x in enumerate(inputs)]
        cols = embed_records(self.backbone, records, self.embed_options(), len(records), desc="ECGEncoder.embed")
        seconds_per_patch = self.backbone.patch_samples / self.backbone.sample_rate_hz
        out = [
            RecordEmbedding(
                cls=cols["cls"][i],
                mean=cols["mean"][i],
                patches=cols["patches"][i],
                patch_valid=cols["patch_valid"][i],
                leads=record.leads,
                patch_seconds=np.arange(cols["patches"][i].shape[1]) * seconds_per_patch,
            )
            for i, record in enumerate(records)
        ]
        return out[0] if single else out

    @staticmethod
    def record(signal: Any, leads: Sequence[str], sample_rate_hz: float, scale: float, index: int) -> ECGRecord:
        """Input ``index`` as a checked record (lead names, shape, empty, NaN/Inf, all flat), errors naming it."""
        where = f"ECGEncoder.embed input {index}"
        array = np.asarray(signal, dtype=np.float64) * scale
        record = make_record(RecordRef(str(index), where), "api", array, sample_rate_hz, leads)
        check_signal(record, where)
        return record


def check_saved_config(directory: Path, weights_config: dict[str, Any]) -> None:
    """A saved folder's ``config.json`` agrees with its weights and with this version's lead vocabulary."""
    path = directory / PRETRAINED_CONFIG
    try:
        saved = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from e
    if saved.get("backbone") != weights_config:
        raise CheckpointError(f"{path}: backbone {saved.get('backbone')} differs from {PRETRAINED_WEIGHTS}'s")
    if saved.get("leads") != list(LEADS):
        raise CheckpointError(f"{path}: lead vocabulary {saved.get('leads')} is not this version's {list(LEADS)}")
