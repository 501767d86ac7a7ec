"""The DINO teacher: an exponential moving average of the student, updated after every optimizer step.

Lightning's ``EMAWeightAveraging`` does not fit (fixed decay, swaps weights, unaware of sharding); this is
DINOv3's ``update_ema``: two ``torch._foreach_*`` calls over cached lists of *local* tensors, so it works
unchanged on FSDP2 shards (each rank updates the shard it holds).
"""

from __future__ import annotations

import lightning as L
import torch
from torch import nn

from ecg_dino.schedules import at, cosine_schedule


def local_tensor(p: torch.Tensor) -> torch.Tensor:
    """The local shard of a DTensor parameter, or the tensor itself."""
    return p.to_local() if hasattr(p, "to_local") else p


@torch.no_grad()
def ema_update(teacher: list[torch.Tensor], student: list[torch.Tensor], momentum: float) -> None:
    """teacher ← momentum · teacher + (1 − momentum) · student, in place."""
    torch._foreach_mul_(teacher, momentum)
    torch._foreach_add_(teacher, student, alpha=1.0 - momentum)


class EMATeacher(L.Callback):
    """Update ``pl_module.teacher`` from ``pl_module.student`` with a cosine momentum schedule.

    The module exposes ``student`` and ``teacher`` as ``nn.ModuleDict``s with the same keys and structure
    (backbone, heads). The schedule runs over ``trainer.max_steps``.
    """

    def __init__(self, momentum_start: float = 0.992, momentum_end: float = 1.0) -> None:
        super().__init__()
        self.momentum_start = momentum_start
        self.momentum_end = momentum_end
        self.schedule = None
        self._teacher: list[torch.Tensor] = []
        self._student: list[torch.Tensor] = []
        self._last_step = -1

    def momentum(self, step: int) -> float:
        return at(self.schedule, step)

    def build_schedule(self, total_steps: int) -> None:
        self.schedule = cosine_schedule(self.momentum_start, self.momentum_end, total_steps)

    def cache_parameters(self, student: nn.Module, teacher: nn.Module) -> None:
        """Pair student and teacher tensors by name once, after sharding has replaced the parameters."""
        s_params = dict(student.named_parameters())
        t_params = dict(teacher.named_parameters())
        if s_params.keys() != t_params.keys():
            missing = sorted(set(s_params) ^ set(t_params))[:5]
            raise RuntimeError(f"student and teacher differ in structure, e.g. {missing}")
        self._student = [local_tensor(s_params[k]).detach() for k in s_params]
        self._teacher = [local_tensor(t_params[k]).detach() for k in s_params]

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.max_steps is None or trainer.max_steps <= 0:
            raise ValueError("EMATeacher needs trainer.max_steps > 0 to lay out its momentum schedule")
        self.build_schedule(trainer.max_steps)
        self.cache_parameters(pl_module.student, pl_module.teacher)
        self._last_step = trainer.global_step

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: object) -> None:
        step = trainer.global_step  # already advanced by the optimizer step of this batch
        if step == self._last_step:  # gradient accumulation or a skipped step: no optimizer step happened
            return
        self._last_step = step
        m = self.momentum(step - 1)
        ema_update(self._teacher, self._student, m)
        pl_module.log("sched/momentum", m, on_step=True, on_epoch=False)
