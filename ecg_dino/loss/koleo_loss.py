"""KoLeo regulariser (Sablayrolles et al., 2018, "Spreading vectors for similarity search").

For features x [n, D] (the student's pre-head class tokens of one global crop), eps = δ = 1e-8:

    x̂_i  = x_i / max(‖x_i‖₂, eps)
    j(i) = argmax_{j ≠ i} ⟨x̂_i, x̂_j⟩                  # nearest neighbour by cosine, self excluded
    d_i  = ‖x̂_i − x̂_{j(i)} + δ·1‖₂                    # nn.PairwiseDistance(p=2, eps=δ) semantics
    L    = −(1/n) · Σ_i log(d_i + eps)

Exact duplicates give d = δ·√D. Runs in float32 with autocast off. At world size 1 this is DINOv3's
``KoLeoLoss``: the argmax has no gradient, the distance back-propagates into both x̂_i and x̂_{j(i)}.

By default each rank uses its local batch, as DINOv3's shipped configs do, so the effective KoLeo weight does
not change with the number of GPUs. With ``across_ranks=True``, ``torch.distributed`` initialised and world
size > 1 (every rank holding the same n), the neighbour set is the all-gathered batch, gathered without
gradient: j(i) ranges over all ranks' samples, the loss is the mean over the local samples, and DDP's gradient
averaging makes the value the mean over the global batch. The gathered neighbour is a constant, so the gradient
flows only through the local side x̂_i (the push on the neighbour, which the single-process loss also applies,
is dropped).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ecg_dino.distributed import rank_and_world_size


class KoLeoLoss(nn.Module):
    def __init__(self, across_ranks: bool = False) -> None:
        super().__init__()
        self.across_ranks = across_ranks
        self.pdist = nn.PairwiseDistance(p=2, eps=1e-8)

    def forward(self, student_output: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
        """Features [n, D] -> scalar loss."""
        n = student_output.shape[0]
        rank, world = rank_and_world_size() if self.across_ranks else (0, 1)
        with torch.autocast(student_output.device.type, enabled=False):
            x = F.normalize(student_output.float(), p=2, dim=-1, eps=eps)  # [n, D]
            if world > 1:
                gathered = [torch.empty_like(x) for _ in range(world)]
                dist.all_gather(gathered, x.detach().contiguous())
                bank = torch.cat(gathered)  # [world·n, D], no gradient
            else:
                bank = x  # [n, D]
            with torch.no_grad():
                dots = x @ bank.T  # [n, world·n]
                local = torch.arange(n, device=x.device)
                dots[local, rank * n + local] = -1.0  # exclude self
                neighbour = dots.argmax(dim=1)  # [n]
            distances = self.pdist(x, bank[neighbour])  # [n]
            return -torch.log(distances + eps).mean()
