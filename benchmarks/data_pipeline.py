"""Data pipeline throughput, samples/s on one core: (a) ``wfdb.rdrecord`` on raw records, (b) streaming the
shards, (c) streaming + multi-crop + noise + amplitude + collate, on MIT-BIH 10 s windows and PTB-XL 500 Hz
records (both resampled to 250 Hz for the shards). Not a test.

    .venv/bin/python benchmarks/data_pipeline.py [--data ../shared/data] [--out data_cache/bench]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import wfdb
from scipy.signal import resample_poly
from torch.utils.data import DataLoader

from datamodules.augment import AmplitudeScale, PretrainTransform
from datamodules.multicrop import MultiCrop, collate_multicrop
from datamodules.noise import NoiseBank, NoiseInjector
from datamodules.record import ECGRecord
from datamodules.shards import write_shard
from datamodules.streaming import ShardStream

RATE = 250.0
WINDOW_SECONDS = 10.0


def mitdb_windows(root: Path, n_records: int) -> Iterator[tuple[str, int, int]]:
    """(record path, first sample, end sample) of every whole 10 s window of the first ``n_records``."""
    for name in sorted(p.stem for p in root.glob("*.hea"))[:n_records]:
        header = wfdb.rdheader(str(root / name))
        step = int(WINDOW_SECONDS * header.fs)
        for start in range(0, header.sig_len - step + 1, step):
            yield str(root / name), start, start + step


def ptbxl_paths(root: Path) -> list[str]:
    return sorted(str(p.with_suffix("")) for p in (root / "records500").rglob("*.hea"))


def to_record(path: str, signal_mv: np.ndarray, fs: float, leads: list[str], record_id: str) -> ECGRecord:
    """Raw [T, L] -> an ECGRecord at 250 Hz (the benchmark's own quick conversion)."""
    up, down = int(RATE), int(fs)
    signal = resample_poly(np.nan_to_num(signal_mv.T), up, down, axis=1)
    return ECGRecord(signal, RATE, tuple(leads), record_id, Path(path).name, Path(path).parent.name)


def write_shards(records: Iterator[ECGRecord], out: Path, per_shard: int = 1000) -> list[str]:
    out.mkdir(parents=True, exist_ok=True)
    paths, chunk = [], []
    for record in records:
        chunk.append(record)
        if len(chunk) == per_shard:
            paths.append(str(out / f"{len(paths):03d}.parquet"))
            write_shard(chunk, paths[-1])
            chunk = []
    if chunk:
        paths.append(str(out / f"{len(paths):03d}.parquet"))
        write_shard(chunk, paths[-1])
    return paths


def rate(fn: Callable[[], int], min_seconds: float = 3.0) -> float:
    """Samples per second of ``fn`` (which returns how many samples it produced), repeated for a while."""
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < min_seconds:
        n += fn()
    return n / (time.perf_counter() - start)


def read_raw(items: list[tuple[str, int, int]]) -> int:
    for path, start, stop in items:
        wfdb.rdrecord(path, sampfrom=start, sampto=stop)
    return len(items)


def stream_only(paths: list[str]) -> int:
    return sum(1 for _ in ShardStream({"bench": paths}, shuffle_buffer=512))


def stream_crops(paths: list[str], noise: NoiseInjector, batch_size: int = 64) -> int:
    transform = PretrainTransform(MultiCrop(), RATE, WINDOW_SECONDS, noise, AmplitudeScale())
    stream = ShardStream({"bench": paths}, transform=transform, batch_size=batch_size, shuffle_buffer=512)
    loader = DataLoader(stream, batch_size=batch_size, num_workers=0, collate_fn=collate_multicrop)
    return sum(batch["global"]["signal"].shape[0] // 2 for batch in loader)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data", help="folder holding mitdb/, ptbxl/, nstdb/")
    parser.add_argument("--out", default="data_cache/bench", help="where the benchmark writes its shards")
    parser.add_argument("--mitdb-records", type=int, default=8, help="MIT-BIH records to cut into windows")
    args = parser.parse_args()
    data, out = Path(args.data), Path(args.out)

    mitdb = list(mitdb_windows(data / "mitdb", args.mitdb_records))
    ptbxl = [(p, 0, None) for p in ptbxl_paths(data / "ptbxl")]
    datasets = {"mitdb 2-lead 10 s windows": mitdb, "ptbxl 12-lead 10 s @500 Hz": ptbxl}
    noise = NoiseInjector(NoiseBank(data / "nstdb", RATE, "train"), p=0.5)

    print(f"{'dataset':30s} {'(a) wfdb':>10s} {'(b) shards':>11s} {'(c) +crops':>11s} {'b/a':>6s} {'c/a':>6s}")
    for name, items in datasets.items():
        shard_dir = out / name.split()[0]
        paths = sorted(str(p) for p in shard_dir.glob("*.parquet"))
        if not paths:
            records = (
                to_record(path, r.p_signal, r.fs, r.sig_name, f"{Path(path).name}_{start}")
                for path, start, stop in items
                for r in [wfdb.rdrecord(path, sampfrom=start, sampto=stop)]
            )
            paths = write_shards(records, shard_dir)
        a = rate(lambda items=items: read_raw(items))
        b = rate(lambda paths=paths: stream_only(paths))
        c = rate(lambda paths=paths: stream_crops(paths, noise))
        print(f"{name:30s} {a:10.0f} {b:11.0f} {c:11.0f} {b / a:6.1f} {c / a:6.1f}")
    print(f"samples/s, one core; {len(mitdb)} MIT-BIH windows, {len(ptbxl)} PTB-XL records; target (c) >= 500")


if __name__ == "__main__":
    main()
