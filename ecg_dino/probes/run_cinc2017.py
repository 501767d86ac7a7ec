"""``probe-cinc2017`` end to end: the checkpoint and its random-init twin, the 4-class rhythm heads (linear at each
label fraction with noise robustness, and/or attentive), paired differences, the report."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from ecg_dino.probes import cinc2017
from ecg_dino.probes.embedding import record_features
from ecg_dino.probes.options import CinC2017ProbeOptions
from ecg_dino.probes.report import write_report
from ecg_dino.probes.robustness import noise_conditions, noise_source


def probe_cinc2017(opts: CinC2017ProbeOptions) -> Path:
    """Probe ``opts.ckpt`` on CinC 2017; returns the report folder (``report.md``, ``report.json``, figures)."""
    split = cinc2017.CinC2017Split.load(opts.cinc2017, opts.limit)
    noise_dir = opts.noise_folder(opts.cinc2017)
    conditions = noise_conditions(noise_types=opts.noise_types) if opts.robustness else []  # one lead: no subsets
    features = record_features(opts, split, noise_dir)
    models: dict[str, Any] = {}
    probs: dict[str, Any] = {}
    for name, (embed, tokens, _) in features.items():
        models[name], probs[name] = cinc2017.run_cinc2017(
            split,
            embed,
            tokens,
            opts.heads,
            opts.fractions,
            conditions if "linear" in opts.heads else [],
            opts.seed,
            opts.n_boot,
            opts.attentive_queries,
        )
    if "random_init" in probs and opts.n_boot:
        y_test = split.labels[split.indices("test")]
        for head in opts.heads:
            paired = cinc2017.paired_differences(
                probs["model"][head], probs["random_init"][head], y_test, opts.n_boot, opts.seed
            )
            (models["model"] if head == "linear" else models["model"][head])["vs_random_init"] = paired
    options = opts.embed_options()
    crop, stride = options.crop_seconds, options.stride_fraction * options.crop_seconds
    report = {
        "probe": "cinc2017",
        "checkpoint": str(opts.ckpt),
        "models": models,
        "settings": {
            "embedding": asdict(options),
            "features": f"class token ‖ mean of valid patch tokens, each averaged over sliding {crop:g} s crops "
            f"every {stride:g} s (the last flush with the record's end)",
            "head": opts.head_text(),
            "seed": opts.seed,
            "bootstrap": f"{opts.n_boot} resamples of test records",
            "label fractions": f"{list(opts.fractions)} of the training records, stratified by class",
            "noise": f"{noise_source(noise_dir) if conditions else 'not run'} ({noise_dir})",
            "embedding seconds": {m: round(sum(t.values()), 1) for m, (*_, t) in features.items()},
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
