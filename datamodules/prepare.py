"""``ecg-dino prepare``: convert one raw dataset into Parquet shards at a single sample rate.

Per record: read at the native rate -> reject zero-length, NaN/Inf and all-flat records -> resample once
with ``resample_poly`` (``padtype="line"``, so a baseline offset makes no edge transient) -> cut into
windows -> drop leads that are flat in a window -> ``shards.write_shard`` (int16 + per-lead scale).

The record list is split into deterministic chunks of about ``--records-per-shard`` output records, one
shard per chunk, converted by ``--workers`` processes. ``manifest.json`` is the single source of truth:
a rerun skips every chunk whose shard is listed there with the same records and a matching sha256, so an
interrupted run resumes and a finished one is a no-op. Bad records never stop the run: each is skipped
and reported in ``quarantine.csv`` (file, record_id, reason), as is every dropped flat lead. Several
sources can share one output folder (and manifest) as long as they share the sample rate.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from fractions import Fraction
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from scipy.signal import resample_poly
from tqdm import tqdm

from datamodules.readers import READERS, Reader, RecordRef, make_reader
from datamodules.readers.base import take_window, window_bounds, window_id
from datamodules.readers.cinc2017 import SPLITS as CINC2017_SPLITS
from datamodules.record import BadRecordError, ECGRecord, check_signal
from datamodules.shards import file_sha256, write_shard

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
QUARANTINE = "quarantine.csv"
MANIFEST_SAVE_SECONDS = 10.0  # save progress at most this often while converting


class PrepareError(Exception):
    """A run that cannot start, e.g. an output folder prepared at another sample rate."""


# ---------------------------------------------------------------- one record -> shard records


def resample_ratio(rate_in_hz: float, rate_out_hz: float) -> tuple[int, int]:
    """``(up, down)`` with ``rate_out = rate_in * up / down``, e.g. 360 -> 250 Hz is (25, 36)."""
    ratio = Fraction(rate_out_hz).limit_denominator(1000) / Fraction(rate_in_hz).limit_denominator(1000)
    return ratio.numerator, ratio.denominator


def resample(signal: np.ndarray, up: int, down: int) -> np.ndarray:
    """float32 [L, T] -> [L, ceil(T * up / down)] by polyphase filtering."""
    if up == down:
        return signal
    out = resample_poly(signal.astype(np.float64), up, down, axis=1, padtype="line")
    return out.astype(np.float32)


def rescale_annotations(
    annotations: dict[str, Any] | None, up: int, down: int, num_in: int, num_out: int
) -> dict[str, Any] | None:
    """Annotation samples mapped to the new rate; those outside the native signal are dropped."""
    if annotations is None:
        return None
    sample = np.asarray(annotations["sample"], dtype=np.int64)
    keep = np.flatnonzero((sample >= 0) & (sample < num_in))
    moved = np.minimum(np.rint(sample[keep] * up / down), num_out - 1)
    out: dict[str, Any] = {"sample": moved.astype(np.int64)}
    for key, values in annotations.items():
        if key != "sample":
            out[key] = [values[i] for i in keep]
    return out


def convert_record(
    record: ECGRecord, sample_rate_hz: float, window_seconds: float | None, where: str
) -> tuple[list[ECGRecord], list[tuple[str, str]]]:
    """Shard records of one checked record, and ``(record_id, reason)`` notes for dropped leads/windows.

    Flatness is judged on the native samples each window covers, before the filter smears neighbours in.
    """
    up, down = resample_ratio(record.sample_rate_hz, sample_rate_hz)
    signal = resample(record.signal, up, down)  # [L, T']
    n_in, n_out = record.num_samples, signal.shape[1]
    resampled = replace(
        record,
        signal=signal,
        sample_rate_hz=float(sample_rate_hz),
        annotations=rescale_annotations(record.annotations, up, down, n_in, n_out),
    )
    windows, notes = [], []
    for k, (start, stop) in enumerate(window_bounds(n_out, sample_rate_hz, window_seconds)):
        record_id = window_id(record.record_id, k) if window_seconds else record.record_id
        native = record.signal[:, start * down // up : min(n_in, -(-stop * down // up))]
        flat = np.ptp(native, axis=1) == 0
        if flat.all():
            notes.append((record_id, f"{where}: every lead is flat (constant) in window {k}; window skipped"))
            continue
        window = take_window(resampled, start, stop, record_id)
        if flat.any():
            dropped = [lead for lead, f in zip(window.leads, flat) if f]
            reason = f"{where}: flat (constant) lead {', '.join(dropped)} dropped; record kept"
            notes.append((record_id, reason))
            window = replace(
                window,
                signal=window.signal[~flat],
                leads=tuple(lead for lead, f in zip(window.leads, flat) if not f),
            )
        windows.append(window)
    return windows, notes


def reason_for(error: Exception, ref: RecordRef) -> str:
    """A quarantine reason naming the file: a ``BadRecordError`` already does, anything else gets the path."""
    if isinstance(error, BadRecordError):
        return str(error)
    return f"{ref.path}: {type(error).__name__}: {error}"


# ---------------------------------------------------------------- one chunk -> one shard


@dataclass(frozen=True)
class ChunkTask:
    """One shard to write: the refs of one chunk and how to convert them."""

    refs: tuple[RecordRef, ...]
    path: Path
    sample_rate_hz: float
    window_seconds: float | None
    row_group_size: int


def convert_chunk(reader: Reader, task: ChunkTask) -> dict[str, Any]:
    """Write the shard of one chunk; return its manifest entry, quarantine rows included."""
    quarantine: list[list[str]] = []

    def records():
        for ref in task.refs:
            try:
                record = reader.load(ref)
                check_signal(record, ref.path)
                windows, notes = convert_record(record, task.sample_rate_hz, task.window_seconds, ref.path)
            except Exception as e:  # one bad record must not stop the conversion of the rest
                quarantine.append([ref.path, ref.record_id, reason_for(e, ref)])
                continue
            quarantine.extend([ref.path, record_id, reason] for record_id, reason in notes)
            yield from windows

    entry = write_shard(records(), task.path, task.row_group_size)
    return {
        **entry,
        "source": reader.source,
        "records_sha256": records_key(task.refs),
        "quarantine": quarantine,
    }


def records_key(refs: tuple[RecordRef, ...] | list[RecordRef]) -> str:
    """Fingerprint of a chunk's record ids: a finished shard is reused only for the same records."""
    return hashlib.sha256("\n".join(r.record_id for r in refs).encode()).hexdigest()


