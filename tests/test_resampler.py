"""One resampler: the samples ``prepare`` stores for training are the samples embedding feeds the model."""

from __future__ import annotations

import numpy as np
import pytest
from fake_layouts import synthetic_ecg

from datamodules.convert import convert_record
from datamodules.record import ECGRecord
from ecg_dino.features.records import model_input
from ecg_dino.signal import resample, resample_ratio


@pytest.mark.parametrize(("rate_in", "rate_out"), [(360.0, 250.0), (500.0, 250.0), (300.0, 250.0), (250.0, 500.0)])
def test_prepare_and_embedding_see_the_same_samples(rate_in: float, rate_out: float) -> None:
    """A record with a 1 mV baseline offset, resampled by prepare (training shards) and by the embedding path."""
    rng = np.random.default_rng(0)
    signal = synthetic_ecg(rng, 2, int(10 * rate_in), rate_in) + 1.0
    record = ECGRecord(signal, rate_in, ("MLII", "V1"), "r", "p", "test")
    (stored,), _ = convert_record(record, rate_out, None, "r.hea")
    embedded, _ = model_input(record, rate_out)
    np.testing.assert_array_equal(stored.signal, embedded)


def test_a_baseline_offset_makes_no_edge_transient() -> None:
    """Zero padding turned a 1 mV offset resampled 360 -> 250 Hz into 0.15 mV spikes at both ends."""
    flat = np.ones((1, 3600), dtype=np.float32)
    out = resample(flat, 360.0, 250.0)
    assert out.shape == (1, 2500) and out.dtype == np.float32
    np.testing.assert_allclose(out, 1.0, atol=1e-3)  # the filter's DC ripple is ~1e-4
    assert resample_ratio(360, 250) == (25, 36) and resample(flat, 360.0, 360.0) is flat
