"""Attentive probe: learnable queries attend over a record's frozen patch tokens, then one linear classifier.

The "frozen" protocol of the ECG foundation-model benchmark (AI4HealthUOL/ecg-fm-benchmarking, ICLR 2026) and
V-JEPA's attentive probe. The linear probe sees class token ‖ mean patch token, which averages timing away (RR
irregularity, where in the record a finding sits); here every token keeps its lead (the backbone's lead embedding)
and its time in the record (a time code added to the attention's keys and values), padded time and absent leads
are masked out of the softmax, and each query's output goes to the classifier. Trained with AdamW, early stopping
on validation macro AUROC, the weight decay chosen on validation; deterministic under a seed.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from ecg_dino.probes.linear import validation_score

TIME_PERIODS_S = (0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6)  # beat-scale to record-scale
TIME_SCALE_S = 10.0  # the linear time channel is t / 10 s
WEIGHT_DECAYS = (1e-2, 1e-1, 1.0)


def time_code(times_s: torch.Tensor) -> torch.Tensor:
    """[..., 1 + 2·len(TIME_PERIODS_S)]: t/10 s (differences of times stay linear) and sin/cos at each period."""
    periods = torch.tensor(TIME_PERIODS_S, dtype=times_s.dtype, device=times_s.device)
    angles = 2 * math.pi * times_s[..., None] / periods
    return torch.cat([times_s[..., None] / TIME_SCALE_S, angles.sin(), angles.cos()], dim=-1)


class AttentiveHead(nn.Module):
    """``num_queries`` learnable queries, multi-head cross-attention over z = LayerNorm(token) + W_t·code(time),
    a linear classifier.

    The function of ``nn.MultiheadAttention`` with learnable queries, computed in the order that suits frozen
    tokens: each query is folded into the key projection (u = W_kᵀ·q, logits = z·u; constant terms such as the key
    bias drop out of the softmax) and tokens are pooled before anything is projected (Σ a·z is affine in the
    normalised token and the time code, so the LayerNorm's affine, W_t and W_v act on the pooled vectors). Per
    token that costs 2·Q·H·(D + C) multiply-adds instead of 2·D², and no gradient flows through [B, N, D]."""

    def __init__(self, dim: int, num_outputs: int, num_queries: int = 4, num_heads: int = 4) -> None:
        super().__init__()
        if not 1 <= num_queries <= 16:
            raise ValueError(f"num_queries must be in 1..16, got {num_queries}")
        if dim % num_heads:
            raise ValueError(f"token dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.norm = nn.LayerNorm(dim)
        self.time = nn.Linear(1 + 2 * len(TIME_PERIODS_S), dim)
        self.queries = nn.Parameter(torch.randn(num_queries, dim) * 0.02)
        self.q_proj, self.k_proj, self.v_proj = (nn.Linear(dim, dim) for _ in range(3))
        self.out_proj = nn.Linear(dim, dim)
        self.classifier = nn.Linear(num_queries * dim, num_outputs)

    def forward(
        self, tokens: torch.Tensor, times_s: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits [B, K], attention [B, Q, N] averaged over heads) for tokens [B, N, D], times [B, N] and
        ``mask`` [B, N] (True: a real token; every row needs one)."""
        B, H, D = len(tokens), self.num_heads, tokens.shape[-1]
        x = F.layer_norm(tokens, (D,), eps=self.norm.eps)  # the affine is applied after pooling
        code = time_code(times_s)  # [B, N, C]
        q = self.q_proj(self.queries).view(-1, H, D // H)  # [Q, H, d]
        u = torch.einsum("qhd,hde->qhe", q, self.k_proj.weight.view(H, D // H, D)) / math.sqrt(D // H)  # [Q, H, D]
        Q = u.shape[0]
        # Plain matmuls against the contiguous [B, N, D] tokens (an einsum would permute, i.e. copy, them).
        logits = x @ (u * self.norm.weight).reshape(Q * H, D).T + code @ (u @ self.time.weight).reshape(Q * H, -1).T
        weights = logits.transpose(1, 2).masked_fill(~mask[:, None, :], -math.inf).softmax(-1)  # [B, Q·H, N]
        pooled = (
            (weights @ x) * self.norm.weight + self.norm.bias + self.time(weights @ code)
        )  # [B, Q·H, D]: Σ_n a_n·z_n per query and head
        weights, pooled = weights.view(B, Q, H, -1), pooled.view(B, Q, H, D)
        values = torch.einsum("bqhd,hed->bqhe", pooled, self.v_proj.weight.view(H, D // H, D)).flatten(2)
        out = self.out_proj(values + self.v_proj.bias)  # [B, Q, D]
        return self.classifier(out.flatten(1)), weights.mean(2)


@dataclass
class RecordTokens:
    """Frozen patch tokens per record: ``tokens[i]`` [L_i, P_i, D] (float16 keeps the cache small) and
    ``valid[i]`` [L_i, P_i] (False: time no crop covered); patch ``p`` is centred at (p + ½)·patch_seconds."""

    tokens: list[np.ndarray]
    valid: list[np.ndarray]
    patch_seconds: float

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def dim(self) -> int:
        return self.tokens[0].shape[-1]

    def take(self, indices: Sequence[int]) -> RecordTokens:
        return RecordTokens([self.tokens[i] for i in indices], [self.valid[i] for i in indices], self.patch_seconds)

    def batch(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(tokens [B, N, D] float32, times [B, N] in seconds, mask [B, N]): each record's leads × patches
        flattened, padded to the longest; padding is masked."""
        tokens, times, mask = (pad_sequence([part[i] for i in indices], batch_first=True) for part in self.flat)
        return tokens.float(), times, mask

    @cached_property
    def flat(self) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        """Per record: tokens [L·P, D] float16 (a copy: cached arrays are read-only), times [L·P], valid [L·P];
        made once, since batches are cut every step."""
        tokens, times, valid = [], [], []
        for t, v in zip(self.tokens, self.valid):
            leads, patches, dim = t.shape
            tokens.append(torch.tensor(t.reshape(-1, dim), dtype=torch.float16))
            times.append(((torch.arange(patches) + 0.5) * self.patch_seconds).repeat(leads))
            valid.append(torch.tensor(v.reshape(-1)))
        return tokens, times, valid


@dataclass
class AttentiveProbe:
    """A trained attentive head and what chose it."""

    head: AttentiveHead
    multilabel: bool
    weight_decay: float
    epochs: int  # the epoch whose weights were kept (best validation)
    val_macro_auroc: dict[float, float]  # per weight decay
    fit_seconds: float = 0.0  # every weight decay's fit together

    def summary(self) -> dict[str, object]:
        """What chose this head and what it cost, for a report."""
        return {
            "weight_decay": self.weight_decay,
            "epochs": self.epochs,
            "val_macro_auroc": {f"{k:g}": v for k, v in self.val_macro_auroc.items()},
            "fit_seconds": round(self.fit_seconds, 1),
        }

    @torch.no_grad()
    def logits(self, records: RecordTokens, batch_size: int = 128) -> np.ndarray:
        self.head.eval()
        out = []
        for start in range(0, len(records), batch_size):
            out.append(self.head(*records.batch(range(start, min(start + batch_size, len(records)))))[0])
        return torch.cat(out).numpy()

    def scores(self, records: RecordTokens) -> np.ndarray:
        """Sigmoid (multi-label) or softmax probabilities."""
        z = torch.from_numpy(self.logits(records))
        return (torch.sigmoid(z) if self.multilabel else torch.softmax(z, dim=1)).numpy()


def _loss(logits: torch.Tensor, y: torch.Tensor, multilabel: bool, class_weights: torch.Tensor | None) -> torch.Tensor:
    if multilabel:
        return F.binary_cross_entropy_with_logits(logits, y.float())
    return F.cross_entropy(logits, y, weight=class_weights)


def train_head(
    train: RecordTokens,
    y_train: np.ndarray,
    val: RecordTokens,
    y_val: np.ndarray,
    multilabel: bool,
    weight_decay: float,
    class_weights: np.ndarray | None = None,
    num_queries: int = 4,
    seed: int = 0,
    lr: float = 1e-3,
    batch_size: int = 64,
    max_epochs: int = 20,
    patience: int = 4,
) -> AttentiveProbe:
    """One head with one weight decay: AdamW, keeping the epoch with the best validation macro AUROC and
    stopping ``patience`` epochs after it."""
    num_outputs = y_train.shape[1] if multilabel else len(class_weights)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        head = AttentiveHead(train.dim, num_outputs, num_queries)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    weights = None if class_weights is None else torch.as_tensor(class_weights, dtype=torch.float32)
    target = torch.as_tensor(y_train)
    order_rng = np.random.default_rng(seed)
    probe = AttentiveProbe(head, multilabel, weight_decay, 0, {})
    best_score, best_state, best_epoch = -math.inf, copy.deepcopy(head.state_dict()), 0
    for epoch in range(1, max_epochs + 1):
        head.train()
        order = order_rng.permutation(len(train))
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            logits, _ = head(*train.batch(idx))
            loss = _loss(logits, target[idx], multilabel, weights)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        score = validation_score(probe.scores(val), y_val, multilabel)
        if score > best_score:
            best_score, best_state, best_epoch = score, copy.deepcopy(head.state_dict()), epoch
        elif epoch - best_epoch >= patience:
            break
    head.load_state_dict(best_state)
    probe.epochs, probe.val_macro_auroc = best_epoch, {weight_decay: best_score}
    return probe


def fit_attentive(
    train: RecordTokens,
    y_train: np.ndarray,
    val: RecordTokens,
    y_val: np.ndarray,
    multilabel: bool,
    class_weights: np.ndarray | None = None,
    weight_decays: tuple[float, ...] = WEIGHT_DECAYS,
    num_queries: int = 4,
    seed: int = 0,
    **train_kwargs: float,
) -> AttentiveProbe:
    """One head per weight decay (same seed), the best on validation macro AUROC kept (ties: the first)."""
    t0 = time.perf_counter()
    probes = [
        train_head(train, y_train, val, y_val, multilabel, wd, class_weights, num_queries, seed, **train_kwargs)
        for wd in weight_decays
    ]
    scores = {p.weight_decay: p.val_macro_auroc[p.weight_decay] for p in probes}
    best = max(probes, key=lambda p: scores[p.weight_decay])
    best.val_macro_auroc = scores
    best.fit_seconds = time.perf_counter() - t0
    return best
