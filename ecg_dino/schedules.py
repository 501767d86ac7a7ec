"""Training schedules as precomputed arrays indexed by optimizer step (learning rate, weight decay, teacher
momentum, teacher temperature), as in DINOv3: a resumed run reads the same value at the same step."""

from __future__ import annotations

import numpy as np


def cosine_schedule(
    start: float,
    end: float,
    total_steps: int,
    warmup_steps: int = 0,
    warmup_start: float = 0.0,
    freeze_steps: int = 0,
) -> np.ndarray:
    """``freeze_steps`` zeros, a linear warm-up ``warmup_start -> start``, then a cosine ``start -> end``.

    The array has ``total_steps`` entries; a step past the end reads the last value (see ``at``).
    """
    if total_steps <= 0:
        raise ValueError(f"a schedule needs total_steps > 0, got {total_steps}")
    freeze = np.zeros(min(freeze_steps, total_steps))
    warmup = np.linspace(warmup_start, start, max(0, min(warmup_steps, total_steps - len(freeze))))
    n_cos = total_steps - len(freeze) - len(warmup)
    t = np.arange(n_cos) / max(n_cos - 1, 1)
    cosine = end + 0.5 * (start - end) * (1 + np.cos(np.pi * t))
    return np.concatenate([freeze, warmup, cosine]).astype(np.float64)


def linear_warmup_constant(value: float, total_steps: int, warmup_steps: int, warmup_start: float) -> np.ndarray:
    """Linear ``warmup_start -> value`` over ``warmup_steps``, then constant (the teacher temperature)."""
    warm = np.linspace(warmup_start, value, max(0, min(warmup_steps, total_steps)))
    return np.concatenate([warm, np.full(total_steps - len(warm), value)]).astype(np.float64)


def at(schedule: np.ndarray, step: int) -> float:
    """The value at ``step``, holding the last value beyond the end."""
    return float(schedule[min(step, len(schedule) - 1)])
