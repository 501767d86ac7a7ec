"""Embedding extraction, export and the checkpoint errors users see."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from datamodules.record import ECGRecord
from datamodules.shards import write_shard
from ecg_dino.checkpoint import CheckpointError, export_safetensors, load_backbone
from ecg_dino.commands import embed
from ecg_dino.export import export_backbone
from ecg_dino.features.backbone import BackboneSpec
from ecg_dino.features.cache import EmbeddingCache, read_table, write_table
from ecg_dino.features.records import EmbedOptions, crop_starts, embed_records
from ecg_dino.leads import STANDARD_12
from ecg_dino.model.vit import build_vit
from ecg_dino.signal import resample

TINY = {"size": "tiny", "depth": 1, "embed_dim": 32, "num_heads": 2}


def tiny_safetensors(path: Path, seed: int = 0, config: dict | None = None) -> Path:
    """A randomly initialised tiny backbone exported to safetensors."""
    config = config or TINY
    torch.manual_seed(seed)
    model = build_vit(**config)
    model.init_weights()
    export_safetensors(model, config, path)
    return path


def lightning_checkpoint(path: Path, config: dict, state_config: dict | None = None) -> Path:
    """A checkpoint laid out like Lightning's: teacher/student backbones under ``state_dict``."""
    state = {}
    for seed, branch in enumerate(("teacher", "student")):
        torch.manual_seed(seed)
        model = build_vit(**(state_config or config))
        model.init_weights()
        state.update({f"{branch}.backbone.{k}": v for k, v in model.state_dict().items()})
    torch.save({"state_dict": state, "hyper_parameters": {"backbone": config}}, path)
    return path


def record(leads: tuple[str, ...] = STANDARD_12, seconds: float = 4.0, rate: float = 500.0, seed: int = 0) -> ECGRecord:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    signal = np.sin(2 * np.pi * 1.2 * t)[None] * rng.uniform(0.5, 1.5, (len(leads), 1)) + 0.05 * rng.normal(
        size=(len(leads), len(t))
    )
    return ECGRecord(signal, rate, leads, f"r{seed}", f"p{seed}", "test")


@pytest.fixture
def backbone(tmp_path: Path) -> torch.nn.Module:
    return load_backbone(tiny_safetensors(tmp_path / "tiny.safetensors"))


def test_resample_halves_the_length_and_keeps_a_slow_sine() -> None:
    t = np.arange(1000) / 500
    x = np.sin(2 * np.pi * 2 * t)[None].astype(np.float32)
    y = resample(x, 500, 250)
    assert y.shape == (1, 500)
    np.testing.assert_allclose(y[0, 50:-50], np.sin(2 * np.pi * 2 * np.arange(500) / 250)[50:-50], atol=0.02)


def test_crop_starts_cover_the_record_patch_aligned() -> None:
    starts = crop_starts(num_samples=2510, crop_samples=500, stride_samples=250, patch_samples=50)
    assert starts[0] == 0 and all(s % 50 == 0 for s in starts)
    assert starts[-1] + 500 == 2500  # the last crop ends at the last whole patch
    assert crop_starts(400, 500, 250, 50) == [0]


def test_embeddings_are_deterministic_and_independent_of_batch_padding(backbone: torch.nn.Module) -> None:
    short3 = record(("I", "II", "V2"), seconds=3.0, seed=1)
    long12 = record(seconds=6.0, seed=2)
    options = EmbedOptions(crop_seconds=10.0, batch_size=2)
    together = embed_records(backbone, [short3, long12], options)
    alone = embed_records(backbone, [short3], EmbedOptions(crop_seconds=10.0, batch_size=1))
    again = embed_records(backbone, [short3, long12], options)
    assert list(together["record_id"]) == ["r1", "r2"]
    # Absent leads and padded time are masked, so batching with a longer 12-lead record changes nothing.
    np.testing.assert_allclose(together["cls"][0], alone["cls"][0], atol=1e-5)
    np.testing.assert_allclose(together["mean"][0], alone["mean"][0], atol=1e-5)
    np.testing.assert_array_equal(together["cls"], again["cls"])


def test_long_rules_agree_when_the_record_fits_one_crop(backbone: torch.nn.Module) -> None:
    rec = record(seconds=2.0)
    full = embed_records(backbone, [rec], EmbedOptions(crop_seconds=4.0, long_rule="full"))
    sliding = embed_records(backbone, [rec], EmbedOptions(crop_seconds=4.0, long_rule="sliding"))
    np.testing.assert_allclose(full["cls"], sliding["cls"], atol=1e-6)


def test_sliding_crops_average_patch_tokens_over_the_whole_record(backbone: torch.nn.Module) -> None:
    rec = record(seconds=5.0)
    out = embed_records(backbone, [rec], EmbedOptions(crop_seconds=2.0, long_rule="sliding", patches=True))
    P = int(5.0 * backbone.sample_rate_hz) // backbone.patch_samples
    assert out["patches"][0].shape == (12, P, backbone.embed_dim)
    assert np.all(np.abs(out["patches"][0]).sum(-1) > 0)  # every patch covered by some crop
    assert out["patches"][0].dtype == np.float16 and out["patch_valid"][0].all()


