"""Step-indexed schedules and the EMA teacher update."""

import numpy as np
import pytest
import torch
from torch import nn

from callbacks.ema_teacher import EMATeacher, ema_update
from ecg_dino.schedules import at, cosine_schedule, linear_warmup_constant


def test_cosine_schedule_with_warmup():
    s = cosine_schedule(1.0, 0.0, total_steps=110, warmup_steps=10, warmup_start=0.0)
    assert len(s) == 110
    np.testing.assert_allclose(s[:10], np.linspace(0, 1, 10))
    assert s[10] == pytest.approx(1.0) and s[-1] == pytest.approx(0.0)
    assert s[10 + 50] == pytest.approx(0.5, abs=0.02)
    assert at(s, 10_000) == s[-1]


def test_teacher_temperature_warmup():
    s = linear_warmup_constant(0.07, total_steps=100, warmup_steps=30, warmup_start=0.04)
    assert s[0] == pytest.approx(0.04) and s[29] == pytest.approx(0.07) and s[99] == pytest.approx(0.07)


def test_momentum_schedule_values():
    ema = EMATeacher(0.992, 1.0)
    ema.build_schedule(101)
    assert ema.momentum(0) == pytest.approx(0.992)
    assert ema.momentum(50) == pytest.approx(0.996)
    assert ema.momentum(100) == pytest.approx(1.0)
    assert ema.momentum(500) == pytest.approx(1.0)


def _pair() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    return nn.Linear(4, 3), nn.Linear(4, 3)


def test_momentum_zero_copies_and_one_keeps():
    student, teacher = _pair()
    ema = EMATeacher()
    ema.cache_parameters(student, teacher)
    before = [p.clone() for p in teacher.parameters()]
    ema_update(ema._teacher, ema._student, 1.0)
    for p, b in zip(teacher.parameters(), before):
        torch.testing.assert_close(p, b, atol=0, rtol=0)
    ema_update(ema._teacher, ema._student, 0.0)
    for p, s in zip(teacher.parameters(), student.parameters()):
        torch.testing.assert_close(p, s, atol=0, rtol=0)


def test_ema_formula():
    student, teacher = _pair()
    expected = [0.9 * t + 0.1 * s for t, s in zip(teacher.parameters(), student.parameters())]
    ema = EMATeacher()
    ema.cache_parameters(student, teacher)
    ema_update(ema._teacher, ema._student, 0.9)
    for p, e in zip(teacher.parameters(), expected):
        torch.testing.assert_close(p, e.detach())


def test_structure_mismatch_is_an_error():
    ema = EMATeacher()
    with pytest.raises(RuntimeError, match="differ in structure"):
        ema.cache_parameters(nn.Linear(4, 3), nn.Sequential(nn.Linear(4, 3)))
