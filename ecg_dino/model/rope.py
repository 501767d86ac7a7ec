"""Rotary position embedding over time in seconds, so crops of any offset and length share one geometry."""

from __future__ import annotations

import math

import torch
from torch import nn


class TimeRoPE(nn.Module):
    """Angles ``2π·t/period`` for log-spaced periods between ``min_period_s`` and ``max_period_s``.

    Patch ``p`` of a crop sits at ``t = (p + 0.5) · patch_seconds``; attention sees only time differences, so
    the same beat gives the same relative geometry in a 2 s local crop and a 10 s global crop. Leads share
    the time axis: the same instant in two leads has the same angle, and the lead embedding tells them apart.
    """

    def __init__(self, head_dim: int, min_period_s: float = 0.1, max_period_s: float = 100.0) -> None:
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"RoPE needs an even head dimension, got {head_dim}")
        self.head_dim = head_dim
        self.min_period_s = min_period_s
        self.max_period_s = max_period_s
        self.register_buffer("inv_period", self._inv_period(), persistent=False)

    def _inv_period(self) -> torch.Tensor:
        n = self.head_dim // 2
        periods = torch.logspace(math.log10(self.min_period_s), math.log10(self.max_period_s), n)
        return 2 * math.pi / periods

    def init_weights(self) -> None:
        # The buffer is not persistent, so a meta-device build must recompute it on the real device.
        self.inv_period = self._inv_period().to(self.inv_period.device)

    def forward(self, times_s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """times_s [N] -> (sin, cos), each [N, head_dim / 2]: the angles of the pairs (i, i + head_dim / 2)."""
        angles = times_s[:, None].float() * self.inv_period[None, :]
        return angles.sin(), angles.cos()


def apply_rope(x: torch.Tensor, sin: torch.Tensor, cos: torch.Tensor) -> torch.Tensor:
    """Rotate each pair (x_i, x_{i + hd/2}) of x [..., N, hd] by the angles of ``(sin, cos)`` [N, hd/2] (the
    ``rotate_half`` convention), in fp32: the result stays fp32, attention casts it where its kernel wants. A token
    at time 0, such as the class and register tokens, has sin 0 and cos 1 and stays as it is."""
    x1, x2 = (half.float() for half in x.chunk(2, dim=-1))
    return torch.cat([torch.addcmul(x1 * cos, x2, sin, value=-1), torch.addcmul(x2 * cos, x1, sin)], dim=-1)
