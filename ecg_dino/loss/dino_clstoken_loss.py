"""DINO class-token loss: cross-entropy between Sinkhorn-Knopp teacher targets and student crops.

Student logits z [S, B, K] (S student crops), teacher probabilities q [T, B, K] (rows sum to 1, used as
given), student temperature τs. Crops are paired only within the same sample b:

    CE(q, z) = − Σ_k q_k · log softmax(z / τs)_k
    L = Σ_b Σ_{(s, t) kept} CE(q[t, b], z[s, b]) / (B · n_pairs)

``ignore_diagonal=False`` keeps all S·T pairs (n_pairs = S·T); ``ignore_diagonal=True`` drops the pairs
s == t for s < min(S, T), i.e. a crop against its own view (n_pairs = S·T − min(S, T)). The student side is
computed in float32. Training uses it twice: local crops vs the global teacher crops (all pairs), and
global vs global with ``ignore_diagonal=True``.

The teacher targets come from :meth:`DINOLoss.sinkhorn_knopp_teacher` on the teacher's global crops,
all n_global·B rows (and all ranks) normalised jointly; R = rows × world size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ecg_dino.distributed import world_size
from ecg_dino.loss.sinkhorn_knopp import sinkhorn_knopp


class DINOLoss(nn.Module):
    def __init__(self, student_temp: float = 0.1) -> None:
        super().__init__()
        self.student_temp = student_temp

    def sinkhorn_knopp_teacher(
        self, teacher_logits: torch.Tensor, teacher_temp: float, n_iterations: int = 3
    ) -> torch.Tensor:
        """Teacher probabilities [R, K] from teacher logits [R, K] (no gradient)."""
        n_samples = teacher_logits.shape[0] * world_size()
        return sinkhorn_knopp(teacher_logits, teacher_temp, n_samples, n_iterations)

    def forward(
        self, student_logits: torch.Tensor, teacher_probs: torch.Tensor, ignore_diagonal: bool = False
    ) -> torch.Tensor:
        S, B, _ = student_logits.shape
        T = teacher_probs.shape[0]
        with torch.autocast(student_logits.device.type, enabled=False):  # einsum would otherwise run in bf16
            log_p = F.log_softmax(student_logits.float() / self.student_temp, dim=-1)  # [S, B, K]
            ce = -torch.einsum("sbk,tbk->st", log_p, teacher_probs.float())  # [S, T], summed over b
        if not ignore_diagonal:
            return ce.sum() / (B * S * T)
        diagonal = torch.eye(S, T, dtype=torch.bool, device=ce.device)  # [S, T]
        return ce.masked_fill(diagonal, 0.0).sum() / (B * (S * T - min(S, T)))
