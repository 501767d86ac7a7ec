"""``probe-cinc2017`` end to end: the checkpoint and its random-init twin, the 4-class rhythm heads (linear at each
label fraction with noise robustness, and/or attentive), paired differences, the report."""

from __future__ import annotations

import functools
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ecg_dino.features.cache import EmbeddingCache
from ecg_dino.features.records import EmbedOptions
from ecg_dino.probes import cinc2017
from ecg_dino.probes.embedding import record_embedder
from ecg_dino.probes.options import HEAD_TEXT, HEADS, CinC2017ProbeOptions
from ecg_dino.probes.report import write_report
from ecg_dino.probes.robustness import noise_conditions, noise_source


def probe_cinc2017(opts: CinC2017ProbeOptions) -> Path:
    """Probe ``opts.ckpt`` on CinC 2017; returns the report folder (``report.md``, ``report.json``, figures)."""
    heads = HEADS[opts.head]
    options = EmbedOptions(
        crop_seconds=opts.crop_seconds,
        precision=opts.precision,
        batch_size=opts.batch_size,
        patches="attentive" in heads,
    )
    split = cinc2017.CinC2017Split.load(opts.cinc2017, opts.limit)
    noise_dir = opts.noise_folder(opts.cinc2017)
    conditions = noise_conditions(noise_types=opts.noise_types) if opts.robustness else []  # one lead: no subsets
    cache = EmbeddingCache(opts.cache_dir)
    models: dict[str, Any] = {}
    timings: dict[str, dict[str, float]] = {}
    probs: dict[str, Any] = {}
    for name, spec in opts.backbone_specs().items():
        timings[name] = {}
        embed, tokens = record_embedder(
            split, spec, functools.cache(spec.load), options, cache, noise_dir, opts.seed, timings[name]
        )
        models[name], probs[name] = cinc2017.run_cinc2017(
            split,
            embed,
            tokens,
            heads,
            opts.fractions,
            conditions if "linear" in heads else [],
            opts.seed,
            opts.n_boot,
            opts.attentive_queries,
        )
    if "random_init" in probs and opts.n_boot:
        y_test = split.labels[split.indices("test")]
        for head in heads:
            paired = cinc2017.paired_differences(
                probs["model"][head], probs["random_init"][head], y_test, opts.n_boot, opts.seed
            )
            (models["model"] if head == "linear" else models["model"][head])["vs_random_init"] = paired
    crop, stride = options.crop_seconds, options.stride_fraction * options.crop_seconds
    report = {
        "probe": "cinc2017",
        "checkpoint": str(opts.ckpt),
        "models": models,
        "settings": {
            "embedding": asdict(options),
            "features": f"class token ‖ mean of valid patch tokens, each averaged over sliding {crop:g} s crops "
            f"every {stride:g} s (the last flush with the record's end)",
            "head": HEAD_TEXT[opts.head].format(queries=opts.attentive_queries),
            "seed": opts.seed,
            "bootstrap": f"{opts.n_boot} resamples of test records",
            "label fractions": f"{list(opts.fractions)} of the training records, stratified by class",
            "noise": f"{noise_source(noise_dir) if conditions else 'not run'} ({noise_dir})",
            "embedding seconds": {m: round(sum(t.values()), 1) for m, t in timings.items()},
        },
        "data": {
            "folder": str(opts.cinc2017),
            "records": len(split.refs),
            "records per class (train/val/test)": split.counts(),
            "left out": {"listings": len(split.left_out), "why (first 3)": split.left_out[:3]},
        },
    }
    out = opts.report_dir("probe-cinc2017")
    write_report(report, out, opts.step)
    return out