# ---------------------------------------------------------------- planning


def drop_duplicates(refs: list[RecordRef]) -> tuple[list[RecordRef], list[list[str]]]:
    """Keep the first ref of each record id; quarantine the later ones."""
    first: dict[str, RecordRef] = {}
    kept, quarantine = [], []
    for ref in refs:
        if ref.record_id in first:
            earlier = first[ref.record_id].path
            reason = f"{ref.path}: duplicate record id {ref.record_id} (first in {earlier}); skipped"
            quarantine.append([ref.path, ref.record_id, reason])
        else:
            first[ref.record_id] = ref
            kept.append(ref)
    return kept, quarantine


def plan_chunks(refs: list[RecordRef], weights: list[int], records_per_shard: int) -> list[list[RecordRef]]:
    """Consecutive chunks of at most ``records_per_shard`` output records (one long record may exceed it)."""
    chunks: list[list[RecordRef]] = []
    current: list[RecordRef] = []
    size = 0
    for ref, weight in zip(refs, weights):
        if current and size + weight > records_per_shard:
            chunks.append(current)
            current, size = [], 0
        current.append(ref)
        size += weight
    if current:
        chunks.append(current)
    return chunks


# ---------------------------------------------------------------- manifest


def load_manifest(out: Path, sample_rate_hz: float) -> dict[str, Any]:
    """The folder's manifest, or a new one; refuses a folder prepared at another rate."""
    path = out / MANIFEST
    if not path.is_file():
        return {
            "target_sample_rate_hz": float(sample_rate_hz),
            "shards": [],
            "sources": {},
            "quarantine_count": 0,
        }
    manifest = json.loads(path.read_text())
    if manifest["target_sample_rate_hz"] != float(sample_rate_hz):
        raise PrepareError(
            f"{path}: shards here are at {manifest['target_sample_rate_hz']} Hz, not {sample_rate_hz} Hz; "
            "use another --out folder"
        )
    return manifest


