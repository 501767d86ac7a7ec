"""ShardStream: every sample once per epoch across ranks × workers, weighted mixing, exact resume."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from datamodules.pretrain_datamodule import PretrainDataModule
from datamodules.record import ECGRecord
from datamodules.shards import write_shard
from datamodules.streaming import ShardStream, _round_robin

RATE = 250.0


def _write_source(out_dir: Path, source: str, n_records: int, n_shards: int, leads=("II",), n_samples=20):
    """``n_shards`` shards of tiny random records with row groups of 4; returns the shard files."""
    rng = np.random.default_rng(len(source))
    paths = []
    for s, ids in enumerate(np.array_split(np.arange(n_records), n_shards)):
        records = [
            ECGRecord(rng.normal(size=(len(leads), n_samples)), RATE, leads, f"{source}-{i}", f"p{i}", source)
            for i in ids
        ]
        entry = write_shard(records, out_dir / f"{source}_{s}.parquet", row_group_size=4)
        paths.append({**entry, "source": source})
    return paths


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, list[str]]:
    out = tmp_path_factory.mktemp("shards")
    return {
        name: [str(out / e["path"]) for e in _write_source(out, name, n, k)]
        for name, n, k in (("a", 37, 3), ("b", 14, 2))
    }


def record_id(record: ECGRecord, rng: np.random.Generator) -> str:
    return record.record_id


def _epoch(stream: ShardStream, num_workers: int, epoch: int = 0, consumed: int = 0) -> list[list[str]]:
    stream.set_position(epoch, consumed)
    loader = DataLoader(stream, batch_size=stream.batch_size, num_workers=num_workers, collate_fn=list)
    return list(loader)


def _stream(sources, **kwargs) -> ShardStream:
    return ShardStream(sources, transform=record_id, **{"batch_size": 3, "shuffle_buffer": 8, **kwargs})


def test_two_ranks_two_workers_see_every_sample_exactly_once(sources):
    all_ids = {f"{name}-{i}" for name, n in (("a", 37), ("b", 14)) for i in range(n)}
    for epoch in (0, 1):
        seen = Counter()
        for rank in (0, 1):
            stream = _stream(sources, rank=rank, world_size=2, drop_last=False, seed=7)
            seen.update(i for batch in _epoch(stream, num_workers=2, epoch=epoch) for i in batch)
        assert set(seen) == all_ids and max(seen.values()) == 1


def test_drop_last_gives_every_rank_the_same_batches_and_no_duplicates(sources):
    per_rank = [_epoch(_stream(sources, rank=r, world_size=3, drop_last=True), num_workers=2) for r in range(3)]
    assert len({len(batches) for batches in per_rank}) == 1
    assert len({tuple(len(b) for b in batches) for batches in per_rank}) == 1
    ids = [i for batches in per_rank for b in batches for i in b]
    assert len(ids) == len(set(ids)) == 3 * (37 // 3) + 3 * (14 // 3)


def test_order_is_reproducible_and_changes_with_epoch(sources):
    first = _epoch(_stream(sources, seed=1), num_workers=2)
    assert first == _epoch(_stream(sources, seed=1), num_workers=2)
    assert first != _epoch(_stream(sources, seed=1), num_workers=2, epoch=1)
    assert first != _epoch(_stream(sources, seed=2), num_workers=2)


def test_weights_shape_the_mix(sources):
    stream = _stream(sources, weights={"a": 1.0, "b": 100.0}, shuffle_buffer=0)
    head = [i for batch in _epoch(stream, num_workers=0)[:4] for i in batch]
    assert sum(i.startswith("b-") for i in head) >= 10  # b (14 samples) comes first almost surely
    with pytest.raises(ValueError, match="unknown sources"):
        _stream(sources, weights={"c": 1.0})


@pytest.mark.filterwarnings("ignore:This DataLoader will create")
@pytest.mark.parametrize("num_workers", [0, 2, 3])
def test_resume_continues_with_the_next_batch(sources, num_workers):
    full = _epoch(_stream(sources), num_workers)
    for consumed in sorted({1, 2, 5, len(full) // 2, len(full) - 2, len(full) - 1}):
        assert _epoch(_stream(sources), num_workers, consumed=consumed) == full[consumed:], consumed


def test_persistent_workers_follow_the_position(sources):
    stream = _stream(sources)
    loader = DataLoader(stream, batch_size=3, num_workers=2, collate_fn=list, persistent_workers=True)
    stream.set_position(0, 4)
    resumed = list(loader)
    stream.set_position(1)
    assert resumed == _epoch(_stream(sources), 2)[4:]
    assert list(loader) == _epoch(_stream(sources), 2, epoch=1)


def test_round_robin_skips_exhausted_workers():
    served, next_worker = _round_robin(np.array([1, 3, 2]), 5)
    assert served.tolist() == [1, 2, 2] and next_worker == 0  # worker 0 is done, so worker 1 serves next


def _write_shard_dir(out: Path) -> Path:
    out.mkdir()
    entries = _write_source(out, "mix12", 24, 2, leads=("I", "II", "V1", "V5"), n_samples=2500)
    entries += _write_source(out, "holter", 12, 1, leads=("MLII", "V1"), n_samples=3000)
    manifest = {"target_sample_rate_hz": RATE, "shards": entries, "sources": {}}
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def _fingerprints(loader) -> list[str]:
    return [hashlib.sha1(b["local"]["signal"].numpy().tobytes()).hexdigest() for b in loader]


def test_datamodule_without_trainer_resumes_and_rolls_over(tmp_path, caplog):
    shard_dir = _write_shard_dir(tmp_path / "shards")
    make = lambda: PretrainDataModule(shards=[str(shard_dir)], batch_size=4, num_workers=0, noise_dir=None)  # noqa: E731
    reference = make().train_dataloader()
    epoch0, epoch1 = _fingerprints(reference), _fingerprints(reference)
    assert epoch0 != epoch1 and len(epoch0) == 9
    interrupted = make()
    loader = interrupted.train_dataloader()
    for k, _ in enumerate(loader, start=1):
        if k == 3:
            break
    state = interrupted.state_dict()
    assert (state["epoch"], state["batches_consumed"]) == (0, 3)
    resumed = make()
    resumed.load_state_dict(state)
    loader = resumed.train_dataloader()
    assert _fingerprints(loader) == epoch0[3:] and _fingerprints(loader) == epoch1
    moved = make()
    moved.num_workers = 2
    with caplog.at_level("WARNING"):
        moved.load_state_dict(state)
    assert "restarts from its beginning" in caplog.text and moved.state_dict()["batches_consumed"] == 0


class _Recorder:
    """A LightningModule factory that fingerprints every training batch it sees."""

    @staticmethod
    def make():
        import lightning as L

        class Recorder(L.LightningModule):
            def __init__(self) -> None:
                super().__init__()
                self.weight = torch.nn.Parameter(torch.zeros(1))
                self.seen: list[str] = []

            def training_step(self, batch, batch_idx):
                self.seen.append(hashlib.sha1(batch["local"]["signal"].numpy().tobytes()).hexdigest())
                return (self.weight**2).sum() + batch["global"]["signal"].mean() * 0

            def configure_optimizers(self):
                return torch.optim.SGD(self.parameters(), lr=0.1)

        return Recorder()


def _fit(shard_dir: Path, tmp_path: Path, max_steps: int, ckpt_path: str | None = None, callbacks=()):
    import lightning as L

    dm = PretrainDataModule(shards=[str(shard_dir)], batch_size=4, num_workers=2, shuffle_buffer=6, noise_dir=None)
    module = _Recorder.make()
    trainer = L.Trainer(
        max_steps=max_steps,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        default_root_dir=tmp_path,
        callbacks=list(callbacks),
    )
    trainer.fit(module, datamodule=dm, ckpt_path=ckpt_path)
    return module.seen


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_lightning_resume_continues_with_the_next_batch(tmp_path):
    from lightning.pytorch.callbacks import ModelCheckpoint

    shard_dir = _write_shard_dir(tmp_path / "shards")
    # 36 records, 2 workers of 18 -> 5 + 5 = 10 batches per epoch; checkpoints at steps 5, 10 (epoch end), 15.
    every_5 = ModelCheckpoint(tmp_path / "ckpt", "{step}", every_n_train_steps=5, save_top_k=-1)
    uninterrupted = _fit(shard_dir, tmp_path, 16, callbacks=[every_5])
    assert len(uninterrupted) == 16
    for step in (5, 10, 15):
        resumed = _fit(shard_dir, tmp_path, 16, ckpt_path=str(tmp_path / "ckpt" / f"step={step}.ckpt"))
        assert resumed == uninterrupted[step:], step
