"""``probe-ptbxl`` end to end: the checkpoint and its random-init twin, linear probes on the PTB-XL label sets at
each label fraction with robustness and/or the attentive head, paired differences, the report."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ecg_dino.probes import ptbxl
from ecg_dino.probes.embedding import record_features
from ecg_dino.probes.options import PTBXLProbeOptions
from ecg_dino.probes.report import write_report
from ecg_dino.probes.robustness import lead_conditions, noise_conditions, noise_source
from ecg_dino.splits import PTBXL_TEST_FOLD, PTBXL_TRAIN_FOLDS, PTBXL_VAL_FOLD


def probe_ptbxl(opts: PTBXLProbeOptions) -> Path:
    """Probe ``opts.ckpt`` on PTB-XL; returns the report folder (``report.md``, ``report.json``, figures)."""
    split = ptbxl.PTBXLSplit.load(opts.ptbxl, opts.records_folder, opts.limit)
    noise_dir = opts.noise_folder(opts.ptbxl)
    conditions = noise_conditions(noise_types=opts.noise_types) + lead_conditions() if opts.robustness else []
    features = record_features(opts, split, noise_dir)
    models: dict[str, Any] = {}
    scores: dict[str, Any] = {}
    for name, (embed, tokens, _) in features.items():
        models[name], scores[name] = ptbxl.run_ptbxl(
            split,
            embed,
            tokens,
            opts.heads,
            opts.label_sets,
            opts.fractions,
            conditions if "linear" in opts.heads else [],
            opts.seed,
            opts.n_boot,
            opts.attentive_queries,
        )
    if "random_init" in scores and opts.n_boot:
        statements = ptbxl.read_statements(split.root)
        for label_set, res in models["model"].items():
            for head in opts.heads:
                paired = ptbxl.paired_auroc_difference(
                    split,
                    statements,
                    label_set,
                    scores["model"][label_set][head],
                    scores["random_init"][label_set][head],
                    opts.n_boot,
                    opts.seed,
                )
                (res if head == "linear" else res[head])["vs_random_init"] = paired
    folds = split.folds
    report = {
        "probe": "ptbxl",
        "checkpoint": str(opts.ckpt),
        "models": models,
        "settings": {
            "embedding": asdict(opts.embed_options()),
            "features": "class token ‖ mean of valid patch tokens (linear); every lead × patch token (attentive)",
            "head": opts.head_text(),
            "seed": opts.seed,
            "bootstrap": f"{opts.n_boot} resamples of test records",
            "label fractions": list(opts.fractions),
            "noise": f"{noise_source(noise_dir) if conditions else 'not run'} ({noise_dir})",
            "embedding seconds": {m: round(sum(t.values()), 1) for m, (*_, t) in features.items()},
        },
        "data": {
            "folder": str(opts.ptbxl),
            "records": len(split.refs),
            "train/val/test records": [
                int(np.isin(folds, f).sum()) for f in (PTBXL_TRAIN_FOLDS, (PTBXL_VAL_FOLD,), (PTBXL_TEST_FOLD,))
            ],
        },
    }
    out = opts.report_dir("probe-ptbxl")
    write_report(report, out, opts.step)
    return out
