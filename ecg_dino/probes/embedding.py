"""The probes' feature functions over a split: record features under a test-time condition, the clean records'
patch tokens, and beat features, each computed once per backbone and condition and kept in the embedding cache."""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from datamodules.record import ECGRecord
from ecg_dino.features.backbone import BackboneSpec
from ecg_dino.features.beats import BeatOptions, Beats, beat_table, feature_columns
from ecg_dino.features.cache import EmbeddingCache
from ecg_dino.features.context import embed_beat_features
from ecg_dino.features.records import EmbedOptions, embed_records
from ecg_dino.model.vit import ECGViT
from ecg_dino.probes import cinc2017, ptbxl
from ecg_dino.probes.attentive import RecordTokens
from ecg_dino.probes.options import RecordProbeOptions
from ecg_dino.probes.robustness import Condition, apply_condition, condition_rng

Timings = dict[str, float]
RecordFeatures = Callable[[str, list[int], Condition | None], np.ndarray]
Tokens = Callable[[], RecordTokens]
BeatFeatures = Callable[[list[ECGRecord], Beats, Condition | None], np.ndarray]


def index_key(indices: Any) -> str:
    """A short hash of an index array, for cache keys of record or beat subsets."""
    return hashlib.sha256(np.asarray(indices, dtype=np.int64).tobytes()).hexdigest()[:16]


def record_embedder(
    split: ptbxl.PTBXLSplit | cinc2017.CinC2017Split,
    spec: BackboneSpec,
    backbone: Callable[[], ECGViT],
    options: EmbedOptions,
    cache: EmbeddingCache,
    noise_dir: Path,
    seed: int,
    timings: Timings,
) -> tuple[RecordFeatures, Tokens]:
    """``embed(tag, indices, condition)`` -> [cls ‖ mean patch] features of those records of a split, and
    ``tokens()`` -> the patch tokens of every clean record (``options.patches``), from one cached table."""
    data = split.data_key
    tables: dict[str, dict[str, Any]] = {}

    def records(indices: list[int], condition: Condition | None) -> Any:
        model = backbone()
        for i in indices:
            record = split.reader.load(split.refs[i])
            if condition is not None:
                record = apply_condition(
                    record, condition, model.sample_rate_hz, condition_rng(seed, condition, i), noise_dir
                )
            yield record

    def columns(tag: str, indices: list[int], condition: Condition | None) -> dict[str, Any]:
        opts = options if condition is None else replace(options, patches=False)  # tokens: clean records only

        def compute() -> dict[str, Any]:
            t0 = time.perf_counter()
            cols = embed_records(backbone(), records(indices, condition), opts, len(indices), desc=tag)
            timings[tag] = time.perf_counter() - t0
            return cols

        key = f"{data}:{tag}:{seed if condition else ''}:{index_key(indices)}"
        if key not in tables:
            tables[key] = cache.get_or_compute(spec.cache_key(), key, opts, compute)
        return tables[key]

    def embed(tag: str, indices: list[int], condition: Condition | None) -> np.ndarray:
        cols = columns(tag, indices, condition)
        return np.concatenate([cols["cls"], cols["mean"]], axis=1)

    def tokens() -> RecordTokens:
        if not options.patches:
            raise ValueError("patch tokens need EmbedOptions(patches=True)")
        cols = columns("clean", list(range(len(split.refs))), None)
        return RecordTokens(cols["patches"], cols["patch_valid"], backbone().patch_seconds)

    return embed, tokens


def record_features(
    opts: RecordProbeOptions, split: ptbxl.PTBXLSplit | cinc2017.CinC2017Split, noise_dir: Path
) -> dict[str, tuple[RecordFeatures, Tokens, Timings]]:
    """Per backbone (``model`` and, unless disabled, ``random_init``): ``record_embedder``'s two functions and the
    seconds spent embedding, all through one embedding cache; nothing is loaded or embedded until asked."""
    cache = EmbeddingCache(opts.cache_dir)
    out = {}
    for name, spec in opts.backbone_specs().items():
        timings: Timings = {}
        embed, tokens = record_embedder(
            split, spec, functools.cache(spec.load), opts.embed_options(), cache, noise_dir, opts.seed, timings
        )
        out[name] = (embed, tokens, timings)
    return out


