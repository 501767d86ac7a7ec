"""Convert one raw dataset into Parquet shards at a single sample rate.

Per record: read at the native rate -> reject zero-length, NaN/Inf and all-flat records -> resample once,
cut into windows, drop leads that are flat in a window (``datamodules.convert``) -> ``shards.write_shard``
(int16 + per-lead scale).

The record list is split into deterministic chunks of about ``records_per_shard`` output records, one
shard per chunk, converted by ``workers`` processes. ``manifest.json`` (``datamodules.manifest``) is the single
source of truth: a rerun skips every chunk whose shard is listed there with the same records and a matching
sha256, so an interrupted run resumes and a finished one is a no-op. Bad records never stop the run: each is
skipped and reported in ``quarantine.csv`` (file, record_id, reason), as is every dropped flat lead. Several
sources can share one output folder (and manifest) as long as they share the sample rate.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Literal

from tqdm import tqdm

from datamodules.convert import ChunkTask, convert_chunk
from datamodules.manifest import QUARANTINE, is_finished, load_manifest, save_manifest, write_quarantine
from datamodules.readers import READERS, Reader, RecordRef, SourceOptions, make_reader
from ecg_dino.splits import CINC2017_SPLITS

log = logging.getLogger(__name__)

MANIFEST_SAVE_SECONDS = 10.0  # save progress at most this often while converting


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


@dataclass(frozen=True)
class PrepareOptions:
    """One source to convert: the raw folder, the shard folder, the target rate and the record selection."""

    source: str = field(metadata={"choices": tuple(sorted(READERS))})
    """dataset kind of the raw folder"""
    raw: Path
    """folder of the raw download"""
    out: Path
    """shard folder (several sources may share it)"""
    sample_rate_hz: float = 250.0
    """target rate"""
    records_per_shard: int = 1000
    """output records (windows) per shard"""
    row_group_size: int = 256
    """records per Parquet row group"""
    workers: int = 1
    """conversion processes"""
    window_seconds: float | None = None
    """window length; default (None) 10 for mitdb/cpsc2021/icentia11k/cinc2017, none for others; 0 = whole records"""
    include_records: list[str] | None = field(default=None, metadata={"parse": parse_names})
    """only these records: 100,101 or @file (one name a line)"""
    exclude_records: list[str] | None = field(default=None, metadata={"parse": parse_names})
    """skip these records: 102,104 or @file"""
    folds: list[int] | None = field(default=None, metadata={"parse": parse_folds})
    """ptbxl: strat_folds to keep, e.g. 1-8"""
    splits: list[str] | None = field(default=None, metadata={"parse": parse_names})
    """cinc2017: splits to keep, e.g. train,val (the test split is never for pretraining)"""
    ptbxl_records: Literal["records500", "records100"] = "records500"
    """ptbxl: sampling folder"""
    code15_mv_per_unit: float = 1.0
    """code15: millivolts per stored unit"""
    source_options: SourceOptions = field(default_factory=SourceOptions)

    def __post_init__(self) -> None:
        if self.folds is not None and self.source != "ptbxl":
            raise ValueError("--folds applies to --source ptbxl only")
        if self.splits is not None and self.source != "cinc2017":
            raise ValueError("--splits applies to --source cinc2017 only")
        if self.splits is not None and set(self.splits) - set(CINC2017_SPLITS):
            raise ValueError(f"--splits: choose from {', '.join(CINC2017_SPLITS)}, not {','.join(self.splits)}")
        if self.records_per_shard < 1 or self.row_group_size < 1:
            raise ValueError("--records-per-shard and --row-group-size must be positive")
        self.source_options.reader_options(self.source)  # options the source does not read are an error


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


def reader_options(args: PrepareOptions) -> dict[str, Any]:
    """Constructor options of the chosen reader."""
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
    return options | args.source_options.reader_options(args.source)


def run_settings(args: PrepareOptions, reader: Reader) -> dict[str, Any]:
    """The arguments that decide shard contents; finished shards are reused only when they are unchanged."""
    settings = {**reader_options(args), "window_seconds": reader.window_seconds}
    for key in ("source", "sample_rate_hz", "records_per_shard", "row_group_size"):
        settings[key] = getattr(args, key)
    settings["raw"] = str(Path(args.raw).resolve())
    return settings


def shard_name(source: str, index: int) -> str:
    """The file name of a source's ``index``-th shard."""
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


def run(args: PrepareOptions) -> dict[str, int]:
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


def _convert_all(reader: Reader, tasks: list[ChunkTask], workers: int) -> Iterator[tuple[ChunkTask, dict[str, Any]]]:
    """Yield ``(task, manifest entry)`` as chunks finish, in this process or in ``workers`` processes."""
    if workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            yield task, convert_chunk(reader, task)
        return
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(convert_chunk, reader, task): task for task in tasks}
        for future in as_completed(futures):
            yield futures[future], future.result()
