"""``PretrainDataModule``: multi-crop pretraining batches streamed from shard directories.

Resume: the module counts the batches of the current epoch that were consumed - under a Trainer, those that
reach ``on_before_batch_transfer`` in training (not the ones only prefetched); without one, those the loader
yielded - and ``state_dict`` saves ``{epoch, batches_consumed}``, which Lightning stores in every checkpoint.
Each ``iter()`` of the loader continues the current epoch after its consumed batches (``ShardStream`` skips
them exactly), or starts the next epoch once all of its batches were consumed. So a run resumed from any
checkpoint, mid-epoch or at an epoch end, continues with the next batch of the interrupted run. The epoch
count is the data's own: a pass cut short (``limit_train_batches``) is continued, not restarted. If the
LightningModule also overrides ``on_before_batch_transfer``, Lightning calls this DataModule's one.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from datamodules.augment import AmplitudeScale, PretrainTransform
from datamodules.multicrop import MultiCrop, collate_multicrop
from datamodules.noise import DEFAULT_NOISE_DIR, NOISE_TYPES, NoiseBank, NoiseInjector
from datamodules.streaming import ShardStream
from datamodules.synthetic import DEFAULT_CACHE_DIR, build_synthetic_dataset

log = logging.getLogger(__name__)


def read_manifest(shard_dir: str | Path, sample_rate_hz: float) -> dict[str, list[str]]:
    """Shard files of one directory grouped by source; the manifest's rate must be ``sample_rate_hz``."""
    path = Path(shard_dir) / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(f"{shard_dir}: no manifest.json (is it a shard directory written by prepare?)")
    manifest = json.loads(path.read_text())
    rate = float(manifest["target_sample_rate_hz"])
    if abs(rate - sample_rate_hz) > 1e-6:
        raise ValueError(f"{shard_dir}: shards are at {rate} Hz but sample_rate_hz is {sample_rate_hz} Hz")
    sources: dict[str, list[str]] = defaultdict(list)
    for shard in manifest["shards"]:
        sources[shard["source"]].append(str(Path(shard_dir) / shard["path"]))
    return sources


class _EpochLoader(DataLoader):
    """A DataLoader that calls ``begin_epoch`` before each pass and ``on_batch`` after each batch."""

    def __init__(self, dataset: ShardStream, begin_epoch: Callable, on_batch: Callable, **kwargs: Any) -> None:
        super().__init__(dataset, **kwargs)
        self._begin_epoch = begin_epoch
        self._on_batch = on_batch

    def __iter__(self) -> Iterator[Any]:
        self._begin_epoch()
        for batch in super().__iter__():
            self._on_batch()
            yield batch


