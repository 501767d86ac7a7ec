"""A lead-agnostic ECG Vision Transformer: class token, register tokens and per-lead time-patch tokens.

Pre-norm blocks with LayerScale and drop-path, attention with a key-padding mask (absent leads and padded time
are never attended to), and rotary position embedding over time in seconds. Rows of a batch are encoded in
groups of equal lead width, so a 1-lead ECG batched with 12-lead ones costs 1 lead, not 12.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from ecg_dino.model.rope import TimeRoPE, apply_rope
from ecg_dino.model.tokenizer import ECGInputError, PatchTokenizer


class LayerScale(nn.Module):
    """Per-channel scale ``gamma`` of a residual branch (CaiT), folded into the branch's last linear layer:
    scaling its [D, D_in] weight costs less than scaling the [tokens, D] output (about 10 % of a tiny block)."""

    def __init__(self, dim: int, init_value: float) -> None:
        super().__init__()
        self.init_value = init_value
        self.gamma = nn.Parameter(torch.empty(dim))

    def init_weights(self) -> None:
        nn.init.constant_(self.gamma, self.init_value)

    def linear(self, x: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
        """``gamma * layer(x)``."""
        return F.linear(x, layer.weight * self.gamma[:, None], layer.bias * self.gamma)


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch per sample while training."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = x.new_empty(x.shape[0], *([1] * (x.ndim - 1))).bernoulli_(1 - self.p)
        return x * keep.div_(1 - self.p)


@contextmanager
def bf16_products() -> Iterator[None]:
    """fp32 matmuls computed by oneDNN from bf16 products with fp32 accumulation and output: bf16 GEMM speed at
    the precision of the fused attention kernel's scores. A no-op on torch builds without the setting."""
    matmul = getattr(torch.backends.mkldnn, "matmul", None)
    before = getattr(matmul, "fp32_precision", None)
    if before is None:
        yield
        return
    matmul.fp32_precision = "bf16"
    try:
        yield
    finally:
        matmul.fp32_precision = before


class AttentionScores(torch.autograd.Function):
    """``q @ k^T`` in fp32 from bf16 products, forward and backward (``bf16_products``)."""

    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(q, k)
        with bf16_products():
            return q @ k.transpose(-2, -1)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q, k = ctx.saved_tensors
        with bf16_products():
            return grad @ k, grad.transpose(-2, -1) @ q


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
    """Scaled dot-product attention over [B, H, N, hd] in ``v``'s dtype. On CPU in bf16 it runs as explicit matmuls:
    there the fused kernel is 3-5x slower than matmul + softmax at ECG sequence lengths, forward+backward
    (``benchmarks/attention.py``). The scores keep the fused kernel's precision: bf16 products, fp32 sums and fp32
    scores (rounded to bf16 before the softmax they double the error of a peaked attention). Everywhere else, the
    fused kernel."""
    if q.device.type != "cpu" or v.dtype != torch.bfloat16:
        return F.scaled_dot_product_attention(q.to(v.dtype), k.to(v.dtype), v, attn_mask=attn_mask)
    with torch.autocast("cpu", enabled=False):
        scores = AttentionScores.apply(q.float() * q.shape[-1] ** -0.5, k.float())
    if attn_mask is not None:
        scores = scores.masked_fill(~attn_mask, float("-inf"))
    return scores.softmax(-1).to(v.dtype) @ v


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
        attn_mask: torch.Tensor | None,
        scale: LayerScale,
    ) -> torch.Tensor:
        """x [B, N, D] -> the branch output, scaled by the block's LayerScale."""
        B, N, D = x.shape
        qkv = self.qkv(x).view(B, N, 3, self.num_heads, D // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k = apply_rope(qkv[:2], *rope)  # [B, H, N, hd] each, rotated together in fp32
        x = attention(q, k, qkv[2], attn_mask)
        return scale.linear(x.transpose(1, 2).reshape(B, N, D), self.proj)

    def cls_weights(
        self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], attn_mask: torch.Tensor | None
    ) -> torch.Tensor:
        """The class token's (token 0) softmax(q k^T / sqrt(hd)) row over every key, [B, H, N] fp32; masked keys 0."""
        B, N, D = x.shape
        qkv = self.qkv(x).view(B, N, 3, self.num_heads, D // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k = apply_rope(qkv[:2], *rope)  # [B, H, N, hd] each, fp32
        with torch.autocast(x.device.type, enabled=False):
            scores = (q[:, :, :1] * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)  # [B, H, 1, N]
        if attn_mask is not None:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        return scores.softmax(-1)[:, :, 0]


class Block(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, layerscale_init: float, drop_path: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads)
        self.ls1 = LayerScale(dim, layerscale_init)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.ls2 = LayerScale(dim, layerscale_init)
        self.drop_path = DropPath(drop_path)

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
        attn_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), rope, attn_mask, self.ls1))
        fc1, act, fc2 = self.mlp
        return x + self.drop_path(self.ls2.linear(act(fc1(self.norm2(x))), fc2))