def save_manifest(out: Path, manifest: dict[str, Any]) -> None:
    """Recompute the totals and write ``manifest.json`` atomically."""
    manifest["shards"].sort(key=lambda e: e["path"])
    rate = manifest["target_sample_rate_hz"]
    for source, totals in manifest["sources"].items():
        entries = [e for e in manifest["shards"] if e["source"] == source]
        totals["records"] = sum(e["num_records"] for e in entries)
        totals["samples"] = sum(e["num_samples"] for e in entries)
        totals["seconds"] = totals["samples"] / rate
        rows = totals.setdefault("quarantine", [])
        totals["quarantined"] = len(rows) + sum(len(e.get("quarantine", [])) for e in entries)
    manifest["quarantine_count"] = sum(t["quarantined"] for t in manifest["sources"].values())
    tmp = out / f"{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=1))
    tmp.replace(out / MANIFEST)


def write_quarantine(out: Path, manifest: dict[str, Any]) -> None:
    """Render every source's quarantine rows (listing first, then shard by shard) to ``quarantine.csv``."""
    with open(out / QUARANTINE, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "record_id", "reason"])
        for source, totals in sorted(manifest["sources"].items()):
            writer.writerows(totals.get("quarantine", []))
            for entry in manifest["shards"]:
                if entry["source"] == source:
                    writer.writerows(entry.get("quarantine", []))


def is_finished(out: Path, entry: dict[str, Any] | None, refs: list[RecordRef]) -> bool:
    """The shard of this chunk is already written: same records, file present with the listed sha256."""
    return (
        entry is not None
        and entry["records_sha256"] == records_key(refs)
        and (out / entry["path"]).is_file()
        and file_sha256(out / entry["path"]) == entry["sha256"]
    )


# ---------------------------------------------------------------- the run


def reader_options(args: argparse.Namespace) -> dict[str, Any]:
    """Constructor options of the chosen reader from the command line."""
    options: dict[str, Any] = {
        "records": args.include_records,
        "exclude": args.exclude_records,
        "window_seconds": args.window_seconds,
    }
    if args.source == "ptbxl":
        options |= {"folds": args.folds, "records_folder": args.ptbxl_records}
    if args.source == "code15":
        options["mv_per_unit"] = args.code15_mv_per_unit
    if args.source == "cinc2017":
        options["splits"] = args.splits
    return options


def run_settings(args: argparse.Namespace, reader: Reader) -> dict[str, Any]:
    """The arguments that decide shard contents; finished shards are reused only when they are unchanged."""
    settings = {**reader_options(args), "window_seconds": reader.window_seconds}
    for key in ("source", "sample_rate_hz", "records_per_shard", "row_group_size"):
        settings[key] = vars(args)[key]
    settings["raw"] = str(Path(args.raw).resolve())
    return settings


def shard_name(source: str, index: int) -> str:
    return f"{source}-{index:05d}.parquet"


def resume(
    out: Path, manifest: dict[str, Any], source: str, settings: dict[str, Any], chunks: list[list[RecordRef]]
) -> tuple[list[dict[str, Any]], list[int]]:
    """Manifest entries of the chunks already converted with these settings, and the chunks left to do.

    Shards of this source that the new plan no longer has are deleted.
    """
    old = {e["path"]: e for e in manifest["shards"] if e["source"] == source}
    reusable = old if manifest["sources"].get(source, {}).get("args") == settings else {}
    names = [shard_name(source, i) for i in range(len(chunks))]
    for stale in set(old) - set(names):
        (out / stale).unlink(missing_ok=True)
    finished, todo = [], []
    for i, (name, chunk) in enumerate(zip(names, chunks)):
        if is_finished(out, reusable.get(name), chunk):
            finished.append(reusable[name])
        else:
            todo.append(i)
    return finished, todo


