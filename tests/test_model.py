"""Backbone: shapes and masks for any lead set, lead-permutation invariance, masked leads, bad input."""

import pytest
import torch

from ecg_dino.leads import LEADS, STANDARD_12, UnknownLeadError, canonical_lead, lead_indices
from ecg_dino.model.tokenizer import ECGInputError
from ecg_dino.model.vit import build_vit

RATE = 250.0


def small_vit(**kw):
    # LayerScale 1.0 so every block changes the tokens: invariances are then tested, not hidden by 1e-5.
    torch.manual_seed(0)
    model = build_vit("tiny", depth=2, embed_dim=64, num_heads=2, layerscale_init=1.0, **kw)
    model.init_weights()
    return model.eval()


def batch(names, seconds, B=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    signal = torch.randn(B, len(names), int(seconds * RATE), generator=g)
    return signal, torch.tensor(lead_indices(names)).expand(B, -1)


LEAD_SETS = {
    1: ["II"],
    2: ["MLII", "V1"],
    3: ["I", "II", "V2"],
    6: list(STANDARD_12[:6]),
    12: list(STANDARD_12),
}


@pytest.mark.parametrize("n_leads", sorted(LEAD_SETS))
@pytest.mark.parametrize("seconds", [0.2, 1.0, 2.5, 10.0])
def test_shapes_and_masks(n_leads, seconds):
    model = small_vit()
    signal, ids = batch(LEAD_SETS[n_leads], seconds)
    out = model.forward_features(signal, ids, sample_rate_hz=RATE)
    P = int(seconds * RATE) // model.patch_samples
    assert out["cls"].shape == (2, 64)
    assert out["registers"].shape == (2, 4, 64)
    assert out["patches"].shape == (2, n_leads, P, 64)
    assert out["patch_mask"].shape == (2, n_leads, P) and out["patch_mask"].all()
    assert all(torch.isfinite(v).all() for v in out.values() if v.is_floating_point())


def test_padded_time_and_leads_are_masked():
    model = small_vit()
    signal, ids = batch(STANDARD_12, 4.0)
    lead_mask = torch.ones(2, 12, dtype=torch.bool)
    lead_mask[1, 3:] = False
    valid = torch.tensor([1000, 500])
    out = model.forward_features(signal, ids, lead_mask=lead_mask, valid_samples=valid)
    mask = out["patch_mask"]
    assert mask[0].all()
    assert mask[1, :3, :10].all() and not mask[1, :3, 10:].any() and not mask[1, 3:].any()


def test_lead_permutation_leaves_class_embedding_unchanged():
    model = small_vit()
    signal, ids = batch(STANDARD_12, 3.0)
    perm = torch.randperm(12, generator=torch.Generator().manual_seed(1))
    a = model.forward_features(signal, ids)
    b = model.forward_features(signal[:, perm], ids[:, perm])
    torch.testing.assert_close(a["cls"], b["cls"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a["patches"][:, perm], b["patches"], atol=1e-5, rtol=1e-5)


def test_lead_embedding_matters():
    """Swapping the *names* (not the signals) must change the embedding: leads are told apart by name."""
    model = small_vit()
    signal, ids = batch(["I", "II"], 2.0)
    a = model.forward_features(signal, ids)["cls"]
    b = model.forward_features(signal, ids.flip(-1))["cls"]
    assert (a - b).abs().max() > 1e-3


def test_masked_lead_does_not_change_present_leads():
    model = small_vit()
    signal, ids = batch(STANDARD_12, 2.0)
    lead_mask = torch.ones(2, 12, dtype=torch.bool)
    lead_mask[:, [4, 9]] = False
    other = signal.clone()
    other[:, [4, 9]] = 1000.0 * torch.randn(2, 2, signal.shape[-1])
    a = model.forward_features(signal, ids, lead_mask=lead_mask)
    b = model.forward_features(other, ids, lead_mask=lead_mask)
    torch.testing.assert_close(a["cls"], b["cls"])
    keep = [i for i in range(12) if i not in (4, 9)]
    torch.testing.assert_close(a["patches"][:, keep], b["patches"][:, keep])
    # ...and equals simply leaving those leads out.
    c = model.forward_features(signal[:, keep], ids[:, keep])
    torch.testing.assert_close(a["cls"], c["cls"], atol=1e-5, rtol=1e-5)


def test_rows_of_different_lead_widths_encode_as_if_alone():
    """A batch mixing 1-, 3- and 12-lead rows is encoded in groups of equal width: each row's outputs equal
    encoding it alone, absent leads' patch tokens are zero, and gradients reach every group."""
    model = small_vit()
    signal, ids = batch(STANDARD_12, 2.0, B=4)
    lead_mask = torch.zeros(4, 12, dtype=torch.bool)
    for row, width in enumerate((1, 12, 3, 1)):
        lead_mask[row, :width] = True
    lead_mask[1, 5] = False  # a gap inside a row keeps the row's width
    out = model.forward_features(signal, ids, lead_mask=lead_mask)
    for row, width in enumerate((1, 12, 3, 1)):
        alone = model.forward_features(
            signal[row : row + 1, :width], ids[row : row + 1, :width], lead_mask=lead_mask[row : row + 1, :width]
        )
        torch.testing.assert_close(out["cls"][row], alone["cls"][0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(out["registers"][row], alone["registers"][0], atol=1e-5, rtol=1e-5)
        valid = alone["patch_mask"][0]
        torch.testing.assert_close(out["patches"][row, :width][valid], alone["patches"][0][valid], atol=1e-5, rtol=1e-5)
        assert torch.equal(out["patch_mask"][row, :width], valid) and not out["patch_mask"][row, width:].any()
        assert not out["patches"][row, width:].any()
    model.train()
    out = model.forward_features(signal, ids, lead_mask=lead_mask)
    (out["cls"].sum() + out["patches"].sum()).backward()
    assert model.tokenizer.proj.weight.grad.abs().sum() > 0 and model.cls_token.grad.abs().sum() > 0


def test_cpu_bf16_attention_matches_the_fused_kernel():
    """On CPU in bf16, attention runs as matmul + softmax (faster there); it computes what the fused kernel does,
    key-padding mask included, and is as close to fp64 as the fused bf16 kernel is (scores kept in fp32)."""
    from ecg_dino.model.vit import attention

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(3, 2, 17, 16, generator=g) for _ in range(3))
    mask = torch.ones(3, 1, 1, 17, dtype=torch.bool)
    mask[1, ..., 9:] = False
    for m in (None, mask):
        expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=m)
        got = attention(q.bfloat16(), k.bfloat16(), v.bfloat16(), m)
        assert got.dtype == torch.bfloat16
        torch.testing.assert_close(got.float(), expected, atol=3e-2, rtol=3e-2)
    # Peaked attention (large scores): the bf16 error matches the fused kernel's, not double it.
    q, k, v = 6 * q.double(), 6 * k.double(), v.double()
    exact = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    fused = torch.nn.functional.scaled_dot_product_attention(q.bfloat16(), k.bfloat16(), v.bfloat16()).double()
    ours = attention(q.bfloat16(), k.bfloat16(), v.bfloat16(), None).double()
    assert (ours - exact).norm() < 1.2 * (fused - exact).norm()


def test_cpu_bf16_attention_gradients_match_fp32():
    """The score GEMMs' backward (bf16 products, fp32 sums) gives the fp32 gradients up to bf16 rounding, and the
    matmul precision setting is restored afterwards."""
    from ecg_dino.model.vit import attention

    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(2, 3, 21, 16, generator=g, requires_grad=True) for _ in range(3))
    w = torch.randn(2, 3, 21, 16, generator=g)
    before = torch.backends.mkldnn.matmul.fp32_precision
    (torch.nn.functional.scaled_dot_product_attention(q, k, v) * w).sum().backward()
    expected = [t.grad.clone() for t in (q, k, v)]
    for t in (q, k, v):
        t.grad = None
    (attention(q, k, v.bfloat16(), None).float() * w).sum().backward()
    for got, want in zip((q.grad, k.grad, v.grad), expected, strict=True):
        torch.testing.assert_close(got, want, atol=5e-2, rtol=5e-2)
    assert torch.backends.mkldnn.matmul.fp32_precision == before


def test_rope_leaves_time_zero_tokens_unchanged():
    """The class and register tokens get time 0, where the rotation is exactly the identity."""
    from ecg_dino.model.rope import TimeRoPE, apply_rope

    x = torch.randn(2, 3, 4, 16)
    sin, cos = TimeRoPE(16)(torch.tensor([0.0, 0.0, 0.7, 3.1]))
    y = apply_rope(x, sin, cos)
    assert torch.equal(y[..., :2, :], x[..., :2, :]) and not torch.allclose(y[..., 2:, :], x[..., 2:, :])


def test_rope_rotates_the_pairs_of_rotate_half():
    """The rotation pairs dimension i with i + hd/2 (``rotate_half``), the convention every checkpoint was trained
    with: the fused form computes x * cos + rotate_half(x) * sin."""
    from ecg_dino.model.rope import TimeRoPE, apply_rope

    x = torch.randn(2, 3, 5, 16).bfloat16()
    sin, cos = TimeRoPE(16)(torch.tensor([0.0, 0.2, 0.7, 3.1, 9.0]))
    x1, x2 = x.float().chunk(2, dim=-1)
    expected = x.float() * torch.cat([cos, cos], -1) + torch.cat([-x2, x1], -1) * torch.cat([sin, sin], -1)
    torch.testing.assert_close(apply_rope(x, sin, cos), expected, atol=1e-6, rtol=1e-6)


def test_time_offset_geometry_is_shared():
    """RoPE over time: a crop and the same samples inside a longer crop see the same relative geometry, so
    attention between two patches depends only on their time difference."""
    from ecg_dino.model.rope import TimeRoPE, apply_rope

    rope = TimeRoPE(16)
    q, k = torch.randn(1, 1, 1, 16), torch.randn(1, 1, 1, 16)

    def score(tq, tk):
        sq, cq = rope(torch.tensor([tq]))
        sk, ck = rope(torch.tensor([tk]))
        return (apply_rope(q, sq, cq) * apply_rope(k, sk, ck)).sum()

    torch.testing.assert_close(score(0.3, 1.1), score(5.3, 6.1), atol=1e-4, rtol=1e-4)


def test_every_parameter_gets_a_gradient():
    model = small_vit(drop_path_rate=0.1).train()
    signal, ids = batch(["I", "II", "V1"], 2.0)
    ibot_mask = torch.zeros(2, 3, 10, dtype=torch.bool)
    ibot_mask[:, 1, 2:5] = True
    out = model.forward_features(signal, ids, ibot_mask=ibot_mask)
    (out["cls"].sum() + out["patches"].sum() + out["registers"].sum()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_eval_mode_is_deterministic():
    model = small_vit(drop_path_rate=0.5)
    signal, ids = batch(STANDARD_12, 2.0)
    torch.testing.assert_close(model(signal, ids), model(signal, ids), atol=0, rtol=0)


@pytest.mark.parametrize("size,dim", [("tiny", 192), ("small", 384), ("base", 768), ("large", 1024)])
def test_size_factories(size, dim):
    with torch.device("meta"):
        model = build_vit(size)
    assert model.embed_dim == dim


def test_lead_vocabulary_and_aliases():
    assert canonical_lead("AVR") == "aVR" and canonical_lead("avf") == "aVF"
    assert canonical_lead("ML2") == "MLII" and canonical_lead("DII") == "II"
    assert len(set(LEADS)) == len(LEADS) >= 16
    with pytest.raises(UnknownLeadError, match="'V7x'"):
        canonical_lead("V7x")


def test_bad_input_errors():
    model = small_vit()
    signal, ids = batch(["I", "II"], 1.0)
    with pytest.raises(ECGInputError, match="shorter than one patch"):
        model.forward_features(signal[..., :30], ids)
    bad = signal.clone()
    bad[0, 1, 7] = float("nan")
    with pytest.raises(ECGInputError, match="NaN or Inf"):
        model.forward_features(bad, ids)
    bad[0, 1, 7] = float("inf")
    with pytest.raises(ECGInputError, match="NaN or Inf"):
        model.forward_features(bad, ids)
    with pytest.raises(ECGInputError, match=r"500\.0 Hz but the model expects 250\.0 Hz"):
        model.forward_features(signal, ids, sample_rate_hz=500)
    with pytest.raises(ValueError, match="not a whole number of samples"):
        build_vit("tiny", patch_seconds=0.123)