class PretrainDataModule(L.LightningDataModule):
    """Streams shards (``shards``: directories with ``manifest.json``; None: the embedded synthetic set)
    through window -> multi-crop -> noise -> amplitude into ``collate_multicrop`` batches.

    ``source_weights`` are mixing probabilities by manifest source name (default 1.0 each);
    ``window_seconds`` is the random window taken from longer records before cropping; noise is real NSTDB
    noise from ``noise_dir`` (training split), added to each crop with probability ``noise_prob``;
    ``clean_teacher_view`` hands the teacher the global crops from before the noise (``PretrainTransform``).
    """

    def __init__(
        self,
        shards: list[str] | None = None,
        source_weights: dict[str, float] | None = None,
        sample_rate_hz: float = 250.0,
        batch_size: int = 64,
        num_workers: int = 2,
        shuffle_buffer: int = 512,
        seed: int = 0,
        multicrop: MultiCrop | None = None,
        window_seconds: float | None = 10.0,
        noise_dir: str | None = DEFAULT_NOISE_DIR,
        noise_prob: float = 0.5,
        snr_db_range: tuple[float, float] = (-6.0, 24.0),
        noise_types: tuple[str, ...] = NOISE_TYPES,
        amplitude_range: tuple[float, float] = (0.8, 1.25),
        amplitude_lead_std: float = 0.05,
        synthetic_dir: str = DEFAULT_CACHE_DIR,
        drop_last: bool = True,
        clean_teacher_view: bool = False,
    ) -> None:
        super().__init__()
        self.shards = shards
        self.source_weights = source_weights
        self.sample_rate_hz = sample_rate_hz
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.shuffle_buffer = shuffle_buffer
        self.seed = seed
        self.multicrop = multicrop or MultiCrop()
        self.window_seconds = window_seconds
        self.noise_dir = noise_dir
        self.noise_prob = noise_prob
        self.snr_db_range = snr_db_range
        self.noise_types = tuple(noise_types)
        self.amplitude_range = amplitude_range
        self.amplitude_lead_std = amplitude_lead_std
        self.synthetic_dir = synthetic_dir
        self.drop_last = drop_last
        self.clean_teacher_view = clean_teacher_view
        self.stream: ShardStream | None = None
        self._epoch = 0  # epoch of the current (or next) pass
        self._batches = 0  # batches of it consumed

    def prepare_data(self) -> None:
        if self.shards is None:
            build_synthetic_dataset(self.synthetic_dir, sample_rate_hz=self.sample_rate_hz)

    def _sources(self) -> dict[str, list[str]]:
        dirs = self.shards
        if dirs is None:
            dirs = [str(build_synthetic_dataset(self.synthetic_dir, sample_rate_hz=self.sample_rate_hz))]
        sources: dict[str, list[str]] = defaultdict(list)
        for shard_dir in dirs:
            for source, files in read_manifest(shard_dir, self.sample_rate_hz).items():
                sources[source] += files
        return dict(sources)

    def _transform(self) -> PretrainTransform:
        noise = None
        if self.noise_prob > 0:
            bank = NoiseBank(self.noise_dir, self.sample_rate_hz, "train", self.noise_types, self.seed)
            noise = NoiseInjector(bank, self.noise_prob, self.snr_db_range)
        return PretrainTransform(
            self.multicrop,
            self.sample_rate_hz,
            self.window_seconds,
            noise,
            AmplitudeScale(self.amplitude_range, self.amplitude_lead_std),
            self.clean_teacher_view,
        )

    def setup(self, stage: str | None = None) -> None:
        if self.stream is not None:
            return
        rank = world_size = None
        if self.trainer is not None:
            rank, world_size = self.trainer.global_rank, self.trainer.world_size
        self.stream = ShardStream(
            self._sources(),
            weights=self.source_weights,
            transform=self._transform(),
            batch_size=self.batch_size,
            shuffle_buffer=self.shuffle_buffer,
            seed=self.seed,
            rank=rank,
            world_size=world_size,
            drop_last=self.drop_last,
        )

    def train_dataloader(self) -> DataLoader:
        self.setup("fit")
        return _EpochLoader(
            self.stream,
            self._begin_epoch,
            self._count_yielded,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            collate_fn=collate_multicrop,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
        )

    def _begin_epoch(self) -> None:
        """Continue the current epoch after its consumed batches, or start the next once it is used up."""
        if self._batches >= self.stream.num_batches(self.num_workers):
            self._epoch, self._batches = self._epoch + 1, 0
        self.stream.set_position(self._epoch, self._batches)

    def _count_yielded(self) -> None:
        if self.trainer is None:
            self._batches += 1

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if self.trainer is not None and self.trainer.training:
            self._batches += 1
        return batch

    def _layout(self) -> dict[str, int]:
        world_size = self.stream.world_size if self.stream is not None else 1
        return {
            "seed": self.seed,
            "batch_size": self.batch_size,
            "num_workers": self.num_workers,
            "world_size": world_size,
        }

    def state_dict(self) -> dict[str, Any]:
        """Where the epoch stands, the data layout, and the global crop length: the features of a checkpoint are
        read in crops of that length (``ecg_dino.checkpoint.trained_crop_seconds``)."""
        position = {"epoch": self._epoch, "batches_consumed": self._batches}
        return {**position, **self._layout(), "global_crop_seconds": self.multicrop.global_crop_seconds}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._epoch, self._batches = state_dict["epoch"], state_dict["batches_consumed"]
        saved = {k: state_dict.get(k) for k in self._layout()}
        if saved != self._layout():
            log.warning(
                "data layout changed since the checkpoint (%s -> %s): epoch %d restarts from its beginning",
                saved,
                self._layout(),
                self._epoch,
            )
            self._batches = 0