def run(args: argparse.Namespace) -> dict[str, int]:
    """Convert ``args.source``; return how many shards were written and skipped and rows quarantined."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest(out, args.sample_rate_hz)
    reader = make_reader(args.source, args.raw, **reader_options(args))
    refs, listing_quarantine = drop_duplicates(reader.list_records())
    chunks = plan_chunks(refs, [reader.count_windows(r) for r in refs], args.records_per_shard)
    settings = run_settings(args, reader)
    finished, todo = resume(out, manifest, args.source, settings, chunks)
    manifest["shards"] = [e for e in manifest["shards"] if e["source"] != args.source] + finished
    manifest["sources"][args.source] = {"args": settings, "quarantine": listing_quarantine}
    save_manifest(out, manifest)
    if finished:
        log.info("%s: skipping %d finished shard(s) of %d", args.source, len(finished), len(chunks))

    tasks = [
        ChunkTask(
            tuple(chunks[i]),
            out / shard_name(args.source, i),
            args.sample_rate_hz,
            reader.window_seconds,
            args.row_group_size,
        )
        for i in todo
    ]
    progress = tqdm(total=len(refs), unit="rec", desc=f"prepare {args.source}", mininterval=1.0)
    progress.update(len(refs) - sum(len(t.refs) for t in tasks))
    last_save = time.monotonic()
    for task, entry in _convert_all(reader, tasks, args.workers):
        manifest["shards"].append(entry)
        progress.update(len(task.refs))
        if time.monotonic() - last_save > MANIFEST_SAVE_SECONDS:
            save_manifest(out, manifest)
            last_save = time.monotonic()
    progress.close()
    save_manifest(out, manifest)
    write_quarantine(out, manifest)
    totals = manifest["sources"][args.source]
    log.info(
        "%s: %d records, %.1f h in %d shard(s) (%d written, %d skipped); %d quarantine row(s) in %s",
        args.source,
        totals["records"],
        totals["seconds"] / 3600,
        len(chunks),
        len(tasks),
        len(finished),
        totals["quarantined"],
        out / QUARANTINE,
    )
    return {"written": len(tasks), "skipped": len(finished), "quarantined": totals["quarantined"]}


def _convert_all(reader: Reader, tasks: list[ChunkTask], workers: int):
    """Yield ``(task, manifest entry)`` as chunks finish, in this process or in ``workers`` processes."""
    if workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            yield task, convert_chunk(reader, task)
        return
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(convert_chunk, reader, task): task for task in tasks}
        for future in as_completed(futures):
            yield futures[future], future.result()


# ---------------------------------------------------------------- command line


def parse_names(text: str) -> list[str]:
    """``"100,101"`` or ``"@names.txt"`` (one per line) -> record names."""
    if text.startswith("@"):
        return [line.strip() for line in Path(text[1:]).read_text().splitlines() if line.strip()]
    return [name.strip() for name in text.split(",") if name.strip()]


def parse_folds(text: str) -> list[int]:
    """``"1-8"``, ``"9,10"`` or ``"1-3,5"`` -> fold numbers."""
    folds: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        folds.extend(range(int(low), int(high or low) + 1))
    return folds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ecg-dino prepare",
        description="Convert a raw ECG dataset into Parquet shards at one sample rate (resumable).",
    )
    parser.add_argument("--source", required=True, choices=sorted(READERS))
    parser.add_argument("--raw", required=True, help="folder of the raw download")
    parser.add_argument("--out", required=True, help="shard folder (several sources may share it)")
    parser.add_argument("--sample-rate-hz", type=float, default=250.0, help="target rate (default 250)")
    parser.add_argument(
        "--records-per-shard",
        type=int,
        default=1000,
        help="output records (windows) per shard (default 1000)",
    )
    parser.add_argument("--row-group-size", type=int, default=256, help="records per Parquet row group")
    parser.add_argument("--workers", type=int, default=1, help="conversion processes (default 1)")
    parser.add_argument(
        "--window-seconds",
        type=float,
        default=None,
        help="window length; default 10 for mitdb/cpsc2021/icentia11k/cinc2017, none for others; 0 = whole records",
    )
    parser.add_argument("--include-records", type=parse_names, help="only these records: 100,101 or @file")
    parser.add_argument("--exclude-records", type=parse_names, help="skip these records: 102,104 or @file")
    parser.add_argument("--folds", type=parse_folds, help="ptbxl: strat_folds to keep, e.g. 1-8")
    parser.add_argument(
        "--splits",
        type=parse_names,
        help="cinc2017: splits to keep, e.g. train,val (the test split is never for pretraining)",
    )
    parser.add_argument(
        "--ptbxl-records", default="records500", choices=["records500", "records100"], help="ptbxl folder"
    )
    parser.add_argument(
        "--code15-mv-per-unit", type=float, default=1.0, help="code15: millivolts per stored unit (default 1)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``ecg-dino prepare``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.folds is not None and args.source != "ptbxl":
        parser.error("--folds applies to --source ptbxl only")
    if args.splits is not None and args.source != "cinc2017":
        parser.error("--splits applies to --source cinc2017 only")
    if args.splits is not None and set(args.splits) - set(CINC2017_SPLITS):
        parser.error(f"--splits: choose from {', '.join(CINC2017_SPLITS)}, not {','.join(args.splits)}")
    if args.records_per_shard < 1 or args.row_group_size < 1:
        parser.error("--records-per-shard and --row-group-size must be positive")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        run(args)
    except (FileNotFoundError, PrepareError) as e:
        log.error("prepare: %s", e)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