def test_parquet_round_trip_and_cache(tmp_path: Path, backbone: torch.nn.Module) -> None:
    cols = embed_records(backbone, [record(seed=3), record(seed=4)], EmbedOptions(patches=True))
    write_table(cols, tmp_path / "e.parquet")
    back = read_table(tmp_path / "e.parquet")
    np.testing.assert_array_equal(back["cls"], cols["cls"])
    np.testing.assert_array_equal(back["patches"][1], cols["patches"][1])
    np.testing.assert_array_equal(back["patch_valid"][0], cols["patch_valid"][0])
    assert back["patches"][0].dtype == np.float16 and back["patch_valid"][0].dtype == bool
    calls = []
    cache = EmbeddingCache(tmp_path / "cache")

    def compute() -> dict:
        calls.append(1)
        return cols

    for _ in range(2):
        got = cache.get_or_compute("model", "data", EmbedOptions(), compute)
    assert len(calls) == 1 and list(got["record_id"]) == ["r3", "r4"]


def test_random_init_baseline_is_seeded_and_differs_from_the_checkpoint(tmp_path: Path) -> None:
    ckpt = tiny_safetensors(tmp_path / "tiny.safetensors", seed=5)
    a = BackboneSpec(ckpt, random_init_seed=0).load().state_dict()
    b = BackboneSpec(ckpt, random_init_seed=0).load().state_dict()
    trained = BackboneSpec(ckpt).load().state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert a.keys() == trained.keys() and not torch.equal(a["cls_token"], trained["cls_token"])
    assert BackboneSpec(ckpt, random_init_seed=0).cache_key() != BackboneSpec(ckpt).cache_key()


def test_checkpoint_of_another_architecture_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ckpt = lightning_checkpoint(tmp_path / "other.ckpt", TINY, state_config={**TINY, "embed_dim": 64})
    with pytest.raises(CheckpointError, match=r"other\.ckpt"):
        BackboneSpec(ckpt).load()
    shards = tmp_path / "shards"
    shards.mkdir()
    write_shard([record()], shards / "a.parquet")
    assert embed.main(["--ckpt", str(ckpt), "--data", str(shards), "--out", str(tmp_path / "o.parquet")]) == 2
    assert "other.ckpt" in capsys.readouterr().err


def test_export_writes_teacher_weights_and_config(tmp_path: Path) -> None:
    ckpt = lightning_checkpoint(tmp_path / "run.ckpt", TINY)
    info = export_backbone(ckpt, tmp_path / "out")
    exported = load_backbone(tmp_path / "out" / "backbone.safetensors").state_dict()
    teacher = load_backbone(ckpt, "teacher").state_dict()
    assert all(torch.equal(exported[k], teacher[k]) for k in teacher)
    meta = json.loads((tmp_path / "out" / "backbone.json").read_text())
    assert meta["config"] == TINY and meta["embed_dim"] == 32 == info["embed_dim"]
    assert meta["sample_rate_hz"] == 250.0 and meta["which"] == "teacher"


def test_embed_cli_on_a_shard_folder(tmp_path: Path) -> None:
    ckpt = tiny_safetensors(tmp_path / "tiny.safetensors")
    shards = tmp_path / "shards"
    shards.mkdir()
    write_shard([record(seed=i) for i in range(3)], shards / "a.parquet")
    out = tmp_path / "emb.parquet"
    args = ["--ckpt", str(ckpt), "--data", str(shards), "--out", str(out), "--cache-dir", str(tmp_path / "c")]
    assert embed.main([*args, "--patches"]) == 0
    cols = read_table(out)
    assert cols["cls"].shape == (3, 32) and cols["mean"].shape == (3, 32) and len(cols["patches"]) == 3


def test_embed_cli_beats_without_annotations_uses_detected_r_peaks(tmp_path: Path) -> None:
    import neurokit2 as nk

    ecg = nk.ecg_simulate(duration=10, sampling_rate=360, heart_rate=70, random_state=0)
    shards = tmp_path / "shards"
    shards.mkdir()
    write_shard([ECGRecord(ecg[None], 360.0, ("MLII",), "sim", "sim", "test")], shards / "a.parquet")
    out = tmp_path / "beats.parquet"
    ckpt = tiny_safetensors(tmp_path / "tiny.safetensors")
    assert (
        embed.main(["--ckpt", str(ckpt), "--data", str(shards), "--out", str(out), "--beats", "--cache-dir", ""]) == 0
    )
    cols = read_table(out)
    assert 9 <= len(cols["sample"]) <= 13  # ~70 bpm for 10 s
    assert cols["features"].shape[1] == 4 * 32 and set(cols["aami_class"]) == {-1}


def test_embed_cli_beats_in_context_read_the_trained_crop_length(tmp_path: Path) -> None:
    """``--beat-features context`` reads the crop length from the checkpoint: an export without one is an error
    naming the file; with one, every beat gets a 4·D feature from its most central crop."""
    import neurokit2 as nk

    from ecg_dino.checkpoint import backbone_state, export_safetensors, load_backbone

    ecg = nk.ecg_simulate(duration=20, sampling_rate=360, heart_rate=70, random_state=0)
    shards = tmp_path / "shards"
    shards.mkdir()
    write_shard([ECGRecord(ecg[None], 360.0, ("MLII",), "sim", "sim", "test")], shards / "a.parquet")
    bare = tiny_safetensors(tmp_path / "tiny.safetensors")
    args = ["--data", str(shards), "--out", str(tmp_path / "b.parquet"), "--beats", "--beat-features", "context"]
    assert embed.main(["--ckpt", str(bare), *args, "--cache-dir", ""]) == 2
    with_crop = tmp_path / "crop.safetensors"
    export_safetensors(load_backbone(bare), backbone_state(bare)[0], with_crop, crop_seconds=4.0)
    assert embed.main(["--ckpt", str(with_crop), *args, "--cache-dir", ""]) == 0
    cols = read_table(tmp_path / "b.parquet")
    assert 19 <= len(cols["sample"]) <= 27 and cols["features"].shape[1] == 4 * 32
    assert np.isfinite(cols["features"]).all()
