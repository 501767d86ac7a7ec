"""Global pooling of the backbone's token groups (``ECGViT.forward_features`` output), in float32.

``cls``: the class token [B, D]. ``mean``: the mean of the valid patch tokens (``patch_mask``) over leads and
patches [B, D]. ``lead_mean``: the mean over the valid leads of each patch position [B, P, D] (beat features pick
patches from it). Every caller pools here instead of re-deriving the masked mean.
"""

from __future__ import annotations

import torch

POOLINGS = ("cls", "mean", "lead_mean")


def pool(out: dict[str, torch.Tensor], kind: str = "cls") -> torch.Tensor:
    """The ``kind`` pooling of one ``forward_features`` output; padded leads and time never count."""
    if kind == "cls":
        return out["cls"].float()
    if kind not in POOLINGS:
        raise ValueError(f"unknown pooling {kind!r}; choose from {POOLINGS}")
    patches, w = out["patches"].float(), out["patch_mask"][..., None].float()  # [B, L, P, D], [B, L, P, 1]
    dims = (1, 2) if kind == "mean" else (1,)
    return (patches * w).sum(dims) / w.sum(dims).clamp_min(1)  # [B, D] or [B, P, D]
