"""Multi-crop views and their collation into the pretraining batch of docs/INTERFACES.md."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from datamodules.augment import AmplitudeScale, PretrainTransform
from datamodules.multicrop import MultiCrop, collate_multicrop
from datamodules.record import ECGRecord
from ecg_dino.leads import STANDARD_12, lead_indices

RATE = 250.0


def _coded_signal(n_leads: int, n_samples: int) -> np.ndarray:
    """signal[l, t] = 10000 * l + t, so every crop value tells which lead and sample it came from."""
    return (10000 * np.arange(n_leads)[:, None] + np.arange(n_samples)[None, :]).astype(np.float32)


def _sample(n_leads: int = 12, n_samples: int = 2500, seed: int = 0, **kwargs):
    crop = MultiCrop(**{"global_crop_seconds": 6.0, "local_crop_seconds": 2.0, "n_local_crops": 4, **kwargs})
    ids = np.array(lead_indices(STANDARD_12[:n_leads]))
    return crop(_coded_signal(n_leads, n_samples), ids, RATE, np.random.default_rng(seed)), ids


def test_crop_shapes_masks_and_content():
    sample, ids = _sample(global_lead_drop=0.5, global_min_leads=3, local_min_leads=2, local_max_leads=4)
    g, loc = sample["global"], sample["local"]
    assert g["signal"].shape == (2, 12, 1500) and loc["signal"].shape == (4, 4, 500)
    assert g["signal"].dtype == np.float32 and g["lead_ids"].dtype == np.int64 and g["lead_mask"].dtype == bool
    assert (g["lead_mask"].sum(1) >= 3).all()
    assert loc["lead_mask"].sum(1).min() >= 2 and loc["lead_mask"].sum(1).max() <= 4
    for crops in (g, loc):
        mask = crops["lead_mask"]
        assert (np.diff(mask.astype(int), axis=1) <= 0).all(), "present leads come first"
        assert (crops["signal"][~mask] == 0).all() and (crops["lead_ids"][~mask] == 0).all()
        T = crops["signal"].shape[2]
        assert (crops["valid_samples"] == T).all()
        for c, j in zip(*np.nonzero(mask)):
            x = crops["signal"][c, j]
            lead, start = divmod(int(x[0]), 10000)
            assert crops["lead_ids"][c, j] == ids[lead]
            np.testing.assert_array_equal(x, 10000 * lead + start + np.arange(T))
        present = [set(crops["lead_ids"][c][mask[c]]) for c in range(len(mask))]
        assert all(len(p) == m for p, m in zip(present, mask.sum(1))), "a lead appears once per crop"


def test_short_record_is_zero_padded_and_single_lead_survives_drop():
    sample, _ = _sample(n_leads=1, n_samples=1000, global_lead_drop=0.99)
    g, loc = sample["global"], sample["local"]
    assert (g["valid_samples"] == 1000).all() and (loc["valid_samples"] == 500).all()
    assert g["lead_mask"].all(), "the only lead is kept"
    assert (g["signal"][:, :, 1000:] == 0).all()
    np.testing.assert_array_equal(g["signal"][0, 0, :1000], np.arange(1000))


def test_crops_are_reproducible_from_the_seed():
    a, _ = _sample(seed=3)
    b, _ = _sample(seed=3)
    c, _ = _sample(seed=4)
    np.testing.assert_array_equal(a["local"]["signal"], b["local"]["signal"])
    assert not np.array_equal(a["local"]["signal"], c["local"]["signal"])


def test_collate_is_crop_major_and_pads_leads():
    samples = [_sample(n_leads=n, seed=i)[0] for i, n in enumerate((12, 1, 2))]
    batch = collate_multicrop(samples)
    assert set(batch) == {"global", "local", "sample_rate_hz", "n_global_crops", "n_local_crops"}
    assert batch["sample_rate_hz"] == RATE and (batch["n_global_crops"], batch["n_local_crops"]) == (2, 4)
    B = len(samples)
    for group, C in (("global", 2), ("local", 4)):
        crops = batch[group]
        assert set(crops) == {"signal", "lead_ids", "lead_mask", "valid_samples"}
        assert crops["signal"].dtype == torch.float32 and crops["lead_ids"].dtype == torch.int64
        assert crops["lead_mask"].dtype == torch.bool and crops["valid_samples"].dtype == torch.int64
        L = max(s[group]["signal"].shape[1] for s in samples)
        assert crops["signal"].shape[:2] == (C * B, L) and crops["lead_mask"].shape == (C * B, L)
        for c in range(C):
            for b, s in enumerate(samples):
                row, n = c * B + b, s[group]["signal"].shape[1]
                np.testing.assert_array_equal(crops["signal"][row, :n].numpy(), s[group]["signal"][c])
                np.testing.assert_array_equal(crops["lead_ids"][row, :n].numpy(), s[group]["lead_ids"][c])
                assert not crops["lead_mask"][row, n:].any() and (crops["signal"][row, n:] == 0).all()
        assert (crops["lead_ids"][~crops["lead_mask"]] == 0).all()
        assert torch.isfinite(crops["signal"]).all()


def test_collate_rejects_mixed_sample_rates():
    a, b = _sample()[0], _sample()[0]
    b["sample_rate_hz"] = 500.0
    with pytest.raises(ValueError, match="sample rates"):
        collate_multicrop([a, b])


def test_transform_windows_long_records_and_scales_amplitude():
    record = ECGRecord(np.ones((2, 250 * 60), np.float32), RATE, ("MLII", "V1"), "r", "p", "mitdb")
    transform = PretrainTransform(MultiCrop(), RATE, window_seconds=10.0, amplitude=AmplitudeScale((2.0, 2.0), 0.0))
    sample = transform(record, np.random.default_rng(0))
    g = sample["global"]
    np.testing.assert_allclose(g["signal"][g["lead_mask"]], 2.0, rtol=1e-6)
    with pytest.raises(ValueError, match=r"500\.0 Hz"):
        transform(ECGRecord(record.signal, 500.0, record.leads, "r500", "p", "x"), np.random.default_rng(0))


def test_global_max_leads_caps_the_crop_width():
    rng = np.random.default_rng(0)
    signal = rng.standard_normal((12, 2500)).astype(np.float32)
    lead_ids = np.arange(12)
    crop = MultiCrop(global_crop_seconds=2.0, global_lead_drop=0.25, global_max_leads=4)
    for _ in range(20):
        g = crop(signal, lead_ids, 250.0, rng)["global"]
        assert g["signal"].shape[1] == 4 and 1 <= g["lead_mask"].sum(axis=1).min() <= 4
        for ids, mask in zip(g["lead_ids"], g["lead_mask"]):  # each global crop
            assert len(set(ids[mask].tolist())) == int(mask.sum())  # no lead twice
    two_lead = crop(signal[:2], lead_ids[:2], 250.0, rng)["global"]
    assert two_lead["signal"].shape[1] == 2


def test_aligned_global_crops_share_their_beats_and_locals_lie_inside():
    crop = MultiCrop(global_crop_seconds=4.0, local_crop_seconds=1.6, n_local_crops=6, global_shift_seconds=0.2)
    ids = np.array(lead_indices(STANDARD_12[:2]))
    for seed in range(20):
        sample = crop(_coded_signal(2, 2500), ids, RATE, np.random.default_rng(seed))
        g_starts = sample["global"]["signal"][:, 0, 0] % 10000  # lead 0 holds the sample index itself
        assert g_starts.max() - g_starts.min() <= 2 * 0.2 * RATE
        l_starts = sample["local"]["signal"][:, 0, 0] % 10000
        assert (l_starts >= g_starts.min()).all() and (l_starts + 1.6 * RATE <= g_starts.max() + 4.0 * RATE).all()
    free = MultiCrop(global_crop_seconds=4.0, local_crop_seconds=1.6)
    spread = [
        np.ptp(free(_coded_signal(1, 2500), ids[:1], RATE, np.random.default_rng(s))["global"]["signal"][:, 0, 0])
        for s in range(20)
    ]
    assert max(spread) > 2 * 0.2 * RATE, "without the option the global crops move independently"


def test_aligned_crops_on_a_record_shorter_than_a_crop_start_at_zero():
    sample, _ = _sample(n_leads=1, n_samples=400, global_shift_seconds=0.5)
    assert (sample["global"]["signal"][:, 0, 0] == 0).all() and (sample["local"]["signal"][:, 0, 0] == 0).all()
    with pytest.raises(ValueError, match="global_shift_seconds"):
        MultiCrop(global_shift_seconds=-1.0)


def test_clean_teacher_view_keeps_the_global_crops_before_noise(tmp_path):
    from datamodules.noise import NoiseBank, NoiseInjector

    record = ECGRecord(_coded_signal(2, 250 * 20), RATE, ("MLII", "V1"), "r", "p", "mitdb")
    noise = NoiseInjector(NoiseBank(tmp_path / "none", RATE, "train"), p=1.0, snr_db_range=(0.0, 0.0))
    transform = PretrainTransform(
        MultiCrop(n_local_crops=2), RATE, 10.0, noise, AmplitudeScale((2.0, 2.0), 0.0), clean_teacher_view=True
    )
    sample = transform(record, np.random.default_rng(0))
    g = sample["global"]
    clean = g["teacher_signal"][g["lead_mask"]] / 2.0  # rows of 10000 * lead + sample, with the same gain
    np.testing.assert_allclose(np.diff(clean, axis=1), 1.0, atol=1e-3)
    assert not np.allclose(np.diff(g["signal"][g["lead_mask"]] / 2.0, axis=1), 1.0, atol=1e-3), "student's is noisy"
    assert "teacher_signal" not in sample["local"]
    batch = collate_multicrop([sample, transform(record, np.random.default_rng(1))])
    crop1_of_sample0 = batch["global"]["teacher_signal"][2]  # crop-major rows: c * B + b
    torch.testing.assert_close(crop1_of_sample0, torch.from_numpy(g["teacher_signal"][1]))
    plain = PretrainTransform(MultiCrop(n_local_crops=2), RATE, 10.0, noise)(record, np.random.default_rng(0))
    assert "teacher_signal" not in plain["global"], "off by default"
