"""The DINOv3 losses and the DINO head against brute-force reference computations on small tensors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ecg_dino.loss import DINOLoss, GramLoss, KoLeoLoss, iBOTPatchLoss, sinkhorn_knopp
from ecg_dino.model.heads import DINOHead


def naive_sinkhorn_knopp(logits: torch.Tensor, temp: float, n_iterations: int) -> torch.Tensor:
    """Element-by-element loops in float64: alternately normalise prototypes (columns) and samples (rows)."""
    R, K = logits.shape
    P = [[math.exp(logits[r, k].item() / temp) for k in range(K)] for r in range(R)]
    for _ in range(n_iterations):
        for k in range(K):
            col = sum(P[r][k] for r in range(R))
            for r in range(R):
                P[r][k] /= col
        for r in range(R):
            row = sum(P[r])
            P[r] = [p / row for p in P[r]]
    return torch.tensor(P, dtype=torch.float64)


def cross_entropy(q: torch.Tensor, z: torch.Tensor, temp: float) -> torch.Tensor:
    return -(q.double() * F.log_softmax(z.double() / temp, dim=-1)).sum()


# ------------------------------------------------------------------------------------------- Sinkhorn-Knopp
@pytest.mark.parametrize("n_iterations", [1, 3])
def test_sinkhorn_knopp_matches_naive_loops(n_iterations: int) -> None:
    logits = torch.randn(7, 5, generator=torch.Generator().manual_seed(0))
    probs = DINOLoss().sinkhorn_knopp_teacher(logits, teacher_temp=0.5, n_iterations=n_iterations)
    torch.testing.assert_close(probs.double(), naive_sinkhorn_knopp(logits, 0.5, n_iterations))
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(7))


def test_sinkhorn_knopp_balances_prototypes() -> None:
    R, K = 12, 4
    logits = torch.randn(R, K, generator=torch.Generator().manual_seed(1))
    probs = sinkhorn_knopp(logits, teacher_temp=1.0, n_samples=R, n_iterations=50)
    torch.testing.assert_close(probs.sum(dim=0), torch.full((K,), R / K), rtol=1e-4, atol=1e-4)
    assert not probs.requires_grad


def test_ibot_sinkhorn_knopp_equals_dino_at_world_size_one() -> None:
    logits = torch.randn(9, 6, generator=torch.Generator().manual_seed(2))
    n_masked = torch.tensor([9])
    ibot = iBOTPatchLoss().sinkhorn_knopp_teacher(logits, 0.07, n_masked)
    torch.testing.assert_close(ibot, DINOLoss().sinkhorn_knopp_teacher(logits, 0.07))
    assert n_masked.item() == 9


# ------------------------------------------------------------------------------------------------- DINO
@pytest.mark.parametrize(("S", "T"), [(2, 2), (3, 2), (2, 3), (5, 2)])
@pytest.mark.parametrize("ignore_diagonal", [False, True])
def test_dino_loss_matches_pairwise_loops(S: int, T: int, ignore_diagonal: bool) -> None:
    B, K, temp = 4, 6, 0.1
    g = torch.Generator().manual_seed(3)
    student = torch.randn(S, B, K, generator=g)
    teacher = torch.softmax(torch.randn(T, B, K, generator=g), dim=-1)
    total, n_terms = 0.0, 0
    for s in range(S):
        for t in range(T):
            if ignore_diagonal and s == t:
                continue
            for b in range(B):
                total += cross_entropy(teacher[t, b], student[s, b], temp)
                n_terms += 1
    assert n_terms == B * (S * T - min(S, T) if ignore_diagonal else S * T)
    loss = DINOLoss(student_temp=temp)(student, teacher, ignore_diagonal=ignore_diagonal)
    torch.testing.assert_close(loss.double(), total / n_terms)


def test_dino_loss_student_side_in_float32() -> None:
    """bf16 logits and bf16 autocast (where einsum would run in bf16) both give the float32 loss."""
    student = torch.randn(2, 32, 2048).bfloat16()
    teacher = torch.softmax(torch.randn(2, 32, 2048), dim=-1)
    reference = DINOLoss()(student.float(), teacher, ignore_diagonal=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = DINOLoss()(student, teacher, ignore_diagonal=True)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, reference, rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------------------------------------------- iBOT
def _ibot_inputs(n_img: int = 4, N: int = 6, K: int = 5) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(4)
    student = torch.randn(n_img, N, K, generator=g)
    teacher = torch.softmax(torch.randn(n_img, N, K, generator=g), dim=-1)
    masks = torch.rand(n_img, N, generator=g) < 0.5
    masks[0] = False  # an image without masked patches still counts in n_img
    masks[1, :2] = True
    return student, teacher, masks


def test_ibot_loss_matches_brute_force() -> None:
    student, teacher, masks = _ibot_inputs()
    n_img, N, _ = student.shape
    expected = 0.0
    for i in range(n_img):
        m_i = int(masks[i].sum())
        for j in range(N):
            if masks[i, j]:
                expected += cross_entropy(teacher[i, j], student[i, j], 0.1) / max(m_i, 1)
    expected /= n_img
    torch.testing.assert_close(iBOTPatchLoss()(student, teacher, masks).double(), expected)


def test_ibot_loss_ignores_unmasked_tokens() -> None:
    student, teacher, masks = _ibot_inputs()
    student.requires_grad_(True)
    loss = iBOTPatchLoss()(student, teacher, masks)
    loss.backward()
    assert student.grad[~masks].abs().max() == 0
    assert student.grad[masks].abs().max() > 0
    changed = torch.where(masks[..., None], student.detach(), student.detach() + 100.0)
    torch.testing.assert_close(iBOTPatchLoss()(changed, teacher, masks), loss.detach())


def test_ibot_forward_masked_equals_forward() -> None:
    student, teacher, masks = _ibot_inputs()
    loss_fn = iBOTPatchLoss()
    expected = loss_fn(student, teacher, masks)
    torch.testing.assert_close(loss_fn.forward_masked(student[masks], teacher[masks], masks), expected)
    # With padding rows: only the first n_masked_patches count, and padding gets no gradient.
    M = int(masks.sum())
    s_padded = torch.cat([student[masks], torch.randn(3, student.shape[-1])]).requires_grad_(True)
    t_padded = torch.cat([teacher[masks], torch.softmax(torch.randn(3, teacher.shape[-1]), -1)])
    weight = (1.0 / masks.sum(-1).clamp(min=1))[:, None].expand_as(masks)[masks]
    loss = loss_fn.forward_masked(s_padded, t_padded, masks, n_masked_patches=M, masks_weight=weight)
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert s_padded.grad[M:].abs().max() == 0


# ------------------------------------------------------------------------------------------------ KoLeo
def test_koleo_on_known_points() -> None:
    # Unit circle at 0°, 60°, 180°, 270° (scaled, to exercise the normalisation): nearest-neighbour distances
    # 1 (0° <-> 60°), 1, √2 (180° <-> 270°), √2, so L = −(1/4)·(2·log 1 + 2·log √2) = −log(2) / 4.
    angles = torch.tensor([0.0, 60.0, 180.0, 270.0]).deg2rad()
    x = torch.stack([angles.cos(), angles.sin()], dim=1) * torch.tensor([[1.0], [3.0], [0.5], [7.0]])
    torch.testing.assert_close(KoLeoLoss()(x), torch.tensor(-math.log(2) / 4), atol=1e-6, rtol=0)


def test_koleo_duplicates_give_delta_sqrt_d() -> None:
    D, delta = 3, 1e-8
    x = torch.tensor([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [-1.0, 0.5, 0.0]], dtype=torch.float64)
    x_hat = F.normalize(x, dim=-1)
    d_third = (x_hat[2] - x_hat[0] + delta).norm()  # both duplicates are equally near the third point
    expected = -(2 * math.log(delta * math.sqrt(D) + 1e-8) + math.log(d_third + 1e-8)) / 3
    torch.testing.assert_close(KoLeoLoss()(x).double(), torch.tensor(expected, dtype=torch.float64))


def test_koleo_matches_brute_force_and_has_gradient() -> None:
    x = torch.randn(10, 8, generator=torch.Generator().manual_seed(5), requires_grad=True)
    x_hat = F.normalize(x.detach(), dim=-1)
    expected = 0.0
    for i in range(10):
        cosines = [(x_hat[i] @ x_hat[j]).item() if j != i else -2.0 for j in range(10)]
        j = max(range(10), key=cosines.__getitem__)
        expected -= math.log(torch.nn.PairwiseDistance(p=2, eps=1e-8)(x_hat[i], x_hat[j]).item() + 1e-8) / 10
    loss = KoLeoLoss()(x)
    torch.testing.assert_close(loss.item(), expected, rtol=1e-5, atol=1e-6)
    loss.backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


# ------------------------------------------------------------------------------------------------- Gram
def brute_force_gram_loss(
    s: torch.Tensor, t: torch.Tensor, remove_neg: bool, only_teacher: bool, valid: torch.Tensor | None = None
) -> float:
    """s, t [B, N, D] (one Gram matrix per image) with optional valid [B, N]."""
    s, t = F.normalize(s.double(), dim=-1), F.normalize(t.double(), dim=-1)
    total, n_entries = 0.0, 0
    for b in range(s.shape[0]):
        for i in range(s.shape[1]):
            for j in range(s.shape[1]):
                if valid is not None and not (valid[b, i] and valid[b, j]):
                    continue
                gs, gt = (s[b, i] @ s[b, j]).item(), (t[b, i] @ t[b, j]).item()
                if remove_neg:
                    gs = max(gs, 0.0)
                if remove_neg or only_teacher:
                    gt = max(gt, 0.0)
                total += (gs - gt) ** 2
                n_entries += 1
    return total / n_entries


@pytest.mark.parametrize(("remove_neg", "only_teacher"), [(False, False), (True, False), (False, True)])
def test_gram_loss_matches_brute_force(remove_neg: bool, only_teacher: bool) -> None:
    g = torch.Generator().manual_seed(6)
    s, t = torch.randn(2, 5, 4, generator=g), torch.randn(2, 5, 4, generator=g)
    loss_fn = GramLoss(remove_neg=remove_neg, remove_only_teacher_neg=only_teacher)
    if not only_teacher:  # with only the teacher clamped, the student's negative entries still count
        assert loss_fn(s, s.clone()).item() == pytest.approx(0.0, abs=1e-12)
    assert loss_fn(s, t).item() == pytest.approx(brute_force_gram_loss(s, t, remove_neg, only_teacher))
    # Batch level: one Gram matrix over all B·N tokens, i.e. a single "image" of B·N tokens.
    expected = brute_force_gram_loss(s.flatten(0, 1)[None], t.flatten(0, 1)[None], remove_neg, only_teacher)
    assert loss_fn(s, t, img_level=False).item() == pytest.approx(expected)
    assert loss_fn(s.flatten(0, 1), t.flatten(0, 1), img_level=False).item() == pytest.approx(expected)


def test_gram_loss_token_mask() -> None:
    g = torch.Generator().manual_seed(7)
    s, t = torch.randn(3, 6, 4, generator=g), torch.randn(3, 6, 4, generator=g)
    valid = torch.rand(3, 6, generator=g) < 0.6
    valid[:, 0] = True
    loss_fn = GramLoss()
    assert loss_fn(s, t, token_mask=valid).item() == pytest.approx(brute_force_gram_loss(s, t, False, False, valid))
    torch.testing.assert_close(loss_fn(s, t, token_mask=torch.ones(3, 6, dtype=torch.bool)), loss_fn(s, t))
    # Padding tokens change neither the value nor receive a gradient.
    s_noisy = torch.where(valid[..., None], s, torch.randn(3, 6, 4)).requires_grad_(True)
    loss = loss_fn(s_noisy, t, token_mask=valid)
    torch.testing.assert_close(loss, loss_fn(s, t, token_mask=valid))
    loss.backward()
    assert s_noisy.grad[~valid].abs().max() == 0
    # Batch level: the real tokens only.
    expected = loss_fn(s[valid], t[valid], img_level=False)
    torch.testing.assert_close(loss_fn(s, t, img_level=False, token_mask=valid), expected)


def test_gram_loss_flags_are_exclusive() -> None:
    with pytest.raises(ValueError):
        GramLoss(remove_neg=True, remove_only_teacher_neg=True)


# ------------------------------------------------------------------------------------------------- Head
@pytest.mark.parametrize("nlayers", [1, 3])
def test_dino_head_plain_prototypes_as_dinov3(nlayers: int) -> None:
    head = DINOHead(16, 32, hidden_dim=24, bottleneck_dim=8, nlayers=nlayers)
    head.init_weights()
    assert isinstance(head.last_layer, nn.Linear) and head.last_layer.bias is None
    assert float(head.last_layer.weight.std()) == pytest.approx(0.02, rel=0.3)
    x = torch.randn(2, 3, 16)
    out = head(x)
    assert out.shape == (2, 3, 32)
    bottleneck = F.normalize(head.mlp(x), dim=-1)
    torch.testing.assert_close(out, bottleneck @ head.last_layer.weight.T)
    out.square().sum().backward()
    assert all(p.grad is not None for p in head.parameters())  # prototypes train freely, lengths included


@pytest.mark.parametrize("nlayers", [1, 3])
def test_dino_head_normalized_prototypes_option(nlayers: int) -> None:
    head = DINOHead(16, 32, hidden_dim=24, bottleneck_dim=8, nlayers=nlayers, normalized_prototypes=True)
    head.init_weights()
    assert head(torch.randn(5, 16)).shape == (5, 32)
    out = head(torch.randn(2, 3, 16))
    assert out.shape == (2, 3, 32)
    torch.testing.assert_close(head.last_layer.weight.norm(dim=1), torch.ones(32))
    assert out.abs().max() <= 1.0 + 1e-5  # cosines between unit vectors
    magnitude = head.last_layer.parametrizations.weight.original0
    assert not magnitude.requires_grad
    out.square().sum().backward()
    assert magnitude.grad is None
    assert all(p.grad is not None for p in head.parameters() if p.requires_grad)


@pytest.mark.parametrize("normalized", [False, True])
def test_dino_head_meta_device_build_then_init(normalized: bool) -> None:
    with torch.device("meta"):
        head = DINOHead(16, 32, hidden_dim=24, bottleneck_dim=8, normalized_prototypes=normalized)
    head.to_empty(device="cpu")
    head.init_weights()
    if normalized:
        torch.testing.assert_close(head.last_layer.weight.norm(dim=1), torch.ones(32))
    assert torch.isfinite(head(torch.randn(4, 16))).all()
