"""Beats in context: each beat's feature is read from a sliding crop of the pretraining's global crop length, the
crop in which the beat sits nearest the centre, so the model sees the rhythm around the beat (an S beat is an S
beat by its prematurity, which a 1.4 s window cannot show). One forward per crop, not per beat.

A beat's feature has the window features' layout (``ecg_dino.features.beats``): the crop's class token ‖ the
patch tokens of (R patch − 1, R patch, R patch + 1), each averaged over the record's leads. Averaged rather than
concatenated so the width is 4·D for any lead set: a head fitted on 2-lead MIT-BIH applies to a 1- or 12-lead
database unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from datamodules.record import BadRecordError, ECGRecord
from ecg_dino.features.beats import BeatOptions, beat_table, embed_beats
from ecg_dino.features.records import crop_starts, forward_batch
from ecg_dino.leads import lead_indices
from ecg_dino.model.vit import ECGViT
from ecg_dino.signal import resample


def context_crops(
    r_samples: np.ndarray, num_samples: int, crop: int, stride: int, patch: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(crop starts [C], each beat's crop [n], each beat's R patch within it [n]) for beats at ``r_samples``.

    A beat goes to the crop whose centre is nearest its R peak; its R patch is kept one patch from the crop's
    edges so both neighbours exist (only a beat within a patch of the record's ends moves).
    """
    starts = np.asarray(crop_starts(num_samples, crop, stride, patch))
    length = min(crop, num_samples // patch * patch)
    centres = starts + length / 2
    nearest = np.abs(r_samples[:, None] - centres[None, :]).argmin(1)
    r_patch = np.clip((r_samples - starts[nearest]) // patch, 1, length // patch - 2)
    return starts, nearest, r_patch


def embed_beats_in_context(
    backbone: ECGViT, record: ECGRecord, r_samples: np.ndarray, options: BeatOptions
) -> np.ndarray:
    """Beat features [n, 4·D] read from sliding crops of ``options.crop_seconds`` (``r_samples`` at the record's
    rate; the record is resampled to the model's rate first)."""
    if options.crop_seconds is None:
        raise ValueError("context beat features need the pretraining's global crop length (crop_seconds)")
    rate, patch = backbone.sample_rate_hz, backbone.patch_samples
    signal = resample(record.signal, record.sample_rate_hz, rate)
    if signal.shape[1] < 3 * patch:
        raise BadRecordError(f"{record.record_id}: shorter than three patches, no beat has both neighbours")
    crop = max(3 * patch, round(options.crop_seconds * rate) // patch * patch)
    stride = max(patch, round(options.stride_fraction * crop) // patch * patch)
    r_model = np.round(r_samples * rate / record.sample_rate_hz).astype(np.int64)
    starts, which, r_patch = context_crops(r_model, signal.shape[1], crop, stride, patch)
    ids = np.asarray(lead_indices(record.leads))
    feats = np.zeros((len(r_samples), 4 * backbone.embed_dim), np.float32)
    for first in range(0, len(starts), options.batch_size):
        chunk = starts[first : first + options.batch_size]
        beats = np.flatnonzero((which >= first) & (which < first + len(chunk)))
        if len(beats) == 0:
            continue
        out = forward_batch(backbone, [signal[:, s : s + crop] for s in chunk], [ids] * len(chunk), options.precision)
        tokens = out["patches"].mean(1)  # [B, P, D] over leads: a record's crops hold all its leads
        crop_of, near = which[beats] - first, r_patch[beats][:, None] + np.arange(-1, 2)
        feats[beats] = np.concatenate([out["cls"][crop_of], tokens[crop_of[:, None], near].reshape(len(beats), -1)], 1)
    return feats


def embed_beat_features(backbone: ECGViT, record: ECGRecord, r_samples: np.ndarray, options: BeatOptions) -> np.ndarray:
    """Beat features [n, 4·D] of the kind ``options.features`` names: ``window`` or ``context``."""
    if options.features == "context":
        return embed_beats_in_context(backbone, record, r_samples, options)
    return embed_beats(backbone, record, r_samples, options)


def beat_embedding_table(backbone: ECGViT, records: Iterable[ECGRecord], options: BeatOptions) -> dict[str, Any]:
    """Per-beat embeddings of any records (annotated beats, else neurokit2 R peaks) as Parquet columns."""
    parts = []
    for record in records:
        beats = beat_table([record])
        parts.append((beats, embed_beat_features(backbone, record, beats.sample, options)))
    if not parts:
        return {"record_id": np.array([], dtype=object)}
    return {
        "record_id": np.concatenate([b.record_id for b, _ in parts]),
        "sample": np.concatenate([b.sample for b, _ in parts]),
        "aami_class": np.concatenate([b.label for b, _ in parts]),
        "features": np.concatenate([x for _, x in parts]),
    }
