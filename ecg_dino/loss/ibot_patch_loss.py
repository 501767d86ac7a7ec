"""iBOT masked-patch loss: cross-entropy on the masked patch tokens, averaged per image then over images.

Masks M [n_img, N] (True = masked), m_i = Σ_j M[i, j]; per token ce = − Σ_k q_k · log softmax(z / τs)_k with
q the teacher distribution and z the student logits of that token:

    L = (1 / n_img) · Σ_i (1 / max(m_i, 1)) · Σ_j M[i, j] · ce[i, j]

Images without a masked patch contribute 0 but still count in n_img; unmasked tokens get no gradient.
:meth:`iBOTPatchLoss.forward_masked` computes the same L from the masked tokens only, in ``masks``
row-major order, with weight w_r = 1 / max(m_{i(r)}, 1) for token r of image i(r):
L = (1 / n_img) · Σ_r w_r · ce[r].

Teacher targets: Sinkhorn-Knopp on the masked teacher tokens, with the number of samples R = the number
of masked tokens summed over ranks (ranks may hold different numbers of masked tokens).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ecg_dino.distributed import world_size
from ecg_dino.loss.sinkhorn_knopp import sinkhorn_knopp


class iBOTPatchLoss(nn.Module):
    def __init__(self, student_temp: float = 0.1) -> None:
        super().__init__()
        self.student_temp = student_temp

    def _cross_entropy(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(student.float() / self.student_temp, dim=-1)  # [..., K]
        return -(teacher.float() * log_p).sum(dim=-1)  # [...]

    def sinkhorn_knopp_teacher(
        self,
        teacher_masked: torch.Tensor,
        teacher_temp: float,
        n_masked_patches: int | torch.Tensor | None = None,
        n_iterations: int = 3,
    ) -> torch.Tensor:
        """Teacher probabilities [M, K] of the masked tokens from their logits [M, K] (no gradient).

        ``n_masked_patches``: this rank's number of masked tokens (default M). Unlike DINOv3, which sums
        the caller's tensor across ranks in place, the sum is taken on a copy.
        """
        n = teacher_masked.shape[0] if n_masked_patches is None else n_masked_patches
        n = torch.as_tensor(n, dtype=torch.float32, device=teacher_masked.device).clone()
        if world_size() > 1:
            dist.all_reduce(n)
        return sinkhorn_knopp(teacher_masked, teacher_temp, n, n_iterations)

    def forward(self, student: torch.Tensor, teacher: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Student logits [n_img, N, K], teacher probabilities [n_img, N, K], masks bool [n_img, N]."""
        ce = self._cross_entropy(student, teacher)  # [n_img, N]
        ce = torch.where(masks, ce, 0.0)
        per_image = ce.sum(dim=-1) / masks.sum(dim=-1).clamp(min=1)  # [n_img]
        return per_image.mean()

    def forward_masked(
        self,
        student_masked: torch.Tensor,
        teacher_masked: torch.Tensor,
        masks: torch.Tensor,
        n_masked_patches: int | torch.Tensor | None = None,
        masks_weight: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Student logits and teacher probabilities of the masked tokens [M(+padding), K]; masks [n_img, N].

        Only the first ``n_masked_patches`` rows count (padding rows get zero gradient).
        """
        ce = self._cross_entropy(student_masked, teacher_masked)  # [M(+padding)]
        if masks_weight is None:
            per_image = 1.0 / masks.sum(dim=-1).clamp(min=1)  # [n_img]
            masks_weight = per_image[:, None].expand_as(masks)[masks]  # [M]
        if n_masked_patches is not None:
            ce = ce[:n_masked_patches]
        return (ce * masks_weight).sum() / masks.shape[0]
