"""``probe-mitbih`` end to end: beat features of the checkpoint and its random-init twin, the AAMI linear head
(DS1 -> DS2 or intra-patient), the RR-interval baseline, NSTDB robustness (added noise on a DS2 subsample and the
real noisy 118e*/119e* records), paired differences, the report."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from datamodules.record import ECGRecord
from ecg_dino.features.beats import BeatOptions, Beats, beat_table, dropped_symbols
from ecg_dino.features.cache import EmbeddingCache
from ecg_dino.leads import parse_lead_map
from ecg_dino.probes import mitbih
from ecg_dino.probes.embedding import REFERENCE_BEATS, BeatFeatures, beat_featurizer, feature_part, record_centred
from ecg_dino.probes.fusion import FOLDS, fuse_heads
from ecg_dino.probes.linear import LinearProbe
from ecg_dino.probes.options import MITBIHProbeOptions
from ecg_dino.probes.report import write_report
from ecg_dino.probes.robustness import noise_conditions, noise_source
from ecg_dino.probes.rr_baseline import rr_features

# Paired macro-AUROC differences on the same DS2 patient resamples: (model, baseline) where both were fitted.
PAIRED = (
    ("model", "random_init"),
    ("model+rr", "rr_baseline"),
    ("random_init+rr", "rr_baseline"),
    ("model+rr", "random_init+rr"),
    ("model+rr_fusion", "rr_baseline"),
    ("random_init+rr_fusion", "rr_baseline"),
    ("model+rr_fusion", "random_init+rr_fusion"),
)


def probe_mitbih(opts: MITBIHProbeOptions) -> Path:
    """Probe ``opts.ckpt`` on MIT-BIH beats; returns the report folder (``report.md``, ``report.json``, figures)."""
    options = opts.beat_options()
    ds2 = mitbih.read_records(opts.mitdb, opts.ds2)
    data: dict[str, Any] = {"folder": str(opts.mitdb)}
    if opts.test_dir is not None:
        split, ds2, data = cross_database_split(opts, ds2)
    elif opts.paradigm == "inter":
        ds1 = mitbih.read_records(opts.mitdb, opts.ds1)
        split = mitbih.inter_patient_split(ds1, ds2, opts.val_records, opts.seed)
    else:
        split = mitbih.intra_patient_split(ds2)
    train, test = np.flatnonzero(split.train), np.flatnonzero(~split.train)
    beats1, beats2, in_val = split.beats.take(train), split.beats.take(test), split.val[train]
    noise_dir = opts.noise_folder(opts.mitdb)
    cache = EmbeddingCache(opts.cache_dir)
    rr = rr_features(split.beats, {r.record_id: r.sample_rate_hz for r in split.records})
    rr_report, rr_head = mitbih.run_beat_probe(rr[train], beats1, rr[test], beats2, in_val, opts.seed, opts.n_boot)
    models: dict[str, Any] = {}
    timings: dict[str, dict[str, float]] = {}
    probs: dict[str, np.ndarray] = {}
    for name, spec in opts.backbone_specs().items():
        timings[name] = {}
        feats = beat_featurizer(spec, functools.cache(spec.load), options, cache, noise_dir, opts.seed, timings[name])
        feats = feature_part(record_centred(feats) if opts.beat_norm == "record" else feats, opts.part)
        x = feats(split.records, split.beats, None)
        x1, x2 = x[train], x[test]
        models[name], head = mitbih.run_beat_probe(x1, beats1, x2, beats2, in_val, opts.seed, opts.n_boot)
        probs[name] = head.scores(x2)
        if opts.with_rr:
            x1_rr, x2_rr = np.hstack([x1, rr[train]]), np.hstack([x2, rr[test]])
            models[f"{name}+rr"], head_rr = mitbih.run_beat_probe(
                x1_rr, beats1, x2_rr, beats2, in_val, opts.seed, opts.n_boot
            )
            probs[f"{name}+rr"] = head_rr.scores(x2_rr)
            fused, cv_scores = fuse_heads(head, rr_head, x1, rr[train], beats1.label, beats1.patient_id, opts.seed)
            report = mitbih.beat_head_report(fused, x1_rr, beats1, x2_rr, beats2, in_val, opts.seed, opts.n_boot)
            models[f"{name}+rr_fusion"] = report | {"fusion_weight": fused.weight, "cv_macro_auroc": cv_scores}
            probs[f"{name}+rr_fusion"] = fused.scores(x2_rr)
        if opts.robustness and opts.test_dir is None:
            models[name].update(nstdb_robustness(head, feats, beats1, x1, ds2, beats2, x2, noise_dir, opts))
    models["rr_baseline"], probs["rr_baseline"] = rr_report, rr_head.scores(rr[test])
    if opts.n_boot:
        for name, baseline in PAIRED:
            if name in probs and baseline in probs:
                models[name]["test"][f"vs_{baseline}"] = mitbih.paired_auroc_difference(
                    probs[name], probs[baseline], beats2.label, beats2.patient_id, opts.n_boot, opts.seed
                )
    report = {
        "probe": "mitbih",
        "checkpoint": str(opts.ckpt),
        "models": models,
        "settings": {
            "beat embedding": beat_embedding_text(options),
            "beat normalisation": BEAT_NORM_TEXT[opts.beat_norm],
            "part": opts.part,
            "with RR features": opts.with_rr,
            "fusion weight": FUSION_TEXT if opts.with_rr else "no fusion",
            "precision": opts.precision,
            "seed": opts.seed,
            **split.description,
            "bootstrap": f"{opts.n_boot} resamples of DS2 patients",
            "robustness subsample": f"at most {opts.robust_per_class} DS2 beats per class (seeded)",
            "noise": f"{noise_source(noise_dir)} ({noise_dir})" if opts.robustness and not opts.test_dir else "not run",
            "beat embedding time": {m: _rate(t) for m, t in timings.items()},
        },
        "data": {**data, "training beats": beats1.counts(), "test beats": beats2.counts()},
    }
    out = opts.report_dir("probe-mitbih")
    write_report(report, out, opts.step)
    return out


def cross_database_split(
    opts: MITBIHProbeOptions, ds2: list[ECGRecord]
) -> tuple[mitbih.BeatSplit, list[ECGRecord], dict[str, Any]]:
    """Heads fitted on MIT-BIH DS1 (with ``train_on`` ``ds1+ds2``, DS1 and DS2), tested on every annotated record
    of ``opts.test_dir``; the report's data section names what was skipped and which symbols were left out."""
    test, skipped = mitbih.read_annotated_folder(opts.test_dir, parse_lead_map(opts.lead_map))
    train = mitbih.read_records(opts.mitdb, opts.ds1) + (ds2 if opts.train_on == "ds1+ds2" else [])
    split = mitbih.inter_patient_split(train, test, opts.val_records, opts.seed)
    split.description["paradigm"] = "cross-database"
    split.description["training records"] = f"MIT-BIH {opts.train_on.upper()} ({len(train)} records)"
    data = {
        "folder": str(opts.mitdb),
        "test database": str(opts.test_dir),
        "test records": len(test),
        "skipped test records": skipped,
        "annotation symbols left out (not AAMI beats)": dropped_symbols(test),
        "lead map": dict(parse_lead_map(opts.lead_map)),
    }
    return split, test, data


