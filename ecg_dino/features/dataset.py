"""One dataset folder -> one Parquet table of record (or beat) embeddings, through the embedding cache."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ecg_dino.checkpoint import trained_crop_seconds
from ecg_dino.features.backbone import BackboneSpec, CheckpointOptions
from ecg_dino.features.beats import FEATURE_KINDS, BeatOptions
from ecg_dino.features.cache import DEFAULT_CACHE, EmbeddingCache, write_table
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


def embed_dataset(job: DatasetEmbedding) -> int:
    """Embed every record (or beat) of ``job.data`` into ``job.out``; returns the number of rows written."""
    spec = BackboneSpec(job.ckpt, job.which)
    backbone = spec.load()
    source = open_source(job.data, job.source)
    cache = EmbeddingCache(job.cache_dir)
    if job.beats:
        crop = trained_crop_seconds(job.ckpt) if job.beat_features == "context" else None
        beat_options = BeatOptions(precision=job.options.precision, features=job.beat_features, crop_seconds=crop)
        columns = cache.get_or_compute(
            spec.cache_key(),
            f"{source.key}:beats",
            beat_options,
            lambda: beat_embedding_table(backbone, source.records(), beat_options),
        )
    else:
        columns = cache.get_or_compute(
            spec.cache_key(),
            source.key,
            job.options,
            lambda: embed_records(backbone, source.records(), job.options, len(source)),
        )
    write_table(columns, job.out)
    return len(columns["record_id"])
