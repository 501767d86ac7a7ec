"""Sinkhorn-Knopp normalisation of teacher logits, shared by the DINO and iBOT losses.

Given teacher logits t [R_local, K] on each rank, temperature τt and the global number of samples R:

    P[r, k] = exp(t[r, k] / τt) / Σ_{all ranks, r', k'} exp(t[r', k'] / τt)
    repeat n_iterations times:
        P[:, k] ← P[:, k] / (K · Σ_{all ranks, r} P[r, k])     # every prototype holds mass 1/K
        P[r, :] ← P[r, :] / (R · Σ_k P[r, k])                   # every sample holds mass 1/R
    return R · P                                                # every row sums to 1

The constants (total sum, 1/K, 1/R, ×R) cancel mathematically; they are kept to match DINOv3 to rounding.
As in DINOv3 no maximum is subtracted before ``exp``: float32 overflows once t/τt exceeds about 88.
With ``torch.distributed`` initialised and world size > 1, the total sum and the per-prototype sums are
all-reduced, so all ranks' rows are normalised jointly as one set of R samples.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from ecg_dino.distributed import world_size


def _all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    if world_size() > 1:
        dist.all_reduce(x)
    return x


@torch.no_grad()
def sinkhorn_knopp(
    teacher_logits: torch.Tensor,
    teacher_temp: float,
    n_samples: int | torch.Tensor,
    n_iterations: int = 3,
) -> torch.Tensor:
    """Teacher probabilities [R_local, K] (rows sum to 1) from logits [R_local, K].

    ``n_samples`` is R, the number of samples over all ranks (an int or a 0-d / 1-element tensor).
    """
    K = teacher_logits.shape[1]
    P = torch.exp(teacher_logits.float() / teacher_temp)  # [R_local, K]
    P /= _all_reduce_sum(P.sum())
    for _ in range(n_iterations):
        P /= _all_reduce_sum(P.sum(dim=0, keepdim=True))  # [1, K] prototype masses over all ranks
        P /= K
        P /= P.sum(dim=1, keepdim=True)  # [R_local, 1] sample masses
        P /= n_samples
    P *= n_samples
    return P
