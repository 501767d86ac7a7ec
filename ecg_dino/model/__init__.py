"""The ECG backbone (tokeniser + ViT encoder) and its projection heads."""

from ecg_dino.model.vit import ECGViT, vit_base, vit_large, vit_small, vit_tiny

__all__ = ["ECGViT", "vit_base", "vit_large", "vit_small", "vit_tiny"]
