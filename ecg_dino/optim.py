"""AdamW parameter groups with layer-wise learning-rate decay and no weight decay on norms, biases and
tokens; the schedules scale each group's ``lr_scale`` and ``wd_scale`` every step."""

from __future__ import annotations

from torch import nn


def layer_id(name: str, depth: int) -> int:
    """0 for the tokeniser and prefix tokens, i+1 for block i, depth+1 for the final norm and the heads."""
    if name.startswith("backbone."):
        name = name[len("backbone.") :]
        if name.startswith(("tokenizer", "cls_token", "register_tokens")):
            return 0
        if name.startswith("blocks."):
            return int(name.split(".")[1]) + 1
    return depth + 1


def param_groups(student: nn.ModuleDict, layer_decay: float = 1.0) -> list[dict]:
    """Group the student's trainable parameters by (lr scale, weight-decay scale)."""
    backbone = student["backbone"]
    depth = len(backbone.blocks)
    no_wd = {f"backbone.{n}" for n in backbone.no_weight_decay()}
    groups: dict[tuple[float, float], dict] = {}
    for name, p in student.named_parameters():
        if not p.requires_grad:
            continue
        lr_scale = layer_decay ** (depth + 1 - layer_id(name, depth))
        wd_scale = 0.0 if (name in no_wd or p.ndim <= 1 or name.endswith(".bias")) else 1.0
        group = groups.setdefault((lr_scale, wd_scale), {"params": [], "lr_scale": lr_scale, "wd_scale": wd_scale})
        group["params"].append(p)
    return list(groups.values())
