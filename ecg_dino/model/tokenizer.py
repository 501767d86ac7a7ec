"""Per-lead time patches -> tokens: linear patch embedding plus a learnable embedding per lead name."""

from __future__ import annotations

import torch
from torch import nn

from ecg_dino.leads import NUM_LEADS


class ECGInputError(ValueError):
    """An input the backbone cannot encode; the message says what is wrong."""


class PatchTokenizer(nn.Module):
    """Cut each lead into non-overlapping patches of ``patch_samples`` and embed them.

    Trailing samples shorter than one patch are dropped. A patch is valid when its lead is present and it
    lies inside the crop's ``valid_samples``; invalid patches are later masked out of attention.
    """

    def __init__(self, patch_samples: int, embed_dim: int) -> None:
        super().__init__()
        self.patch_samples = patch_samples
        self.proj = nn.Linear(patch_samples, embed_dim)
        self.lead_embed = nn.Embedding(NUM_LEADS, embed_dim)
        self.mask_token = nn.Parameter(torch.empty(embed_dim))

    def init_weights(self) -> None:
        nn.init.trunc_normal_(self.proj.weight, std=0.02)
        nn.init.zeros_(self.proj.bias)
        nn.init.trunc_normal_(self.lead_embed.weight, std=0.02)
        nn.init.zeros_(self.mask_token)

    def forward(
        self,
        signal: torch.Tensor,
        lead_ids: torch.Tensor,
        lead_mask: torch.Tensor,
        valid_samples: torch.Tensor,
        ibot_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """signal [B, L, T] -> tokens [B, L, P, D] and patch_mask [B, L, P] (True = real signal)."""
        B, L, T = signal.shape
        P = T // self.patch_samples
        if P == 0:
            raise ECGInputError(f"crop of {T} samples is shorter than one patch ({self.patch_samples} samples)")
        patches = signal[..., : P * self.patch_samples].reshape(B, L, P, self.patch_samples)
        x = self.proj(patches)  # [B, L, P, D]
        if ibot_mask is not None:
            x = torch.where(ibot_mask[..., None], self.mask_token.to(x.dtype), x)
        x = x + self.lead_embed(lead_ids)[:, :, None, :]
        valid_patches = valid_samples // self.patch_samples  # [B]
        in_time = torch.arange(P, device=signal.device)[None, :] < valid_patches[:, None]  # [B, P]
        patch_mask = lead_mask[:, :, None] & in_time[:, None, :]  # [B, L, P]
        return x, patch_mask
