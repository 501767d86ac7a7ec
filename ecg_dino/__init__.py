"""ecg-dino: a lead-agnostic ECG Vision Transformer pretrained with the DINOv3 objective.

The Python API is ``ecg_dino.ECGEncoder`` (``ecg_dino.features.encoder``), imported on first use so that importing
any submodule stays light.
"""

from __future__ import annotations

from typing import Any

from ecg_dino.version import __version__

__all__ = ["ECGEncoder", "__version__"]


def __getattr__(name: str) -> Any:
    """``ecg_dino.ECGEncoder``, imported when first asked for."""
    if name == "ECGEncoder":
        from ecg_dino.features.encoder import ECGEncoder

        return ECGEncoder
    raise AttributeError(f"module 'ecg_dino' has no attribute {name!r}")
