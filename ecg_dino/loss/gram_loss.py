"""Gram anchoring loss: match the patch-similarity (Gram) matrix of the student to a Gram teacher's.

Student patch features S and target (Gram-teacher) features T, [B, N, D] (or [R, D] at batch level), cast
to float32 and, with ``apply_norm``, L2-normalised per token (v / max(‖v‖₂, 1e-12)):

    img_level=True:   G_S[b] = S_b S_bᵀ, G_T[b] = T_b T_bᵀ                 # [B, N, N]
    img_level=False:  G_S = S Sᵀ, G_T = T Tᵀ over all B·N (or R) tokens   # [R, R], cross-image pairs too
    remove_neg:               G_S ← max(G_S, 0), G_T ← max(G_T, 0)
    remove_only_teacher_neg:  G_T ← max(G_T, 0)                           # student left unchanged
    L = mean over all entries, diagonal included, of (G_S − G_T)²

``remove_only_teacher_neg`` follows DINOv3 with the teacher clamped first, so its student condition
("student < 0 and teacher < 0") never fires. ECG extension: ``token_mask`` [B, N] (True = real patch, False =
absent lead or padding) restricts the mean to entries (i, j) whose two tokens are both real (at batch level:
to the real tokens). Without it the value is exactly DINOv3's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class GramLoss(nn.Module):
    def __init__(
        self, apply_norm: bool = True, remove_neg: bool = False, remove_only_teacher_neg: bool = False
    ) -> None:
        super().__init__()
        if remove_neg and remove_only_teacher_neg:
            raise ValueError("remove_neg and remove_only_teacher_neg are exclusive")
        self.apply_norm = apply_norm
        self.remove_neg = remove_neg
        self.remove_only_teacher_neg = remove_only_teacher_neg

    def _gram(self, feats: torch.Tensor) -> torch.Tensor:
        feats = feats.float()
        if self.apply_norm:
            feats = F.normalize(feats, dim=-1)
        return feats @ feats.transpose(-1, -2)  # [B, N, N] or [R, R]

    def forward(
        self,
        student_feats: torch.Tensor,
        target_feats: torch.Tensor,
        img_level: bool = True,
        token_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if img_level and (student_feats.ndim != 3 or target_feats.ndim != 3):
            raise ValueError("img_level=True needs [B, N, D] features")
        if not img_level:
            if token_mask is not None:
                student_feats, target_feats = student_feats[token_mask], target_feats[token_mask]  # [R, D]
            student_feats = student_feats.flatten(0, -2)  # [R, D]
            target_feats = target_feats.flatten(0, -2)  # [R, D]
        student_sim = self._gram(student_feats)
        target_sim = self._gram(target_feats)
        if self.remove_neg:
            student_sim = student_sim.clamp(min=0.0)
            target_sim = target_sim.clamp(min=0.0)
        elif self.remove_only_teacher_neg:
            target_sim = target_sim.clamp(min=0.0)
        squared = (student_sim - target_sim).square()  # [B, N, N] or [R, R]
        if token_mask is None or not img_level:
            return squared.mean()
        pairs = token_mask[:, :, None] & token_mask[:, None, :]  # [B, N, N]
        return torch.where(pairs, squared, 0.0).sum() / pairs.sum().clamp(min=1)
