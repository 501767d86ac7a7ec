"""What a picture shows of one ECG: its patch tokens as PCA colours, the class token's attention, token similarity.

A ``Tracing`` is one ECG at the model's rate with the batch contract's masks (``lead_mask``, ``valid_samples``), so
a padded training crop and a record read from disk are drawn the same way: absent leads and padded time are never
drawn as data, coloured, or counted in a PCA fit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from datamodules.record import ECGRecord
from ecg_dino.features.records import model_input
from ecg_dino.leads import LEADS
from ecg_dino.model.vit import ECGViT

PCA_PERCENTILES = (1.0, 99.0)  # each component's range maps to [0, 1]; outliers clip instead of washing it out


@dataclass(frozen=True)
class Tracing:
    """One ECG at the model's rate: ``signal`` float32 [L, T] mV, lead names and ids, ``lead_mask`` [L] (False: an
    absent lead, not drawn), ``valid_samples`` (the rest is padding, not drawn)."""

    signal: np.ndarray
    leads: tuple[str, ...]
    lead_ids: np.ndarray
    lead_mask: np.ndarray
    valid_samples: int
    sample_rate_hz: float
    title: str

    @classmethod
    def from_record(cls, record: ECGRecord, sample_rate_hz: float, start_s: float, seconds: float) -> Tracing:
        """``seconds`` of ``record`` from ``start_s``, resampled to ``sample_rate_hz`` (shorter at the record's end)."""
        signal, ids = model_input(record, sample_rate_hz)
        first = round(start_s * sample_rate_hz)
        if not 0 <= first < signal.shape[1]:
            raise ValueError(f"{record.record_id}: start {start_s} s is outside the record ({record.duration_s:.1f} s)")
        window = np.ascontiguousarray(signal[:, first : first + round(seconds * sample_rate_hz)])
        title = f"{record.record_id}  {start_s:g}-{start_s + window.shape[1] / sample_rate_hz:g} s"
        mask = np.ones(len(ids), bool)
        return cls(window, tuple(record.leads), ids, mask, window.shape[1], sample_rate_hz, title)

    @classmethod
    def from_crops(cls, crops: dict[str, torch.Tensor], row: int, sample_rate_hz: float, title: str) -> Tracing:
        """Row ``row`` of a batch's crops (``docs/INTERFACES.md``): the clean ``teacher_signal`` when there is one."""
        signal = crops.get("teacher_signal", crops["signal"])[row].float().cpu().numpy()
        ids = crops["lead_ids"][row].cpu().numpy()
        mask = crops["lead_mask"][row].cpu().numpy().astype(bool)
        names = tuple(LEADS[i] for i in ids)
        return cls(signal, names, ids, mask, int(crops["valid_samples"][row]), sample_rate_hz, title)

    def with_signal(self, signal: np.ndarray, title: str) -> Tracing:
        """The same leads and masks with another signal (the noisy twin)."""
        return replace(self, signal=signal, title=title)


@dataclass(frozen=True)
class DenseFeatures:
    """One tracing's tokens: ``patches`` [L, P, D] float32, ``valid`` [L, P], ``attention`` [L, P] (sums to 1 over
    valid patches), ``patch_share`` (the part of the class token's attention on patches, not class and registers),
    ``patch_seconds`` (one patch's duration)."""

    patches: np.ndarray
    valid: np.ndarray
    attention: np.ndarray
    patch_share: float
    patch_seconds: float


@torch.inference_mode()
def dense_features(backbone: ECGViT, tracings: list[Tracing]) -> list[DenseFeatures]:
    """Patch tokens and the last block's class-token attention of tracings of one shape, in one batch (fp32)."""
    device = next(backbone.parameters()).device
    out = backbone.forward_features(
        torch.from_numpy(np.stack([t.signal for t in tracings])).float().to(device),
        torch.from_numpy(np.stack([t.lead_ids for t in tracings])).long().to(device),
        torch.from_numpy(np.stack([t.lead_mask for t in tracings])).to(device),
        torch.tensor([t.valid_samples for t in tracings], device=device),
        sample_rate_hz=backbone.sample_rate_hz,
        return_attention=True,
    )
    fields = [out[k].float().cpu().numpy() for k in ("patches", "patch_mask", "cls_attention")]
    share = out["cls_attention_patch_share"].float().cpu().numpy()
    seconds = backbone.patch_seconds
    return [DenseFeatures(p, v.astype(bool), a, float(s), seconds) for p, v, a, s in zip(*fields, share)]


@dataclass(frozen=True)
class PCAColours:
    """Patch tokens -> RGB from their first three principal components, with a fixed sign convention: each
    component is flipped so that its largest-magnitude loading is positive, so colours do not depend on the SVD
    routine or the order of the tokens it was fitted on."""

    mean: np.ndarray  # [D]
    components: np.ndarray  # [3, D]
    low: np.ndarray  # [3]
    high: np.ndarray  # [3]

    @classmethod
    def fit(cls, tokens: np.ndarray) -> PCAColours:
        """Fit on tokens [N, D] (valid patches only); fewer than 3 directions leave the rest grey."""
        x = np.asarray(tokens, np.float64)
        mean = x.mean(0)
        _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
        components = np.zeros((3, x.shape[1]))
        components[: min(3, len(vt))] = vt[:3]
        pivot = np.abs(components).argmax(1)
        components *= np.where(components[np.arange(3), pivot] < 0, -1.0, 1.0)[:, None]
        projected = (x - mean) @ components.T  # [N, 3]
        low, high = np.percentile(projected, PCA_PERCENTILES, axis=0)
        return cls(mean, components, low, high)

    @classmethod
    def fit_features(cls, features: list[DenseFeatures]) -> PCAColours:
        """Fit on the valid patch tokens of several tracings."""
        return cls.fit(np.concatenate([f.patches[f.valid] for f in features]))

    def __call__(self, tokens: np.ndarray) -> np.ndarray:
        """Tokens [..., D] -> colours [..., 3] in [0, 1] (0.5 on a component the fit data did not spread)."""
        projected = (np.asarray(tokens, np.float64) - self.mean) @ self.components.T
        span = self.high - self.low
        scaled = np.divide(projected - self.low, span, out=np.full_like(projected, 0.5), where=span > 0)
        return np.clip(scaled, 0.0, 1.0)


def patch_cosine(a: DenseFeatures, b: DenseFeatures) -> np.ndarray:
    """Cosine similarity [L, P] of each patch token between two tracings of one shape; NaN where either is invalid."""
    dot = (a.patches * b.patches).sum(-1)
    norms = np.linalg.norm(a.patches, axis=-1) * np.linalg.norm(b.patches, axis=-1)
    cosine = dot / np.maximum(norms, 1e-12)
    return np.where(a.valid & b.valid, cosine, np.nan)