class ECGViT(nn.Module):
    """Encode ECGs with any lead set into a global (class) embedding and one embedding per patch."""

    def __init__(
        self,
        embed_dim: int = 192,
        depth: int = 12,
        num_heads: int = 3,
        mlp_ratio: float = 4.0,
        num_registers: int = 4,
        sample_rate_hz: float = 250.0,
        patch_seconds: float = 0.2,
        layerscale_init: float = 1e-5,
        drop_path_rate: float = 0.0,
        rope_min_period_s: float = 0.1,
        rope_max_period_s: float = 100.0,
        check_inputs: bool = True,
    ) -> None:
        super().__init__()
        self.config: dict[str, Any] = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        patch_samples = sample_rate_hz * patch_seconds
        if abs(patch_samples - round(patch_samples)) > 1e-6:
            raise ValueError(f"patch of {patch_seconds} s is not a whole number of samples at {sample_rate_hz} Hz")
        self.sample_rate_hz = sample_rate_hz
        self.patch_seconds = patch_seconds
        self.patch_samples = round(patch_samples)
        self.embed_dim = embed_dim
        self.num_registers = num_registers
        self.check_inputs = check_inputs
        self.grad_checkpointing = False
        self.tokenizer = PatchTokenizer(self.patch_samples, embed_dim)
        self.cls_token = nn.Parameter(torch.empty(1, 1, embed_dim))
        self.register_tokens = nn.Parameter(torch.empty(1, num_registers, embed_dim))
        self.rope = TimeRoPE(embed_dim // num_heads, rope_min_period_s, rope_max_period_s)
        dpr = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, layerscale_init, dpr[i]) for i in range(depth)
        )
        self.norm = nn.LayerNorm(embed_dim)

    def init_weights(self) -> None:
        """Initialise every parameter; separate from ``__init__`` so meta-device and sharded builds work."""
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.register_tokens, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                m.reset_parameters()
            elif m is not self and hasattr(m, "init_weights"):
                m.init_weights()

    def no_weight_decay(self) -> set[str]:
        return {"cls_token", "register_tokens", "tokenizer.mask_token", "tokenizer.lead_embed.weight"}

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    def _check(
        self,
        signal: torch.Tensor,
        lead_ids: torch.Tensor,
        valid_samples: torch.Tensor,
        sample_rate_hz: float | None,
    ) -> None:
        if sample_rate_hz is not None and abs(float(sample_rate_hz) - self.sample_rate_hz) > 1e-6:
            raise ECGInputError(
                f"signal sampled at {float(sample_rate_hz)} Hz but the model expects {self.sample_rate_hz} Hz;"
                " resample first"
            )
        if signal.ndim != 3 or lead_ids.shape != signal.shape[:2]:
            raise ECGInputError(
                f"expected signal [B, L, T] and lead_ids [B, L], got {tuple(signal.shape)} and {tuple(lead_ids.shape)}"
            )
        if self.check_inputs:
            if int(valid_samples.min()) < self.patch_samples:
                raise ECGInputError(
                    f"crop of {int(valid_samples.min())} samples is shorter than one patch "
                    f"({self.patch_samples} samples = {self.patch_seconds} s)"
                )
            if not bool(torch.isfinite(signal).all()):
                raise ECGInputError("signal holds NaN or Inf samples")

    def forward_features(
        self,
        signal: torch.Tensor,
        lead_ids: torch.Tensor,
        lead_mask: torch.Tensor | None = None,
        valid_samples: torch.Tensor | None = None,
        ibot_mask: torch.Tensor | None = None,
        sample_rate_hz: float | None = None,
        return_attention: bool = False,
    ) -> dict[str, torch.Tensor]:
        """signal [B, L, T] mV -> {cls [B, D], registers [B, R, D], patches [B, L, P, D], patch_mask [B, L, P]}.

        Rows are encoded in groups of equal lead width (up to their last present lead): a row's tokens never
        attend to padded leads anyway, so this gives the same outputs as padding every row to ``L`` leads
        without computing the padding. Patch tokens of absent leads are zero.

        ``return_attention`` adds the last block's class-token attention, mean over heads (pictures, not training):
        ``cls_attention`` [B, L, P] over the patches, renormalised to sum to 1 over the valid ones (0 elsewhere),
        and ``cls_attention_patch_share`` [B], the part of the row on patches rather than class and registers.
        """
        B, L, T = signal.shape
        if lead_mask is None:
            lead_mask = torch.ones(B, L, dtype=torch.bool, device=signal.device)
        if valid_samples is None:
            valid_samples = torch.full((B,), T, dtype=torch.long, device=signal.device)
        self._check(signal, lead_ids, valid_samples, sample_rate_hz)
        width = (lead_mask * torch.arange(1, L + 1, device=signal.device)).amax(1).clamp_min(1)  # [B]
        widths = width.unique().tolist()
        if widths == [L]:
            return self._encode(signal, lead_ids, lead_mask, valid_samples, ibot_mask, return_attention)
        groups = []
        for w in widths:
            rows = (width == w).nonzero().squeeze(1)
            part = (signal[rows, :w], lead_ids[rows, :w], lead_mask[rows, :w], valid_samples[rows])
            group_mask = None if ibot_mask is None else ibot_mask[rows, :w]
            groups.append((rows, w, self._encode(*part, group_mask, return_attention)))
        first = groups[0][2]
        P, D = first["patches"].shape[2:]
        out = {
            "cls": first["cls"].new_empty(B, D),
            "registers": first["registers"].new_empty(B, self.num_registers, D),
            "patches": first["patches"].new_zeros(B, L, P, D),
            "patch_mask": lead_mask.new_zeros(B, L, P),
        }
        if return_attention:
            out["cls_attention"] = first["cls_attention"].new_zeros(B, L, P)
            out["cls_attention_patch_share"] = first["cls_attention_patch_share"].new_empty(B)
        for rows, w, group in groups:
            for key in ("cls", "registers", "cls_attention_patch_share"):
                if key in out:
                    out[key] = out[key].index_copy(0, rows, group[key])
            out["patches"] = out["patches"].index_put((rows,), F.pad(group["patches"], (0, 0, 0, 0, 0, L - w)))
            out["patch_mask"][rows, :w] = group["patch_mask"]
            if return_attention:
                out["cls_attention"][rows, :w] = group["cls_attention"]
        return out

    def _encode(
        self,
        signal: torch.Tensor,
        lead_ids: torch.Tensor,
        lead_mask: torch.Tensor,
        valid_samples: torch.Tensor,
        ibot_mask: torch.Tensor | None,
        return_attention: bool = False,
    ) -> dict[str, torch.Tensor]:
        """The transformer over one group of rows: tokens, blocks, final norm (``forward_features``)."""
        B, L, _ = signal.shape
        patches, patch_mask = self.tokenizer(signal, lead_ids, lead_mask, valid_samples, ibot_mask)
        P = patches.shape[2]
        n_prefix = 1 + self.num_registers
        x = torch.cat(
            [
                self.cls_token.expand(B, -1, -1),
                self.register_tokens.expand(B, -1, -1),
                patches.flatten(1, 2),
            ],  # [B, L*P, D]
            dim=1,
        )  # [B, N, D]
        # Patch p sits at (p + 0.5) patch lengths; the class and register tokens at 0, where RoPE is the identity.
        times_s = (torch.arange(P, device=x.device) + 0.5) * self.patch_seconds
        rope = self.rope(torch.cat([times_s.new_zeros(n_prefix), times_s.repeat(L)]))  # each [N, hd / 2]
        attn_mask = None
        if not bool(patch_mask.all()):
            keep = torch.cat([patch_mask.new_ones(B, n_prefix), patch_mask.flatten(1)], dim=1)  # [B, N]
            attn_mask = keep[:, None, None, :]  # [B, 1, 1, N]
        for i, block in enumerate(self.blocks):
            if return_attention and i == len(self.blocks) - 1:
                weights = block.attn.cls_weights(block.norm1(x), rope, attn_mask).mean(1)  # [B, N]
            if self.grad_checkpointing and self.training:
                x = checkpoint(block, x, rope, attn_mask, use_reentrant=False)
            else:
                x = block(x, rope, attn_mask)
        x = self.norm(x)
        out = {
            "cls": x[:, 0],
            "registers": x[:, 1:n_prefix],
            "patches": x[:, n_prefix:].reshape(B, L, P, -1),
            "patch_mask": patch_mask,
        }
        if return_attention:
            on_patches = weights[:, n_prefix:].reshape(B, L, P) * patch_mask  # [B, L, P]
            share = on_patches.sum((1, 2))  # [B]
            out["cls_attention"] = on_patches / share.clamp_min(torch.finfo(share.dtype).tiny)[:, None, None]
            out["cls_attention_patch_share"] = share
        return out

    def forward(self, signal: torch.Tensor, lead_ids: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """The global embedding: the class token [B, D]."""
        return self.forward_features(signal, lead_ids, **kwargs)["cls"]


_SIZES = {
    "tiny": dict(embed_dim=192, depth=12, num_heads=3),
    "small": dict(embed_dim=384, depth=12, num_heads=6),
    "base": dict(embed_dim=768, depth=12, num_heads=12),
    "large": dict(embed_dim=1024, depth=24, num_heads=16),
}


def build_vit(size: str, **kwargs: Any) -> ECGViT:
    """A ViT of a named size; keyword arguments override the size's defaults (e.g. ``depth=4``)."""
    if size not in _SIZES:
        raise ValueError(f"unknown ViT size {size!r}; choose from {', '.join(_SIZES)}")
    return ECGViT(**{**_SIZES[size], **kwargs})


def vit_tiny(**kwargs: Any) -> ECGViT:
    return build_vit("tiny", **kwargs)


def vit_small(**kwargs: Any) -> ECGViT:
    return build_vit("small", **kwargs)


def vit_base(**kwargs: Any) -> ECGViT:
    return build_vit("base", **kwargs)


def vit_large(**kwargs: Any) -> ECGViT:
    return build_vit("large", **kwargs)


__all__ = ["ECGInputError", "ECGViT", "build_vit", "vit_base", "vit_large", "vit_small", "vit_tiny"]
