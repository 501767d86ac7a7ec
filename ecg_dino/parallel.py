"""All parallelism of pretraining, applied from ``DinoPretrainModule.configure_model``.

FSDP2 (the default at scale) under Lightning's ``ModelParallelStrategy(data_parallel_size=N,
tensor_parallel_size=1)``: every branch (student, teacher, Gram teacher) is sharded the same way over the
data-parallel mesh, one ``fully_shard`` unit per transformer block, one per head, then the backbone itself
(tokenizer, prefix tokens, final norm). Teacher shards line up with the student's, so the EMA update and the
Gram-teacher refresh run on local shards. ``forward_features`` is registered as an FSDP forward method. The
teacher reshards after forward too (it never runs backward, so nothing needs to stay gathered).

bf16: with ``trainer.precision: bf16-mixed`` the units get ``MixedPrecisionPolicy(param_dtype=bf16,
reduce_dtype=fp32)``: bf16 all-gathers and compute, fp32 master weights, optimizer state and gradient
reduction; Lightning's autocast still wraps the step. ``bf16-true`` would keep the master weights and AdamW
state in bf16: do not use it for pretraining.

Activation checkpointing (``activation_checkpointing: true`` on the module): the student backbone recomputes
each block in backward (``ECGViT.set_grad_checkpointing``); works with and without FSDP2.

Gradient clipping: Lightning's ``gradient_clip_val`` calls ``torch.nn.utils.clip_grad_norm_``, which on FSDP2's
DTensor gradients computes the global norm over all shards (checked against one process in the tests). Without
a loss scaler (fp32, bf16) it is called here directly: Lightning's mixed-precision plugin refuses to clip for a
fused optimizer, a guard meant for fp16's scaler (with which the module uses the unfused AdamW).

FSDP1 (``DinoFSDPStrategy``, Lightning's ``FSDPStrategy``, GPU only) is the alternative; see its docstring.
Both build the full model on every rank before sharding it (no meta-device init), fine up to ViT-L.
"""

from __future__ import annotations

import lightning as L
import torch
import torch.distributed as dist
from lightning.pytorch.plugins import Precision
from lightning.pytorch.strategies import FSDPStrategy
from lightning.pytorch.utilities import GradClipAlgorithmType
from torch import nn
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.fsdp import (
    FSDPModule,
    FullyShardedDataParallel,
    MixedPrecisionPolicy,
    ShardingStrategy,
    fully_shard,
    register_fsdp_forward_method,
)
from torch.distributed.fsdp.wrap import CustomPolicy

from ecg_dino.distributed import is_distributed
from ecg_dino.model.heads import DINOHead
from ecg_dino.model.vit import Block

BRANCHES = ("student", "teacher", "gram_teacher")


def close_process_group() -> None:
    """Destroy the default process group if one is up. Call at the end of a multi-process run: gloo's worker
    threads left alive into interpreter shutdown abort the process (SIGABRT, "terminate called without an
    active exception") now and then, after the work is done."""
    if is_distributed():
        dist.destroy_process_group()


def mixed_precision_policy(precision: str) -> MixedPrecisionPolicy | None:
    """bf16 parameters and fp32 gradient reduction for ``bf16-mixed``; None (all fp32) otherwise."""
    if precision == "bf16-mixed":
        return MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    return None


def shard_branch(branch: nn.ModuleDict, mesh: DeviceMesh, mp_policy: MixedPrecisionPolicy | None) -> None:
    """``fully_shard`` each block, each head, then the backbone of one branch, in place."""
    kwargs = {"mesh": mesh, "reshard_after_forward": True}
    if mp_policy is not None:
        kwargs["mp_policy"] = mp_policy
    backbone = branch["backbone"]
    for block in backbone.blocks:
        fully_shard(block, **kwargs)
    for name, module in branch.items():
        if name != "backbone":
            fully_shard(module, **kwargs)
    fully_shard(backbone, **kwargs)
    register_fsdp_forward_method(backbone, "forward_features")


def shard_module(module: nn.Module, mesh: DeviceMesh, precision: str) -> None:
    """Shard every branch of a ``DinoPretrainModule`` over a 1-D mesh; branches already sharded are left."""
    mp_policy = mixed_precision_policy(precision)
    for name in BRANCHES:
        branch = getattr(module, name, None)
        if branch is not None and not isinstance(branch["backbone"], FSDPModule):
            shard_branch(branch, mesh, mp_policy)


def configure_model(module: nn.Module, mesh: DeviceMesh | None, precision: str, activation_checkpointing: bool) -> None:
    """Per-block activation checkpointing of the student, then FSDP2 when the strategy gives a device mesh."""
    module.student.backbone.set_grad_checkpointing(activation_checkpointing)
    if mesh is None:
        return
    if mesh["tensor_parallel"].size() != 1:
        raise ValueError(
            f"ecg-dino shards data-parallel only, but the mesh has tensor_parallel={mesh['tensor_parallel'].size()};"
            " set both sizes: ModelParallelStrategy(data_parallel_size=<world size>, tensor_parallel_size=1)"
        )
    shard_module(module, mesh["data_parallel"], precision)


def clip_gradients(
    module: L.LightningModule, optimizer: torch.optim.Optimizer, clip_val: float | None, algorithm: str | None
) -> None:
    """Lightning's clipping, except under FSDP1, where only the root FSDP module can take the global norm, and
    without a loss scaler, where Lightning's base clipping runs (see the module docstring)."""
    model = module.trainer.strategy.model
    plugin = module.trainer.precision_plugin
    if clip_val and algorithm == "norm" and isinstance(model, FullyShardedDataParallel):
        model.clip_grad_norm_(clip_val)
    elif clip_val and getattr(plugin, "scaler", None) is None:
        Precision.clip_gradients(plugin, optimizer, clip_val, GradClipAlgorithmType(algorithm or "norm"))
    else:
        module.clip_gradients(optimizer, clip_val, algorithm)


def _fsdp1_unit(module: nn.Module) -> bool | dict:
    """Blocks and heads are fully sharded units; everything else stays in the (replicated) root."""
    return isinstance(module, (Block, DINOHead)) and {"sharding_strategy": ShardingStrategy.FULL_SHARD}


class DinoFSDPStrategy(FSDPStrategy):
    """Lightning's FSDP (v1, GPU only) set up for a student, an EMA teacher and a Gram teacher.

    FSDP1 wraps the whole LightningModule. Blocks and heads are FULL_SHARD units: student and teacher units have
    identical layouts, so the EMA pairs their local shards. The root unit (prefix tokens, tokenizers and final
    norms, well under 1% of the weights) is NO_SHARD: the backbone runs through ``forward_features``, which
    FSDP1 cannot hook, and replicated tensors line up trivially. ``use_orig_params=True`` lets the optimizer
    hold only the student's parameters, frozen teacher and trainable student share the root unit, and the EMA
    pair parameters by name; parameter groups are built while the parameters are gathered, so they see real
    shapes rather than FSDP1's flat shards. For activation checkpointing use Lightning's
    ``activation_checkpointing_policy: [ecg_dino.model.vit.Block]`` rather than the module option.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(
            auto_wrap_policy=CustomPolicy(_fsdp1_unit),
            sharding_strategy=ShardingStrategy.NO_SHARD,  # the root; blocks and heads override it
            use_orig_params=True,
            **kwargs,
        )

    def setup_optimizers(self, trainer: L.Trainer) -> None:
        with FullyShardedDataParallel.summon_full_params(self.model, writeback=False):
            super().setup_optimizers(trainer)
