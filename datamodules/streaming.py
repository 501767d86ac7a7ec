"""Streaming Parquet shards: exact rank × worker split, source mixing, shuffle buffer, resumable position.

Split. The unit of work is a (shard, row group). Each epoch, every source's units are permuted with a seed
of (seed, epoch, source), the same on every rank and worker, and laid end to end as one sequence of
samples. Rank r takes a contiguous slice of that sequence and DataLoader worker w a contiguous slice of the
rank's slice, so a row group is read by at most two workers at a slice boundary and every sample belongs to
exactly one (rank, worker). Remainder: with ``drop_last=True`` (training under DDP) every rank gets
``N // world_size`` samples of each source and the last ``N % world_size`` of the epoch's permuted sequence
are dropped (different ones each epoch), so all ranks yield the same number of batches; with
``drop_last=False`` nothing is dropped and ranks may differ by one sample per source.

Mixing. A worker interleaves its per-source streams, picking the next sample's source with probability
proportional to ``weights`` among the sources it still has samples of. Weights shape the mix along the
epoch; every sample is still seen exactly once per epoch (an exhausted source drops out of the draw).

Shuffle. Within a worker, a buffer of ``shuffle_buffer`` samples: each new sample replaces a random one,
which is emitted. Samples are decoded and transformed when they enter the buffer.

Determinism and resume. The order of a worker's samples depends only on (seed, epoch, rank, worker,
num_workers, world_size), and each sample's transform draws from its own generator seeded by (seed, epoch,
shard, row group, row). A position is (epoch, batches consumed). DataLoader hands out batches round-robin
over the workers that still have data, so from the number of batches consumed each worker knows how many of
its own batches were used and skips that many samples without reading them. The resumed DataLoader starts
its round robin at worker 0; worker ids are rotated so that worker 0 plays the worker whose batch was due
next. Resuming exactly needs the same seed, shards, batch size, world size and number of workers.
``set_position`` writes shared memory, so persistent workers see it at their next epoch.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import torch
from torch.utils.data import IterableDataset, get_worker_info

from datamodules.record import ECGRecord
from datamodules.shards import decode_row
from ecg_dino.distributed import rank_and_world_size

Key = tuple[int, int, int]  # (shard index, row group, row within the group)
Segment = tuple[int, int, int, int]  # (shard index, row group, first row, end row)
# Tags that keep the three kinds of random streams apart.
_PERMUTE, _ORDER, _SAMPLE = 0, 1, 2


def _bounds(n: int, parts: int, drop_last: bool) -> np.ndarray:
    """Boundaries [parts + 1] of ``n`` items split in contiguous parts: equal (remainder dropped) or
    differing by at most one."""
    i = np.arange(parts + 1)
    return i * (n // parts) if drop_last else i * (n // parts) + np.minimum(i, n % parts)


def _round_robin(batches: np.ndarray, consumed: int) -> tuple[np.ndarray, int]:
    """Batches served per worker after ``consumed`` batches handed out round-robin over the workers that
    still have batches, and the worker whose turn is next."""
    served = np.zeros_like(batches)
    worker = 0
    for _ in range(min(consumed, int(batches.sum()))):
        while served[worker] >= batches[worker]:
            worker = (worker + 1) % len(batches)
        served[worker] += 1
        worker = (worker + 1) % len(batches)
    return served, worker


def _shuffle_buffer(keys: Iterator[Key], size: int, rng: np.random.Generator):
    """Shuffle buffer on keys: yields (keys that entered the buffer since the last emit, key emitted)."""
    buffer: list[Key] = []
    pushed: list[Key] = []
    for key in keys:
        pushed.append(key)
        if len(buffer) < size:
            buffer.append(key)
            continue
        if size == 0:
            yield pushed, key
        else:
            j = int(rng.integers(size))
            out, buffer[j] = buffer[j], key
            yield pushed, out
        pushed = []
    for j in rng.permutation(len(buffer)):
        yield pushed, buffer[j]
        pushed = []


class _RowReader:
    """Parquet rows by key, keeping the last few row groups decoded to Python rows."""

    def __init__(self, paths: Sequence[str], cache_size: int) -> None:
        self.paths = paths
        self.cache_size = cache_size
        self.cache: OrderedDict[tuple[int, int], list[dict]] = OrderedDict()

    def row(self, key: Key) -> dict:
        shard, group, row = key
        if (shard, group) in self.cache:
            self.cache.move_to_end((shard, group))
        else:
            self.cache[shard, group] = pq.ParquetFile(self.paths[shard]).read_row_group(group).to_pylist()
            if len(self.cache) > self.cache_size:
                self.cache.popitem(last=False)
        return self.cache[shard, group][row]


class ShardStream(IterableDataset):
    """Records (or ``transform(record, rng)``) from Parquet shards, each exactly once per epoch across ranks
    and workers; see the module docstring for the split, mixing, shuffle and resume rules.

    ``sources`` maps a source name to its shard files; ``weights`` (default 1.0 each) are the mixing
    probabilities. ``batch_size`` must equal the DataLoader's: it maps consumed batches to samples on resume.
    """

    def __init__(
        self,
        sources: Mapping[str, Sequence[str | Path]],
        weights: Mapping[str, float] | None = None,
        transform: Callable[[ECGRecord, np.random.Generator], Any] | None = None,
        batch_size: int = 1,
        shuffle_buffer: int = 0,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        drop_last: bool = True,
    ) -> None:
        weights = dict(weights or {})
        unknown = sorted(set(weights) - set(sources))
        if unknown:
            raise ValueError(f"weights for unknown sources {unknown}; sources are {sorted(sources)}")
        self.source_names = list(sources)
        self.weights = np.array([float(weights.get(name, 1.0)) for name in self.source_names])
        if (self.weights <= 0).any():
            raise ValueError(f"source weights must be positive, got {dict(zip(self.source_names, self.weights))}")
        self.shards: list[str] = []
        self.units: list[np.ndarray] = []  # per source: [U, 3] (shard index, row group, rows)
        for name in self.source_names:
            units = []
            for path in sources[name]:
                meta = pq.ParquetFile(path).metadata
                units += [(len(self.shards), g, meta.row_group(g).num_rows) for g in range(meta.num_row_groups)]
                self.shards.append(str(path))
            self.units.append(np.array(units, dtype=np.int64).reshape(-1, 3))
        if not any(len(units) for units in self.units):
            raise ValueError(f"no row groups to stream in sources {self.source_names}")
        group_rank, group_size = rank_and_world_size()
        self.rank = group_rank if rank is None else rank
        self.world_size = group_size if world_size is None else world_size
        self.transform = transform
        self.batch_size = batch_size
        self.shuffle_buffer = shuffle_buffer
        self.seed = seed
        self.drop_last = drop_last
        self._position = torch.zeros(2, dtype=torch.int64).share_memory_()  # (epoch, batches consumed)

    def set_position(self, epoch: int, batches_consumed: int = 0) -> None:
        """Where the next ``iter()`` starts: ``epoch``, after its first ``batches_consumed`` batches."""
        self._position[0] = epoch
        self._position[1] = batches_consumed

    @property
    def position(self) -> tuple[int, int]:
        return int(self._position[0]), int(self._position[1])

    def _worker_bounds(self, source: int, num_workers: int) -> np.ndarray:
        """Sample boundaries [num_workers + 1] of this rank's workers in ``source``'s epoch sequence."""
        n = int(self.units[source][:, 2].sum())
        lo, hi = _bounds(n, self.world_size, self.drop_last)[self.rank : self.rank + 2]
        return lo + _bounds(int(hi - lo), num_workers, drop_last=False)

    def samples_per_worker(self, num_workers: int) -> np.ndarray:
        """Samples each of this rank's ``num_workers`` workers yields per epoch (the same every epoch)."""
        return sum(np.diff(self._worker_bounds(s, num_workers)) for s in range(len(self.units)))

    def worker_plan(self, num_workers: int, batches_consumed: int) -> tuple[np.ndarray, int]:
        """(samples each worker skips, worker-id rotation) to resume after ``batches_consumed`` batches."""
        n = self.samples_per_worker(num_workers)
        served, next_worker = _round_robin(-(-n // self.batch_size), batches_consumed)
        return np.minimum(served * self.batch_size, n), next_worker

    def _segments(self, source: int, epoch: int, worker: int, num_workers: int) -> list[Segment]:
        """The row-group pieces ``worker`` reads from ``source`` this epoch, in order."""
        units = self.units[source]
        units = units[np.random.default_rng([self.seed, epoch, _PERMUTE, source]).permutation(len(units))]
        ends = np.cumsum(units[:, 2])
        lo, hi = self._worker_bounds(source, num_workers)[worker : worker + 2]
        segments = []
        for u in range(int(np.searchsorted(ends, lo, side="right")), len(units)):
            first = int(ends[u] - units[u, 2])
            if first >= hi:
                break
            segments.append((int(units[u, 0]), int(units[u, 1]), max(lo - first, 0), min(hi, ends[u]) - first))
        return segments

    def _read_order(self, epoch: int, worker: int, num_workers: int, rng: np.random.Generator) -> Iterator[Key]:
        """Keys of ``worker``'s samples in reading order: the sources interleaved by weight."""
        streams, left = [], []
        for s in range(len(self.units)):
            segments = self._segments(s, epoch, worker, num_workers)
            streams.append((shard, group, row) for shard, group, a, b in segments for row in range(a, b))
            left.append(sum(b - a for *_, a, b in segments))
        left = np.array(left)
        weights = np.where(left > 0, self.weights, 0.0)
        cum = np.cumsum(weights)
        for _ in range(int(left.sum())):
            s = int(np.searchsorted(cum, rng.random() * cum[-1], side="right"))
            yield next(streams[s])
            left[s] -= 1
            if left[s] == 0:
                weights[s] = 0.0
                cum = np.cumsum(weights)

    def _load(self, reader: _RowReader, key: Key, epoch: int) -> Any:
        record = decode_row(reader.row(key))
        if self.transform is None:
            return record
        return self.transform(record, np.random.default_rng([self.seed, epoch, _SAMPLE, *key]))

    def __iter__(self) -> Iterator[Any]:
        info = get_worker_info()
        num_workers, worker_id = (info.num_workers, info.id) if info is not None else (1, 0)
        epoch, consumed = self.position
        skip, rotation = self.worker_plan(num_workers, consumed)
        worker = (worker_id + rotation) % num_workers
        rng = np.random.default_rng([self.seed, epoch, _ORDER, self.rank, worker, num_workers])
        reader = _RowReader(self.shards, cache_size=len(self.units) + 1)
        keys = self._read_order(epoch, worker, num_workers, rng)
        # Samples enter the buffer decoded; while skipping, only keys move, and the buffer is decoded once
        # (grouped by row group) when the first sample after the skipped ones is due.
        pending: dict[Key, Any] = {}
        loaded = skip[worker] == 0
        for n, (pushed, out) in enumerate(_shuffle_buffer(keys, self.shuffle_buffer, rng)):
            for key in pushed:
                pending[key] = self._load(reader, key, epoch) if loaded else None
            if n < skip[worker]:
                del pending[out]
                continue
            if not loaded:
                for key in sorted(pending):
                    pending[key] = self._load(reader, key, epoch)
                loaded = True
            yield pending.pop(out)

    def num_batches(self, num_workers: int) -> int:
        """Batches per epoch on this rank with ``num_workers`` DataLoader workers (each may end partial)."""
        return int(sum(math.ceil(n / self.batch_size) for n in self.samples_per_worker(max(num_workers, 1))))
