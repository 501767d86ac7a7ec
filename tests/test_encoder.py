"""The Python API: ``ECGEncoder.embed`` gives the numbers of ``ecg-dino embed`` on the same records, and
``save_pretrained`` -> ``from_pretrained`` round-trips exactly."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from fake_layouts import STANDARD_12, synthetic_ecg

import ecg_dino
from datamodules.record import BadRecordError
from ecg_dino.checkpoint import CheckpointError, export_safetensors, load_backbone
from ecg_dino.commands import embed
from ecg_dino.features.cache import read_table
from ecg_dino.features.encoder import ECGEncoder
from ecg_dino.leads import LEADS
from ecg_dino.model.vit import build_vit

TINY = {"size": "tiny", "depth": 1, "embed_dim": 32, "num_heads": 2}
CROP_SECONDS = 4.0
# (name, leads, rate, seconds): 12-lead 500 Hz, 2-lead 360 Hz and 1-lead 300 Hz, each longer than one crop.
INPUTS = [
    ("ecg12", tuple(STANDARD_12), 500, 10.0),
    ("holter", ("MLII", "V1"), 360, 9.5),
    ("handheld", ("ECG",), 300, 7.0),
]


def tiny_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_vit(**TINY)
    model.init_weights()
    return model.eval()


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    """A tiny encoder exported with its pretraining crop length, then saved in the Hugging Face layout."""
    export_safetensors(tiny_model(), TINY, tmp_path / "tiny.safetensors", crop_seconds=CROP_SECONDS)
    return ECGEncoder.from_pretrained(tmp_path / "tiny.safetensors").save_pretrained(tmp_path / "encoder")


def signals() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {name: synthetic_ecg(rng, len(leads), int(s * fs), fs).astype(np.float32) for name, leads, fs, s in INPUTS}


@pytest.mark.parametrize(("name", "leads", "rate", "seconds"), INPUTS)
def test_encoder_embed_equals_the_embed_command(
    tmp_path: Path, saved: Path, name: str, leads: tuple[str, ...], rate: int, seconds: float
) -> None:
    signal = signals()[name]
    data = tmp_path / "data"
    data.mkdir()
    np.save(data / f"{name}.npy", signal)
    (data / f"{name}.json").write_text(json.dumps({"leads": list(leads), "sample_rate_hz": rate}))
    out = tmp_path / "cli.parquet"
    argv = ["--ckpt", str(saved), "--data", str(data), "--out", str(out), "--cache-dir", "", "--patches"]
    assert embed.main([*argv, "--crop-seconds", str(CROP_SECONDS)]) == 0
    cli = read_table(out)

    encoder = ECGEncoder.from_pretrained(saved)
    got = encoder.embed(signal, leads=leads, sample_rate_hz=rate)
    np.testing.assert_allclose(got.cls, cli["cls"][0], atol=1e-6, rtol=0)
    np.testing.assert_allclose(got.mean, cli["mean"][0], atol=1e-6, rtol=0)
    np.testing.assert_allclose(got.patches, cli["patches"][0], atol=1e-6, rtol=0)
    np.testing.assert_array_equal(got.patch_valid, cli["patch_valid"][0])
    rate_hz, patch = encoder.backbone.sample_rate_hz, encoder.backbone.patch_samples
    P = int(seconds * rate_hz) // patch
    assert got.patches.shape == (len(leads), P, 32) and got.leads == leads and got.patch_valid.all()
    np.testing.assert_allclose(got.patch_seconds, np.arange(P) * patch / rate_hz)


def test_save_pretrained_round_trips_exactly(tmp_path: Path, saved: Path) -> None:
    first = ECGEncoder.from_pretrained(saved)
    again = ECGEncoder.from_pretrained(first.save_pretrained(tmp_path / "again"))
    a, b = first.backbone.state_dict(), again.backbone.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (again.config, again.crop_seconds) == (TINY, CROP_SECONDS)
    signal = signals()["holter"]
    x, y = first.embed(signal, ("MLII", "V1"), 360), again.embed(signal, ("MLII", "V1"), 360)
    np.testing.assert_array_equal(x.cls, y.cls)
    np.testing.assert_array_equal(x.patches, y.patches)
    config = json.loads((saved / "config.json").read_text())
    assert config["backbone"] == TINY and config["leads"] == list(LEADS)
    backbone = first.backbone
    assert (config["sample_rate_hz"], config["patch_samples"]) == (backbone.sample_rate_hz, backbone.patch_samples)
    assert config["global_crop_seconds"] == CROP_SECONDS
    assert load_backbone(saved / "model.safetensors").embed_dim == 32  # the weights file stands alone too


def test_from_pretrained_reads_every_weights_file(tmp_path: Path) -> None:
    """A Lightning checkpoint (teacher weights, crop from the data-module state); an export without a crop
    length needs it passed; a saved folder whose config disagrees is refused."""
    state = {}
    for seed, branch in enumerate(("teacher", "student")):
        state |= {f"{branch}.backbone.{k}": v for k, v in tiny_model(seed).state_dict().items()}
    ckpt = tmp_path / "last.ckpt"
    data_state = {"global_crop_seconds": 8.0}
    torch.save({"state_dict": state, "hyper_parameters": {"backbone": TINY}, "PretrainDataModule": data_state}, ckpt)
    encoder = ECGEncoder.from_pretrained(ckpt)
    assert encoder.crop_seconds == 8.0
    assert torch.equal(encoder.backbone.cls_token, tiny_model(0).cls_token)

    export_safetensors(tiny_model(), TINY, tmp_path / "bare.safetensors")
    with pytest.raises(CheckpointError, match=r"bare\.safetensors: .*pass the crop length"):
        ECGEncoder.from_pretrained(tmp_path / "bare.safetensors")
    assert ECGEncoder.from_pretrained(tmp_path / "bare.safetensors", crop_seconds=6.0).crop_seconds == 6.0

    folder = encoder.save_pretrained(tmp_path / "enc")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "leads": config["leads"][:12]}))
    with pytest.raises(CheckpointError, match=r"config\.json: lead vocabulary"):
        ECGEncoder.from_pretrained(folder)


def test_batches_units_and_bad_input(saved: Path) -> None:
    encoder = ECGEncoder.from_pretrained(saved)
    rng = np.random.default_rng(1)
    batch = np.stack([synthetic_ecg(rng, 2, 3000, 360) for _ in range(3)])  # [B, L, T]
    many = encoder.embed(batch, ("mlii", "v1"), 360)
    assert len(many) == 3 and many[0].leads == ("MLII", "V1")
    for i, out in enumerate(many):
        one = encoder.embed(batch[i], ("MLII", "V1"), 360)
        np.testing.assert_allclose(out.cls, one.cls, atol=1e-5)
    in_uv = encoder.embed(1000 * batch[0], ("MLII", "V1"), 360, units="uV")
    np.testing.assert_allclose(in_uv.cls, many[0].cls, atol=1e-5)
    ragged = encoder.embed([batch[0], batch[1][:, :2000]], ("MLII", "V1"), 360)
    samples = math.ceil(2000 * encoder.backbone.sample_rate_hz / 360)  # at the model's rate
    assert ragged[1].patches.shape[1] == samples // encoder.backbone.patch_samples
    with pytest.raises(BadRecordError, match=r"input 0: unknown lead name 'ch2'"):
        encoder.embed(batch[0], ("MLII", "ch2"), 360)
    bad = batch[1].copy()
    bad[0, 5] = np.nan
    with pytest.raises(BadRecordError, match=r"input 1: NaN or Inf samples"):
        encoder.embed([batch[0], bad], ("MLII", "V1"), 360)


def test_the_package_root_imports_the_encoder_on_first_use() -> None:
    code = (
        "import sys, ecg_dino; assert 'ecg_dino.features.encoder' not in sys.modules and 'torch' not in sys.modules;"
        "from ecg_dino.features.encoder import ECGEncoder; assert ecg_dino.ECGEncoder is ECGEncoder"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])
    assert ecg_dino.ECGEncoder is ECGEncoder and ecg_dino.__version__
    with pytest.raises(AttributeError, match="no attribute 'Encoder'"):
        _ = ecg_dino.Encoder
