"""Projection heads of the DINO and iBOT objectives.

``DINOHead``: x [*, D] -> MLP (Linear + GELU, ``nlayers`` Linear layers) -> bottleneck [*, bottleneck_dim]
-> L2-normalise -> K prototypes [*, K]. The prototype layer is DINOv3's plain Linear without bias (trunc-normal
std 0.02, trained freely). ``normalized_prototypes=True`` gives DINOv1/v2's weight-normalised layer instead, whose
magnitudes are fixed at 1, so logits are cosines in [-1, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm


def _build_mlp(nlayers: int, in_dim: int, hidden_dim: int, bottleneck_dim: int) -> nn.Sequential:
    if nlayers == 1:
        return nn.Sequential(nn.Linear(in_dim, bottleneck_dim))
    layers: list[nn.Module] = [nn.Linear(in_dim, hidden_dim), nn.GELU()]
    for _ in range(nlayers - 2):
        layers += [nn.Linear(hidden_dim, hidden_dim), nn.GELU()]
    layers.append(nn.Linear(hidden_dim, bottleneck_dim))
    return nn.Sequential(*layers)


class DINOHead(nn.Module):
    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden_dim: int = 2048,
        bottleneck_dim: int = 256,
        nlayers: int = 3,
        normalized_prototypes: bool = False,
    ) -> None:
        super().__init__()
        self.mlp = _build_mlp(max(nlayers, 1), in_dim, hidden_dim, bottleneck_dim)
        self.normalized_prototypes = normalized_prototypes
        self.last_layer = nn.Linear(bottleneck_dim, out_dim, bias=False)  # [K, bottleneck_dim]
        if normalized_prototypes:
            self.last_layer = weight_norm(self.last_layer)
            self.last_layer.parametrizations.weight.original0.requires_grad_(False).fill_(1.0)  # [K, 1]

    @torch.no_grad()
    def init_weights(self) -> None:
        """Truncated-normal (std 0.02) weights and prototypes, zero biases (normalised: magnitudes 1)."""
        for m in self.mlp.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        if not self.normalized_prototypes:
            nn.init.trunc_normal_(self.last_layer.weight, std=0.02)
            return
        weight = self.last_layer.parametrizations.weight
        nn.init.trunc_normal_(weight.original1, std=0.02)  # [K, bottleneck_dim] directions
        weight.original0.fill_(1.0)  # [K, 1] magnitudes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.mlp(x)  # [*, bottleneck_dim]
        eps = 1e-6 if x.dtype == torch.float16 else 1e-12
        x = F.normalize(x, dim=-1, p=2, eps=eps)
        return self.last_layer(x)  # [*, K]
