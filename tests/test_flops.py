"""Attention is counted on CPU: an SDPA call is 4·B·H·N²·d FLOPs forward, 2.5× that backward."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from ecg_dino.flops import flop_counter


def test_sdpa_is_counted_forward_and_backward() -> None:
    B, H, N, d = 2, 3, 40, 16
    q, k, v = (torch.randn(B, H, N, d, requires_grad=True) for _ in range(3))
    with FlopCounterMode(display=False) as stock:
        F.scaled_dot_product_attention(q, k, v)
    with flop_counter() as counter:
        out = F.scaled_dot_product_attention(q, k, v)
    forward = 4 * B * H * N * N * d
    assert stock.get_total_flops() == 0  # what torch alone reports for the CPU kernel
    assert counter.get_total_flops() == forward
    with flop_counter() as counter:
        out.sum().backward()
    assert counter.get_total_flops() == forward * 5 // 2
