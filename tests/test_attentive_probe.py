"""The attentive probe: masking, order invariance, determinism, and a task only attention over time can solve."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ecg_dino.probes.attentive import AttentiveHead, AttentiveProbe, RecordTokens, fit_attentive, time_code
from ecg_dino.probes.linear import fit_probe
from ecg_dino.probes.metrics import per_label_auroc

DIM = 16


def ragged_records(rng: np.random.Generator) -> RecordTokens:
    """Three records: 2 leads × 5 patches, 1 lead × 3 patches, 3 leads × 4 patches with the last patch uncovered."""
    shapes = [(2, 5), (1, 3), (3, 4)]
    tokens = [rng.normal(size=(*s, DIM)).astype(np.float16) for s in shapes]
    valid = [np.ones(s, bool) for s in shapes]
    valid[2][:, -1] = False
    return RecordTokens(tokens, valid, patch_seconds=0.2)


def test_padding_and_absent_leads_get_zero_attention() -> None:
    records = ragged_records(np.random.default_rng(0))
    head = AttentiveHead(DIM, num_outputs=3, num_queries=2, num_heads=2).eval()
    tokens, times, mask = records.batch([0, 1, 2])
    assert mask.sum(1).tolist() == [10, 3, 9]  # record 1 has one lead: the other rows are absent leads + padding
    with torch.no_grad():
        logits, weights = head(tokens, times, mask)
        assert weights.shape == (3, 2, tokens.shape[1])
        assert (weights[~mask[:, None, :].expand_as(weights)] == 0).all()
        torch.testing.assert_close(weights.sum(-1), torch.ones(3, 2))
        garbage = tokens.clone()
        garbage[~mask] = 1e4  # whatever sits in padded or uncovered slots must not matter
        torch.testing.assert_close(head(garbage, times, mask)[0], logits)


def test_same_function_as_multihead_attention_with_learnable_queries() -> None:
    """The reordered computation equals nn.MultiheadAttention on z = LayerNorm(token) + W_t·code(time)."""
    torch.manual_seed(0)
    head = AttentiveHead(DIM, num_outputs=3, num_queries=2, num_heads=4).eval()
    with torch.no_grad():
        for p in (head.norm.weight, head.norm.bias, head.time.bias, head.k_proj.bias, head.v_proj.bias):
            p.normal_()  # not their 1/0 initial values, so the reordering of the affine parts is tested
    records = ragged_records(np.random.default_rng(4))
    tokens, times, mask = records.batch([0, 1, 2])
    mha = torch.nn.MultiheadAttention(DIM, 4, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.cat([head.q_proj.weight, head.k_proj.weight, head.v_proj.weight]))
        mha.in_proj_bias.copy_(torch.cat([head.q_proj.bias, head.k_proj.bias, head.v_proj.bias]))
        mha.out_proj.load_state_dict(head.out_proj.state_dict())
        z = head.norm(tokens) + head.time(time_code(times))
        out, ref_weights = mha(head.queries.expand(3, -1, -1), z, z, key_padding_mask=~mask)
        logits, weights = head(tokens, times, mask)
    torch.testing.assert_close(logits, head.classifier(out.flatten(1)), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(weights, ref_weights, atol=1e-6, rtol=1e-5)


def test_invariant_to_the_order_of_crops() -> None:
    """A record given as two crops' tokens (with their times) scores the same whichever crop comes first."""
    rng = np.random.default_rng(1)
    head = AttentiveHead(DIM, num_outputs=4, num_queries=3, num_heads=4).eval()
    crops = [torch.from_numpy(rng.normal(size=(6, DIM)).astype(np.float32)) for _ in range(2)]
    times = [torch.arange(6) * 0.2 + 0.1, torch.arange(6) * 0.2 + 4.1]
    with torch.no_grad():
        a, _ = head(torch.cat(crops)[None], torch.cat(times)[None], torch.ones(1, 12, dtype=torch.bool))
        b, _ = head(torch.cat(crops[::-1])[None], torch.cat(times[::-1])[None], torch.ones(1, 12, dtype=torch.bool))
    torch.testing.assert_close(a, b)


def timing_task(n: int, rng: np.random.Generator) -> tuple[RecordTokens, np.ndarray]:
    """Two events, A and B, at random patches of a 1-lead record; the label is whether B comes after A. Every
    record holds one A and one B, so the mean token (and any pooled statistic) is the same for both labels."""
    patches = 24
    tokens = rng.normal(size=(n, 1, patches, DIM)).astype(np.float32)
    a, b = (rng.permuted(np.tile(np.arange(patches), (n, 1)), axis=1)[:, :2]).T
    tokens[np.arange(n), 0, a, 0] += 4.0
    tokens[np.arange(n), 0, b, 1] += 4.0
    records = RecordTokens(list(tokens.astype(np.float16)), [np.ones((1, patches), bool)] * n, patch_seconds=0.25)
    return records, (b > a).astype(np.int64)


def test_attentive_head_solves_timing_the_linear_head_cannot() -> None:
    rng = np.random.default_rng(2)
    (train, y_train), (val, y_val), (test, y_test) = (timing_task(n, rng) for n in (600, 200, 400))

    def mean_token(records: RecordTokens) -> np.ndarray:
        return np.stack([t.astype(np.float32).mean((0, 1)) for t in records.tokens])

    linear, _ = fit_probe(mean_token(train), y_train, mean_token(val), y_val, False, class_weights=np.ones(2))
    linear_auroc = per_label_auroc(np.eye(2)[y_test], linear.scores(mean_token(test)))[1]
    probe = fit_attentive(
        train, y_train, val, y_val, False, np.ones(2), weight_decays=(0.01,), max_epochs=30, batch_size=16, lr=2e-3
    )
    attentive_auroc = per_label_auroc(np.eye(2)[y_test], probe.scores(test))[1]
    assert linear_auroc < 0.6, linear_auroc
    assert attentive_auroc > 0.8, (attentive_auroc, probe.epochs)  # 0.89 measured


def test_deterministic_under_a_seed_and_multilabel() -> None:
    rng = np.random.default_rng(3)
    records = RecordTokens(
        [rng.normal(size=(2, 6, DIM)).astype(np.float16) for _ in range(40)], [np.ones((2, 6), bool)] * 40, 0.2
    )
    y = (rng.random((40, 3)) < 0.5).astype(np.int64)
    y[:2] = [[1, 1, 1], [0, 0, 0]]

    def fit(seed: int) -> AttentiveProbe:
        train, val = records.take(range(30)), records.take(range(30, 40))
        return fit_attentive(train, y[:30], val, y[30:], True, seed=seed, max_epochs=3)

    a, b, c = fit(0), fit(0), fit(1)
    assert set(a.val_macro_auroc) == {0.01, 0.1, 1.0}
    np.testing.assert_array_equal(a.scores(records), b.scores(records))
    assert not np.array_equal(a.scores(records), c.scores(records))
    assert a.scores(records).shape == (40, 3)


def test_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="num_queries"):
        AttentiveHead(DIM, 2, num_queries=0)
    with pytest.raises(ValueError, match="divisible"):
        AttentiveHead(DIM, 2, num_heads=3)