def beat_featurizer(
    spec: BackboneSpec,
    backbone: Callable[[], ECGViT],
    options: BeatOptions,
    cache: EmbeddingCache,
    noise_dir: Path,
    seed: int,
    timings: Timings,
) -> BeatFeatures:
    """``features(records, beats, condition)`` -> beat features in ``beats`` order, cached per record."""

    def features(records: list[ECGRecord], beats: Beats, condition: Condition | None) -> np.ndarray:
        out = []
        for i, record in enumerate(records):
            samples = beats.sample[beats.record_id == record.record_id]
            if len(samples) == 0:
                continue

            def compute(record: ECGRecord = record, samples: np.ndarray = samples, i: int = i) -> dict[str, Any]:
                model = backbone()
                if condition is not None:  # the noisy record comes back at the model's rate: move R peaks with it
                    noisy = apply_condition(
                        record, condition, model.sample_rate_hz, condition_rng(seed, condition, i), noise_dir
                    )
                    samples = np.round(samples * noisy.sample_rate_hz / record.sample_rate_hz).astype(np.int64)
                    record = noisy
                t0 = time.perf_counter()
                x = embed_beat_features(model, record, samples, options)
                timings["seconds"] = timings.get("seconds", 0.0) + time.perf_counter() - t0
                timings["beats"] = timings.get("beats", 0) + len(samples)
                return {"features": x}

            fingerprint = hashlib.sha256(record.signal.tobytes()).hexdigest()[:16]
            key = (
                f"beats:{record.record_id}:{fingerprint}:{condition.name if condition else 'clean'}:"
                f"{seed if condition else ''}:{index_key(samples)}{':r-at-model-rate' if condition else ''}"
            )
            out.append(cache.get_or_compute(spec.cache_key(), key, options, compute)["features"])
        return np.concatenate(out)

    return features


def feature_part(feats: BeatFeatures, part: str) -> BeatFeatures:
    """``feats`` restricted to one part of the beat embedding (``features.beats.feature_columns``)."""
    return lambda records, beats, condition: feature_columns(feats(records, beats, condition), part)


REFERENCE_BEATS = 128


def record_centred(feats: BeatFeatures, reference_beats: int = REFERENCE_BEATS) -> BeatFeatures:
    """``feats`` minus, per record, the median feature of up to ``reference_beats`` of its beats, evenly spaced in
    time and embedded under the same condition. The head then reads how a beat differs from this patient's usual
    beat, as de Chazal's RR features read an interval against the record's mean; no label is used, and a class-
    stratified subsample is centred on the same reference as the whole record."""

    def centred(records: list[ECGRecord], beats: Beats, condition: Condition | None) -> np.ndarray:
        x = feats(records, beats, condition)
        reference = reference_table(records, reference_beats)
        position = {key: i for i, key in enumerate(zip(beats.record_id, beats.sample))}
        among = [position.get(key) for key in zip(reference.record_id, reference.sample)]
        # The whole record's beats (the usual call) hold the reference beats: no second embedding.
        ref = x[among] if None not in among else feats(records, reference, condition)
        ids, row = np.unique(beats.record_id, return_inverse=True)
        usual = np.stack([np.median(ref[reference.record_id == record_id], axis=0) for record_id in ids])
        return x - usual[row]

    return centred


def reference_table(records: list[ECGRecord], per_record: int) -> Beats:
    """Up to ``per_record`` beats of each record, evenly spaced over its beats in time, whatever their class."""
    beats = beat_table(records)
    keep = []
    for record_id in dict.fromkeys(beats.record_id):
        idx = np.flatnonzero(beats.record_id == record_id)
        idx = idx[np.argsort(beats.sample[idx], kind="stable")]
        keep.append(idx[np.unique(np.linspace(0, len(idx) - 1, min(per_record, len(idx))).round().astype(int))])
    return beats.take(np.sort(np.concatenate(keep)))
