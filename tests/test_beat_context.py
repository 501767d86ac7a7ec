"""Beats in context: crop assignment, features equal to the crop's own tokens, the trained crop length read from
a checkpoint, and the MIT-BIH probe with context features and RR features beside the embedding."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from datamodules.record import ECGRecord
from ecg_dino.checkpoint import CheckpointError, export_safetensors, load_backbone, trained_crop_seconds
from ecg_dino.commands import probe_mitbih
from ecg_dino.features.beats import BeatOptions
from ecg_dino.features.context import context_crops, embed_beats_in_context
from ecg_dino.features.records import forward_batch
from ecg_dino.leads import lead_indices
from ecg_dino.signal import resample

MITDB = Path(__file__).resolve().parents[2] / "shared" / "data" / "mitdb"
needs_mitdb = pytest.mark.skipif(not MITDB.is_dir(), reason=f"MIT-BIH Arrhythmia Database not present at {MITDB}")


def test_each_beat_goes_to_the_crop_it_is_most_central_in() -> None:
    patch, crop, stride, T = 50, 400, 200, 2050
    r = np.array([10, 180, 390, 1000, 1610, 2045])
    starts, which, r_patch = context_crops(r, T, crop, stride, patch)
    assert starts.tolist() == [0, 200, 400, 600, 800, 1000, 1200, 1400, 1600, 1650]  # the last ends at 2050
    centres = starts + crop / 2
    for beat, crop_index in zip(r, which, strict=True):
        assert abs(beat - centres[crop_index]) == np.abs(beat - centres).min()
    assert r_patch.min() >= 1 and r_patch.max() <= crop // patch - 2
    inside = (r >= starts[which] + patch) & (r < starts[which] + crop - patch)
    assert np.array_equal(r_patch[inside], (r[inside] - starts[which][inside]) // patch)


def test_context_features_are_the_crops_own_tokens(tiny_backbone_file: Path) -> None:
    """A beat's feature is its crop's class token beside the lead-averaged tokens of the R patch ± 1, exactly as a
    forward of that crop alone gives them, and the record's rate is resampled to the model's."""
    backbone = load_backbone(tiny_backbone_file)
    rng = np.random.default_rng(0)
    signal = rng.standard_normal((2, 360 * 20)).astype(np.float32)
    record = ECGRecord(signal, 360.0, ("MLII", "V1"), "r", "p", "test")
    r_samples = np.array([30, 1500, 3600, 7100])
    options = BeatOptions(features="context", crop_seconds=4.0, stride_fraction=0.5, batch_size=3)
    got = embed_beats_in_context(backbone, record, r_samples, options)
    assert got.shape == (4, 4 * backbone.embed_dim)

    rate, patch = backbone.sample_rate_hz, backbone.patch_samples
    signal = resample(record.signal, record.sample_rate_hz, rate)
    crop = round(4.0 * rate) // patch * patch
    r_model = np.round(r_samples * rate / 360.0).astype(np.int64)
    starts, which, r_patch = context_crops(r_model, signal.shape[1], crop, crop // 2, patch)
    ids = np.asarray(lead_indices(record.leads))
    for i in range(len(r_samples)):
        out = forward_batch(backbone, [signal[:, starts[which[i]] : starts[which[i]] + crop]], [ids])
        tokens = out["patches"][0].mean(0)[r_patch[i] - 1 : r_patch[i] + 2].reshape(-1)
        np.testing.assert_allclose(got[i], np.concatenate([out["cls"][0], tokens]), rtol=1e-5, atol=1e-5)


def test_context_needs_a_crop_length() -> None:
    with pytest.raises(ValueError, match="features must be one of"):
        BeatOptions(features="beat")
    with pytest.raises(ValueError, match="crop length"):
        embed_beats_in_context(None, None, np.zeros(1), BeatOptions(features="context"))  # type: ignore[arg-type]


def test_trained_crop_length_comes_from_the_checkpoint(tmp_path: Path, tiny_backbone_file: Path) -> None:
    """From the data module's state; for older checkpoints from the run's config.yaml; from an export's metadata;
    otherwise an error naming the file."""
    from datamodules.multicrop import MultiCrop
    from datamodules.pretrain_datamodule import PretrainDataModule

    state = PretrainDataModule(shards=[], multicrop=MultiCrop(global_crop_seconds=7.5)).state_dict()
    torch.save({"state_dict": {}, "PretrainDataModule": state}, tmp_path / "new.ckpt")
    assert trained_crop_seconds(tmp_path / "new.ckpt") == 7.5

    run = tmp_path / "run" / "version_0"
    (run / "checkpoints").mkdir(parents=True)
    torch.save({"state_dict": {}, "PretrainDataModule": {"epoch": 0}}, run / "checkpoints" / "old.ckpt")
    with pytest.raises(CheckpointError, match=r"old\.ckpt: holds no global crop length"):
        trained_crop_seconds(run / "checkpoints" / "old.ckpt")
    config = {"data": {"init_args": {"multicrop": {"init_args": {"global_crop_seconds": 8.0}}}}}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    assert trained_crop_seconds(run / "checkpoints" / "old.ckpt") == 8.0

    with pytest.raises(CheckpointError, match=r"tiny\.safetensors: export holds no pretraining crop length"):
        trained_crop_seconds(tiny_backbone_file)
    model = load_backbone(tiny_backbone_file)
    export_safetensors(
        model, {"size": "tiny", "depth": 1, "embed_dim": 32, "num_heads": 2}, tmp_path / "e.safetensors", 6.0
    )
    assert trained_crop_seconds(tmp_path / "e.safetensors") == 6.0


@needs_mitdb
def test_probe_with_context_features_and_rr(tmp_path: Path, tiny_backbone_file: Path) -> None:
    """``--features context --with-rr``: heads on the embedding, on RR alone and on both, each beside the paired
    difference the issue asks for (embedding + RR minus RR alone) and the context crop length in the settings."""
    out = tmp_path / "report"
    argv = ["--ckpt", str(tiny_backbone_file), "--mitdb", str(MITDB), "--out", str(out)]
    argv += ["--ds1", "208", "223", "--ds2", "100", "213", "--val-records", "1", "--n-boot", "20"]
    argv += ["--features", "context", "--crop-seconds", "4", "--with-rr", "--no-robustness"]
    argv += ["--cache-dir", str(tmp_path / "cache")]
    assert probe_mitbih.main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    fused = {"model+rr_fusion", "random_init+rr_fusion"}
    assert set(report["models"]) == {"model", "random_init", "rr_baseline", "model+rr", "random_init+rr", *fused}
    assert 0 <= report["models"]["model+rr_fusion"]["fusion_weight"] <= 1
    assert "vs_rr_baseline" in report["models"]["model+rr_fusion"]["test"]
    both = report["models"]["model+rr"]["test"]
    assert both["n_beats"] == report["models"]["rr_baseline"]["test"]["n_beats"]
    lo, hi = both["vs_rr_baseline"]["ci95"]
    assert lo <= both["vs_rr_baseline"]["difference"] <= hi
    assert "4 s crops" in report["settings"]["beat embedding"]
    assert "model+rr − rr_baseline" in (out / "report.md").read_text()
    assert set(both["vs_rr_baseline"]["per_class"]) == {"N", "S", "V", "F", "Q"}
    assert "Over N, S, V, F: " in (out / "report.md").read_text()
    assert "beats/s" in report["settings"]["beat embedding time"]["model"]
