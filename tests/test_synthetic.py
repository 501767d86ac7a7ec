"""The embedded synthetic dataset, and a real PretrainDataModule batch from it (docs/INTERFACES.md)."""

from __future__ import annotations

import json
import re

import pytest
import torch

from datamodules import synthetic
from datamodules.multicrop import MultiCrop
from datamodules.pretrain_datamodule import PretrainDataModule
from datamodules.shards import iter_records
from ecg_dino.leads import LEADS

SMALL = {"num_records": 12, "records_per_patient": 6}


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory):
    return synthetic.build_synthetic_dataset(tmp_path_factory.mktemp("synthetic"), **SMALL)


def test_builds_1_2_and_12_lead_records_with_a_prepare_manifest(synthetic_dir):
    manifest = json.loads((synthetic_dir / "manifest.json").read_text())
    assert manifest["target_sample_rate_hz"] == 250.0
    assert set(manifest["sources"]) == set(synthetic.SOURCES)
    assert sum(s["records"] for s in manifest["sources"].values()) == 12
    leads_by_source, patients = {}, set()
    for shard in manifest["shards"]:
        assert {"path", "num_records", "num_samples", "sha256", "bytes", "source"} <= set(shard)
        records = list(iter_records(synthetic_dir / shard["path"]))
        assert len(records) == shard["num_records"]
        leads_by_source[shard["source"]] = {r.leads for r in records}
        patients |= {r.patient_id for r in records}
        for r in records:
            assert r.num_samples == 2500 and r.source == shard["source"]
            assert torch.isfinite(torch.from_numpy(r.signal)).all() and 0.05 < r.signal.std() < 5
    assert {len(next(iter(leads))) for leads in leads_by_source.values()} == {1, 2, 12}
    assert leads_by_source["synthetic_2lead"] == {("MLII", "V1")}
    assert len(patients) == 2


def test_second_build_is_cached_and_new_parameters_rebuild(synthetic_dir, monkeypatch):
    records = [r for path in sorted(synthetic_dir.glob("*.parquet")) for r in iter_records(path)]
    calls = []
    monkeypatch.setattr(synthetic, "_generate", lambda params, workers: calls.append(params) or records)
    before = (synthetic_dir / "manifest.json").stat().st_mtime_ns
    assert synthetic.build_synthetic_dataset(synthetic_dir, **SMALL) == synthetic_dir
    assert calls == [] and (synthetic_dir / "manifest.json").stat().st_mtime_ns == before
    rebuilt = synthetic_dir.parent / "rebuilt"
    synthetic.build_synthetic_dataset(rebuilt, **SMALL)
    synthetic.build_synthetic_dataset(rebuilt, **SMALL, seed=1)
    synthetic.build_synthetic_dataset(rebuilt, **SMALL, seed=1)
    assert [params["seed"] for params in calls] == [0, 1]
    assert json.loads((rebuilt / "manifest.json").read_text())["synthetic"]["seed"] == 1


def _check_interfaces_batch(batch, B: int, n_global: int, n_local: int, crop_samples: tuple[int, int]):
    """The pretraining batch contract of docs/INTERFACES.md."""
    assert set(batch) == {"global", "local", "sample_rate_hz", "n_global_crops", "n_local_crops"}
    assert isinstance(batch["sample_rate_hz"], float) and batch["sample_rate_hz"] == 250.0
    for group, n_crops, T in (("global", n_global, crop_samples[0]), ("local", n_local, crop_samples[1])):
        crops = batch[group]
        assert set(crops) == {"signal", "lead_ids", "lead_mask", "valid_samples"}
        N, L = n_crops * B, crops["lead_ids"].shape[1]
        assert crops["signal"].shape == (N, L, T) and crops["signal"].dtype == torch.float32
        assert crops["lead_ids"].shape == (N, L) and crops["lead_ids"].dtype == torch.int64
        assert crops["lead_mask"].shape == (N, L) and crops["lead_mask"].dtype == torch.bool
        assert crops["valid_samples"].shape == (N,) and crops["valid_samples"].dtype == torch.int64
        assert torch.isfinite(crops["signal"]).all()
        assert crops["lead_mask"].any(1).all(), "every crop has a lead"
        assert (crops["signal"][~crops["lead_mask"]] == 0).all() and (crops["lead_ids"][~crops["lead_mask"]] == 0).all()
        assert ((crops["lead_ids"] >= 0) & (crops["lead_ids"] < len(LEADS))).all()
        assert ((crops["valid_samples"] > 0) & (crops["valid_samples"] <= T)).all()


@pytest.mark.parametrize("num_workers", [0, 2])
def test_datamodule_batch_matches_interfaces(synthetic_dir, num_workers):
    multicrop = MultiCrop(global_crop_seconds=5.0, local_crop_seconds=1.0, n_local_crops=3)
    dm = PretrainDataModule(
        shards=[str(synthetic_dir)],
        batch_size=4,
        num_workers=num_workers,
        shuffle_buffer=8,
        multicrop=multicrop,
    )
    batches = list(dm.train_dataloader())
    assert sum(b["global"]["signal"].shape[0] // 2 for b in batches) == 12
    for batch in batches:
        B = batch["global"]["signal"].shape[0] // 2
        _check_interfaces_batch(batch, B, 2, 3, (1250, 250))
    assert {b["global"]["signal"].shape[1] for b in batches} <= {1, 2, 12}


def test_datamodule_rejects_shards_at_another_rate(synthetic_dir):
    dm = PretrainDataModule(shards=[str(synthetic_dir)], sample_rate_hz=500.0, noise_prob=0.0)
    with pytest.raises(ValueError, match=rf"{re.escape(str(synthetic_dir))}.*250\.0 Hz.*500\.0 Hz"):
        dm.setup("fit")
