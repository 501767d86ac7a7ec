"""One dataset folder -> one Parquet table of record (or beat) embeddings, through the embedding cache.

Bad raw records are skipped, never the rest: their ``[file, record_id, reason]`` rows (and a kept record's notes)
go to ``<out>.quarantine.csv`` beside the table; a folder with no usable record at all is an error.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from datamodules.readers import SourceOptions
from datamodules.record import BadRecordError
from ecg_dino.checkpoint import trained_crop_seconds
from ecg_dino.features.backbone import BackboneSpec, CheckpointOptions
from ecg_dino.features.beats import FEATURE_KINDS, BeatOptions
from ecg_dino.features.cache import DEFAULT_CACHE, QUARANTINE, EmbeddingCache, write_table
from ecg_dino.features.context import beat_embedding_table
from ecg_dino.features.records import EmbedOptions, embed_records
from ecg_dino.features.sources import SOURCES, open_source


@dataclass(frozen=True, kw_only=True)
class DatasetEmbedding(CheckpointOptions):
    """What ``ecg-dino embed`` writes: which weights, which folder, records or beats, where."""

    data: Path
    """dataset folder (raw download or Parquet shards)"""
    out: Path
    """output .parquet"""
    source: str | None = field(default=None, metadata={"choices": SOURCES})
    """dataset kind (default: guessed from the folder)"""
    options: EmbedOptions = field(default_factory=EmbedOptions)
    beats: bool = False
    """per-beat embeddings (annotated beats, else R peaks from neurokit2) instead of per record"""
    beat_features: str = field(default=BeatOptions.features, metadata={"choices": FEATURE_KINDS})
    """with --beats: window (a 1.4 s window per beat) or context (sliding crops of the pretraining's crop length)"""
    cache_dir: Path | None = DEFAULT_CACHE
    """embedding cache ('' disables it)"""
    source_options: SourceOptions = field(default_factory=SourceOptions)


@dataclass(frozen=True)
class EmbeddingSummary:
    """What ``embed_dataset`` wrote: the row count and the quarantine rows (and their file, when any)."""

    rows: int
    quarantine: list[list[str]]
    quarantine_file: Path | None


def quarantine_path(out: Path) -> Path:
    """``emb.parquet`` -> ``emb.quarantine.csv``."""
    return out.with_suffix(".quarantine.csv")


def embed_dataset(job: DatasetEmbedding) -> EmbeddingSummary:
    """Embed every usable record (or beat) of ``job.data`` into ``job.out``; bad records are skipped and listed."""
    spec = BackboneSpec(job.ckpt, job.which)
    backbone = spec.load()
    source = open_source(job.data, job.source, job.source_options)
    cache = EmbeddingCache(job.cache_dir)
    if job.beats:
        crop = trained_crop_seconds(job.ckpt) if job.beat_features == "context" else None
        beat_options = BeatOptions(precision=job.options.precision, features=job.beat_features, crop_seconds=crop)
        columns = cache.get_or_compute(
            spec.cache_key(),
            f"{source.key}:beats",
            beat_options,
            lambda: {**beat_embedding_table(backbone, source.records(), beat_options), QUARANTINE: source.quarantine},
        )
    else:
        columns = cache.get_or_compute(
            spec.cache_key(),
            source.key,
            job.options,
            lambda: {
                **embed_records(backbone, source.records(), job.options, len(source)),
                QUARANTINE: source.quarantine,
            },
        )
    quarantine = columns.get(QUARANTINE) or []
    rows = len(columns["record_id"])
    skipped = {row[1] for row in quarantine} - set(columns["record_id"])
    if skipped and not rows:
        first = next(row[2] for row in quarantine if row[1] in skipped)
        raise BadRecordError(f"{job.data}: no record could be embedded ({len(skipped)} skipped); {first}")
    write_table(columns, job.out)
    qfile = quarantine_path(job.out)
    qfile.unlink(missing_ok=True)  # a previous run's list
    if quarantine:
        with qfile.open("w", newline="") as f:
            csv.writer(f).writerows([["file", "record_id", "reason"], *quarantine])
    return EmbeddingSummary(rows, quarantine, qfile if quarantine else None)
