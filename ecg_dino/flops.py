"""FLOP counting that sees attention on every backend.

torch's ``FlopCounterMode`` has formulas for the CUDA fused attention kernels but none for the CPU kernel that
``F.scaled_dot_product_attention`` dispatches to (``aten._scaled_dot_product_flash_attention_for_cpu`` and its
backward), so on CPU it counts attention as 0 FLOPs. ``flop_counter()`` adds the same formulas for those ops:
4·B·H·N²·d forward (QKᵀ and AV) and 2.5× that backward (the scores recomputed, then four products).
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

aten = torch.ops.aten


def _cpu_sdpa(query_shape: Any, key_shape: Any, value_shape: Any, *args: Any, **kwargs: Any) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _cpu_sdpa_backward(
    grad_out_shape: Any, query_shape: Any, key_shape: Any, value_shape: Any, *args: Any, **kwargs: Any
) -> int:
    return sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


ATTENTION_FORMULAS = {
    aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa,
    aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_sdpa_backward,
}


def flop_counter(display: bool = False) -> FlopCounterMode:
    """A ``FlopCounterMode`` that also counts the CPU attention kernels."""
    return FlopCounterMode(display=display, custom_mapping=ATTENTION_FORMULAS)
