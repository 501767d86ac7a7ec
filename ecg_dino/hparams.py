"""The pretraining module's hyperparameters grouped by concern, as DINOv3's config sections (``dino``, ``ibot``...).

LightningCLI reads each group from its dataclass type hint (``model.init_args.dino: {num_prototypes: 256}``).
Checkpoints store the groups as plain dicts, which ``torch.load(weights_only=True)`` reads; ``grouped`` maps the
flat names of checkpoints written before the grouping (``num_prototypes``, ``lr``...) onto the groups.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class HeadArgs:
    """The DINO and iBOT projection heads: same shape, separate weights."""

    hidden_dim: int = 1024
    bottleneck_dim: int = 256
    layers: int = 3
    normalized_prototypes: bool = False  # DINOv1/v2's weight-normalised prototype layer; DINOv3: a plain Linear


@dataclass(frozen=True)
class DinoArgs:
    """DINO class-token loss."""

    num_prototypes: int = 4096
    loss_weight: float = 1.0


@dataclass(frozen=True)
class IBOTArgs:
    """iBOT masked-patch loss and its block masks over (lead × time) of the global crops."""

    num_prototypes: int = 4096
    loss_weight: float = 1.0
    mask_sample_probability: float = 0.5  # the share of global crops that get a mask
    mask_ratio_range: tuple[float, float] = (0.1, 0.5)


@dataclass(frozen=True)
class KoLeoArgs:
    """KoLeo spreading of the student's class tokens."""

    loss_weight: float = 0.1
    across_ranks: bool = False  # DINOv3: each rank's own batch


@dataclass(frozen=True)
class GramArgs:
    """Gram anchoring of the student's patch-token similarities to those of an earlier teacher."""

    loss_weight: float = 0.0  # 0: no Gram teacher is built
    start_step: int = 0
    warmup_steps: int = 0  # linear ramp of the weight from 0 after start_step
    refresh_every: int = 1000  # steps between copies of the teacher into the Gram teacher


@dataclass(frozen=True)
class TeacherArgs:
    """The EMA teacher: its Sinkhorn-Knopp temperature (linear warm-up) and momentum (cosine)."""

    temp: float = 0.07
    temp_warmup_start: float = 0.04
    temp_warmup_steps: int = 100
    momentum_start: float = 0.992
    momentum_end: float = 1.0


@dataclass(frozen=True)
class OptimArgs:
    """AdamW with cosine lr and weight-decay schedules and layer-wise lr decay."""

    lr: float = 5e-4
    min_lr: float = 1e-6
    warmup_steps: int = 100
    weight_decay: float = 0.04
    weight_decay_end: float = 0.2
    layer_decay: float = 1.0
    betas: tuple[float, float] = (0.9, 0.999)
    freeze_prototypes_steps: int = 0  # the prototype layers get no update for this many steps


GROUPS: dict[str, type] = {
    "head": HeadArgs,
    "dino": DinoArgs,
    "ibot": IBOTArgs,
    "koleo": KoLeoArgs,
    "gram": GramArgs,
    "teacher": TeacherArgs,
    "optim": OptimArgs,
}


@dataclass(frozen=True)
class PretrainConfig:
    """Every group together, as the module reads them (``self.cfg.dino.loss_weight``)."""

    head: HeadArgs
    dino: DinoArgs
    ibot: IBOTArgs
    koleo: KoLeoArgs
    gram: GramArgs
    teacher: TeacherArgs
    optim: OptimArgs

    @classmethod
    def of(cls, **groups: Any) -> PretrainConfig:
        """Groups given as dataclasses (LightningCLI, code) or as plain dicts (a checkpoint's hyperparameters)."""
        return cls(**{k: v if isinstance(v, GROUPS[k]) else GROUPS[k](**v) for k, v in groups.items()})


# The flat names of checkpoints written before the grouping -> (group, field).
FLAT_NAMES: dict[str, tuple[str, str]] = {
    "head_hidden_dim": ("head", "hidden_dim"),
    "head_bottleneck_dim": ("head", "bottleneck_dim"),
    "head_layers": ("head", "layers"),
    "normalized_prototypes": ("head", "normalized_prototypes"),
    "num_prototypes": ("dino", "num_prototypes"),
    "dino_loss_weight": ("dino", "loss_weight"),
    "ibot_num_prototypes": ("ibot", "num_prototypes"),
    "ibot_loss_weight": ("ibot", "loss_weight"),
    "mask_sample_probability": ("ibot", "mask_sample_probability"),
    "mask_ratio_range": ("ibot", "mask_ratio_range"),
    "koleo_loss_weight": ("koleo", "loss_weight"),
    "koleo_across_ranks": ("koleo", "across_ranks"),
    "gram_loss_weight": ("gram", "loss_weight"),
    "gram_start_step": ("gram", "start_step"),
    "gram_warmup_steps": ("gram", "warmup_steps"),
    "gram_refresh_every": ("gram", "refresh_every"),
    "teacher_temp": ("teacher", "temp"),
    "teacher_temp_warmup_start": ("teacher", "temp_warmup_start"),
    "teacher_temp_warmup_steps": ("teacher", "temp_warmup_steps"),
    "momentum_start": ("teacher", "momentum_start"),
    "momentum_end": ("teacher", "momentum_end"),
    "lr": ("optim", "lr"),
    "min_lr": ("optim", "min_lr"),
    "warmup_steps": ("optim", "warmup_steps"),
    "weight_decay": ("optim", "weight_decay"),
    "weight_decay_end": ("optim", "weight_decay_end"),
    "layer_decay": ("optim", "layer_decay"),
    "betas": ("optim", "betas"),
    "freeze_prototypes_steps": ("optim", "freeze_prototypes_steps"),
}


def grouped(hparams: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's hyperparameters with any flat (pre-grouping) name moved into its group; others unchanged."""
    out = {k: v for k, v in hparams.items() if k not in FLAT_NAMES}
    for name, (group, field) in FLAT_NAMES.items():
        if name in hparams:
            out[group] = {**out.get(group, {}), field: hparams[name]}
    return out