def nstdb_robustness(
    head: LinearProbe,
    feats: BeatFeatures,
    beats1: Beats,
    x1: np.ndarray,
    ds2: list[ECGRecord],
    beats2: Beats,
    x2: np.ndarray,
    noise_dir: Path,
    opts: MITBIHProbeOptions,
) -> dict[str, Any]:
    """Metrics under added NSTDB noise on a DS2 subsample, and on the real noisy 118e*/119e* records."""

    def evaluate(x: np.ndarray, beats: Beats, groups: np.ndarray | None) -> dict[str, Any]:
        res = mitbih.evaluate_multiclass(head.scores(x), beats.label, groups, opts.n_boot, opts.seed)
        return {k: res[k] for k in ("macro_auroc", "macro_f1", "j_kappa", "n_beats", "ci95") if k in res}

    sub = mitbih.stratified_subsample(beats2.label, opts.robust_per_class, opts.seed)
    sub_beats = beats2.take(sub)
    robustness = {"clean": evaluate(x2[sub], sub_beats, sub_beats.patient_id)}
    for condition in noise_conditions(noise_types=opts.noise_types):
        robustness[condition.name] = evaluate(feats(ds2, sub_beats, condition), sub_beats, sub_beats.patient_id)
    out: dict[str, Any] = {"robustness": robustness}
    # The real noisy records are DS1 patients 118/119: only two patients, so their CIs resample beats.
    clean_ids = sorted({f"mitdb/{n[:3]}" for n in mitbih.NOISY_RECORDS} & set(beats1.record_id))
    real = [n for n in mitbih.NOISY_RECORDS if f"mitdb/{n[:3]}" in clean_ids and (noise_dir / f"{n}.hea").is_file()]
    if real:
        records = mitbih.read_records(noise_dir, tuple(real))
        beats = beat_table(records)
        x = feats(records, beats, None)
        in_ds1 = np.flatnonzero(np.isin(beats1.record_id, clean_ids))
        nstdb = {"clean": evaluate(x1[in_ds1], beats1.take(in_ds1), None)}
        for suffix, snr_db in mitbih.NSTDB_SNR_DB.items():
            keep = np.flatnonzero(np.char.endswith(beats.record_id.astype(str), f"e{suffix}"))
            if keep.size:
                nstdb[f"em_{snr_db}dB"] = evaluate(x[keep], beats.take(keep), None)
        out["nstdb_records"] = nstdb
    return out


FUSION_TEXT = f"chosen by {FOLDS}-fold patient-grouped cross-validation over every training patient"
BEAT_NORM_TEXT = {
    "record": f"each beat minus its record's median beat feature ({REFERENCE_BEATS} beats evenly spaced in time, "
    "same condition, no labels)",
    "none": "none (raw features)",
}


def beat_embedding_text(options: BeatOptions) -> str:
    """The report's description of the beat features."""
    tokens = "class token ‖ lead-averaged tokens of the R patch ± 1"
    if options.features == "context":
        return (
            f"beats in context: {options.crop_seconds:g} s crops every {options.stride_fraction:g} crop, each beat "
            f"from the crop it is nearest the centre of: {tokens}"
        )
    return f"{options.window_patches}-patch beat-centred window: {tokens}"


def _rate(t: dict[str, float]) -> str:
    """Beats embedded and their throughput, or 'cached' when nothing had to be embedded."""
    if not t.get("beats"):
        return "cached"
    return f"{t['beats']} beats in {t['seconds']:.1f} s ({t['beats'] / t['seconds']:.0f} beats/s)"
