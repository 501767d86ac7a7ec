"""``ecg-dino probe-ptbxl``, ``probe-mitbih`` and ``probe-cinc2017``: frozen checkpoint -> linear probes -> report.

All also probe the same architecture with random weights (``init_weights()`` under ``--seed``) with the same
heads and seeds, and (MIT-BIH) the RR-interval baseline. Embeddings are cached (``--cache-dir``), so a rerun
with other probe settings does not embed again.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from datamodules.noise import DEFAULT_NOISE_DIR, NOISE_TYPES
from datamodules.record import BadRecordError, ECGRecord
from ecg_dino.checkpoint import CheckpointError
from ecg_dino.embed import (
    DEFAULT_CACHE,
    LONG_RULES,
    BackboneSpec,
    EmbeddingCache,
    EmbedOptions,
    embed_records,
    optional_path,
)
from ecg_dino.model.vit import ECGViT
from ecg_dino.probes import cinc2017, mitbih, ptbxl
from ecg_dino.probes.attentive import RecordTokens
from ecg_dino.probes.linear import LinearProbe
from ecg_dino.probes.report import write_report
from ecg_dino.probes.robustness import (
    Condition,
    apply_condition,
    condition_rng,
    lead_conditions,
    noise_conditions,
    noise_source,
)
from ecg_dino.probes.rr_baseline import rr_features

Timings = dict[str, float]
BeatFeatures = Callable[[list[ECGRecord], mitbih.Beats, Condition | None], np.ndarray]


def common_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ckpt", type=Path, required=True, help="Lightning/consolidated checkpoint or .safetensors")
    p.add_argument("--out", type=Path, default=None, help="report folder (default: <ckpt folder>/<probe name>)")
    p.add_argument("--which", default="teacher", choices=("teacher", "student"))
    p.add_argument("--nstdb", type=Path, default=None, help="NSTDB folder (default: next to the data folder)")
    p.add_argument("--seed", type=int, default=0, help="seeds subsets, splits, noise, bootstrap, random init")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for 95 %% CIs")
    p.add_argument("--no-robustness", action="store_true", help="skip the noise and lead-subset evaluations")
    p.add_argument(
        "--noise-types", nargs="+", default=list(NOISE_TYPES), choices=NOISE_TYPES, help="NSTDB noise types to test"
    )
    p.add_argument("--no-random-init", action="store_true", help="skip the random-init baseline")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--cache-dir", type=optional_path, default=DEFAULT_CACHE, help="embedding cache ('' disables)")
    p.add_argument("--step", type=int, default=0, help="TensorBoard step of the scalars")


HEAD_CHOICES = {"linear": ("linear",), "attentive": ("attentive",), "both": ("linear", "attentive")}
_LINEAR_TEXT = "linear: L2-penalised logistic regression, L2 chosen by validation macro AUROC"
_ATTENTIVE_TEXT = (
    "attentive: {queries} learnable queries, 4-head cross-attention over every lead × patch token of the record "
    "(time code added; padding and absent leads masked), linear classifier; AdamW, weight decay and epoch chosen "
    "by validation macro AUROC"
)
HEAD_TEXT = {
    "linear": _LINEAR_TEXT,
    "attentive": _ATTENTIVE_TEXT,
    "both": f"{_LINEAR_TEXT}; {_ATTENTIVE_TEXT}",
}


def head_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--head",
        choices=HEAD_CHOICES,
        default="both",
        help="linear: class token ‖ mean patch token, at every fraction, with robustness; attentive: learnable "
        "queries over the patch tokens (100 %% of the labels); both (default)",
    )
    p.add_argument("--attentive-queries", type=int, default=4, help="learnable queries of the attentive head (1-4)")


def backbone_specs(args: argparse.Namespace) -> dict[str, BackboneSpec]:
    """The checkpoint's backbone and, unless disabled, the same architecture randomly initialised."""
    specs = {"model": BackboneSpec(args.ckpt, args.which)}
    if not args.no_random_init:
        specs["random_init"] = BackboneSpec(args.ckpt, args.which, random_init_seed=args.seed)
    return specs


def noise_folder(args: argparse.Namespace, data: Path) -> Path:
    """``--nstdb``, else ``nstdb/`` beside the data folder, else ``datamodules.noise``'s default."""
    if args.nstdb is not None:
        return args.nstdb
    sibling = Path(data).resolve().parent / "nstdb"
    return sibling if sibling.is_dir() else Path(DEFAULT_NOISE_DIR)


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
) -> tuple[Callable[[str, list[int], Condition | None], np.ndarray], Callable[[], RecordTokens]]:
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


def main_ptbxl(argv: list[str] | None = None) -> int:
    """``ecg-dino probe-ptbxl``: linear probes on PTB-XL label sets, fractions, robustness; writes a report."""
    p = argparse.ArgumentParser(prog="ecg-dino probe-ptbxl", description=main_ptbxl.__doc__)
    p.add_argument("--ptbxl", type=Path, required=True, help="PTB-XL folder (ptbxl_database.csv, records500/)")
    p.add_argument("--label-sets", nargs="+", default=list(ptbxl.LABEL_SETS), choices=ptbxl.LABEL_SETS)
    p.add_argument("--fractions", nargs="+", type=float, default=list(ptbxl.FRACTIONS))
    p.add_argument("--records-folder", default="records500", choices=("records500", "records100"))
    p.add_argument("--limit", type=int, default=None, help="only the first N records (smoke tests)")
    p.add_argument("--crop-seconds", type=float, default=EmbedOptions.crop_seconds, help="the trained crop length")
    p.add_argument("--long-rule", choices=LONG_RULES, default=EmbedOptions.long_rule)
    p.add_argument("--batch-size", type=int, default=EmbedOptions.batch_size)
    head_arguments(p)
    common_arguments(p)
    args = p.parse_args(argv)
    args.out = args.out or args.ckpt.parent / "probe-ptbxl"
    heads = HEAD_CHOICES[args.head]
    options = EmbedOptions(
        crop_seconds=args.crop_seconds,
        long_rule=args.long_rule,
        precision=args.precision,
        batch_size=args.batch_size,
        patches="attentive" in heads,
    )
    try:
        split = ptbxl.PTBXLSplit.load(args.ptbxl, args.records_folder, args.limit)
        specs = backbone_specs(args)
        noise_dir = noise_folder(args, args.ptbxl)
        conditions = (
            [] if args.no_robustness else noise_conditions(noise_types=tuple(args.noise_types)) + lead_conditions()
        )
        cache = EmbeddingCache(args.cache_dir)
        models, timings, scores = {}, {}, {}
        for name, spec in specs.items():
            timings[name] = {}
            embed, tokens = record_embedder(
                split, spec, functools.cache(spec.load), options, cache, noise_dir, args.seed, timings[name]
            )
            models[name], scores[name] = ptbxl.run_ptbxl(
                split,
                embed,
                tokens,
                heads,
                tuple(args.label_sets),
                tuple(args.fractions),
                conditions if "linear" in heads else [],
                args.seed,
                args.n_boot,
                args.attentive_queries,
            )
        if "random_init" in scores and args.n_boot:
            statements = ptbxl.read_statements(split.root)
            for label_set, res in models["model"].items():
                for head in heads:
                    paired = ptbxl.paired_auroc_difference(
                        split,
                        statements,
                        label_set,
                        scores["model"][label_set][head],
                        scores["random_init"][label_set][head],
                        args.n_boot,
                        args.seed,
                    )
                    (res if head == "linear" else res[head])["vs_random_init"] = paired
    except (CheckpointError, FileNotFoundError, BadRecordError, ValueError) as e:
        print(f"ecg-dino probe-ptbxl: error: {e}", file=sys.stderr)
        return 2
    folds = split.folds
    report = {
        "probe": "ptbxl",
        "checkpoint": str(args.ckpt),
        "models": models,
        "settings": {
            "embedding": asdict(options),
            "features": "class token ‖ mean of valid patch tokens (linear); every lead × patch token (attentive)",
            "head": HEAD_TEXT[args.head].format(queries=args.attentive_queries),
            "seed": args.seed,
            "bootstrap": f"{args.n_boot} resamples of test records",
            "label fractions": args.fractions,
            "noise": f"{noise_source(noise_dir) if conditions else 'not run'} ({noise_dir})",
            "embedding seconds": {m: round(sum(t.values()), 1) for m, t in timings.items()},
        },
        "data": {
            "folder": str(args.ptbxl),
            "records": len(split.refs),
            "train/val/test records": [
                int(np.isin(folds, f).sum()) for f in (ptbxl.TRAIN_FOLDS, (ptbxl.VAL_FOLD,), (ptbxl.TEST_FOLD,))
            ],
        },
    }
    write_report(report, args.out, args.step)
    print(f"wrote {args.out / 'report.md'}")
    return 0


def main_cinc2017(argv: list[str] | None = None) -> int:
    """``ecg-dino probe-cinc2017``: 4-class rhythm probe (N, A, O, ~) at label fractions, robustness; a report."""
    p = argparse.ArgumentParser(prog="ecg-dino probe-cinc2017", description=main_cinc2017.__doc__)
    p.add_argument("--cinc2017", type=Path, required=True, help="CinC-2017 folder (REFERENCE.csv, A*.hea/.mat)")
    p.add_argument("--fractions", nargs="+", type=float, default=list(cinc2017.FRACTIONS))
    p.add_argument("--limit", type=int, default=None, help="only the first N records of each split (smoke tests)")
    p.add_argument("--crop-seconds", type=float, default=4.0, help="the trained crop length")
    p.add_argument("--batch-size", type=int, default=EmbedOptions.batch_size)
    head_arguments(p)
    common_arguments(p)
    args = p.parse_args(argv)
    args.out = args.out or args.ckpt.parent / "probe-cinc2017"
    heads = HEAD_CHOICES[args.head]
    options = EmbedOptions(
        crop_seconds=args.crop_seconds,
        precision=args.precision,
        batch_size=args.batch_size,
        patches="attentive" in heads,
    )
    try:
        split = cinc2017.CinC2017Split.load(args.cinc2017, args.limit)
        noise_dir = noise_folder(args, args.cinc2017)
        conditions = [] if args.no_robustness else noise_conditions(noise_types=tuple(args.noise_types))  # one lead
        cache = EmbeddingCache(args.cache_dir)
        models, timings, probs = {}, {}, {}
        for name, spec in backbone_specs(args).items():
            timings[name] = {}
            embed, tokens = record_embedder(
                split, spec, functools.cache(spec.load), options, cache, noise_dir, args.seed, timings[name]
            )
            models[name], probs[name] = cinc2017.run_cinc2017(
                split,
                embed,
                tokens,
                heads,
                tuple(args.fractions),
                conditions if "linear" in heads else [],
                args.seed,
                args.n_boot,
                args.attentive_queries,
            )
        if "random_init" in probs and args.n_boot:
            y_test = split.labels[split.indices("test")]
            for head in heads:
                paired = cinc2017.paired_differences(
                    probs["model"][head], probs["random_init"][head], y_test, args.n_boot, args.seed
                )
                (models["model"] if head == "linear" else models["model"][head])["vs_random_init"] = paired
    except (CheckpointError, FileNotFoundError, BadRecordError, ValueError) as e:
        print(f"ecg-dino probe-cinc2017: error: {e}", file=sys.stderr)
        return 2
    crop, stride = options.crop_seconds, options.stride_fraction * options.crop_seconds
    report = {
        "probe": "cinc2017",
        "checkpoint": str(args.ckpt),
        "models": models,
        "settings": {
            "embedding": asdict(options),
            "features": f"class token ‖ mean of valid patch tokens, each averaged over sliding {crop:g} s crops "
            f"every {stride:g} s (the last flush with the record's end)",
            "head": HEAD_TEXT[args.head].format(queries=args.attentive_queries),
            "seed": args.seed,
            "bootstrap": f"{args.n_boot} resamples of test records",
            "label fractions": f"{args.fractions} of the training records, stratified by class",
            "noise": f"{noise_source(noise_dir) if conditions else 'not run'} ({noise_dir})",
            "embedding seconds": {m: round(sum(t.values()), 1) for m, t in timings.items()},
        },
        "data": {
            "folder": str(args.cinc2017),
            "records": len(split.refs),
            "records per class (train/val/test)": split.counts(),
            "left out": {"listings": len(split.left_out), "why (first 3)": split.left_out[:3]},
        },
    }
    write_report(report, args.out, args.step)
    print(f"wrote {args.out / 'report.md'}")
    return 0


def beat_featurizer(
    spec: BackboneSpec,
    backbone: Callable[[], ECGViT],
    options: mitbih.BeatOptions,
    cache: EmbeddingCache,
    noise_dir: Path,
    seed: int,
    timings: Timings,
) -> BeatFeatures:
    """``features(records, beats, condition)`` -> beat features in ``beats`` order, cached per record."""

    def features(records: list[ECGRecord], beats: mitbih.Beats, condition: Condition | None) -> np.ndarray:
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
                x = mitbih.embed_beats(model, record, samples, options)
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
    """``feats`` restricted to one part of the beat embedding (``mitbih.feature_columns``)."""
    return lambda records, beats, condition: mitbih.feature_columns(feats(records, beats, condition), part)


def main_mitbih(argv: list[str] | None = None) -> int:
    """``ecg-dino probe-mitbih``: AAMI beat probe (DS1 -> DS2, or intra-patient) with baselines and robustness."""
    p = argparse.ArgumentParser(prog="ecg-dino probe-mitbih", description=main_mitbih.__doc__)
    p.add_argument("--mitdb", type=Path, required=True, help="MIT-BIH Arrhythmia Database folder")
    p.add_argument("--ds1", nargs="+", default=list(mitbih.DS1), help="training records (default: DS1)")
    p.add_argument("--ds2", nargs="+", default=list(mitbih.DS2), help="test records (default: DS2)")
    p.add_argument("--val-records", type=int, default=5, help="DS1 records held out to choose λ and T")
    p.add_argument(
        "--paradigm",
        choices=("inter", "intra"),
        default="inter",
        help="inter: DS1 -> DS2 patients (default); intra: each DS2 record's first half of beats -> its second half",
    )
    p.add_argument("--window-patches", type=int, default=mitbih.BeatOptions.window_patches)
    p.add_argument("--batch-size", type=int, default=mitbih.BeatOptions.batch_size)
    p.add_argument(
        "--features",
        choices=mitbih.FEATURE_PARTS,
        default="all",
        help="part of the beat embedding the heads read: class token, R-patch tokens, or both (default)",
    )
    p.add_argument(
        "--robust-per-class",
        type=int,
        default=500,
        help="noisy DS2 evaluations use at most this many beats per class (seeded)",
    )
    common_arguments(p)
    args = p.parse_args(argv)
    args.out = args.out or args.ckpt.parent / "probe-mitbih"
    options = mitbih.BeatOptions(args.window_patches, args.precision, args.batch_size)
    try:
        ds2 = mitbih.read_records(args.mitdb, tuple(args.ds2))
        if args.paradigm == "inter":
            ds1 = mitbih.read_records(args.mitdb, tuple(args.ds1))
            split = mitbih.inter_patient_split(ds1, ds2, args.val_records, args.seed)
        else:
            split = mitbih.intra_patient_split(ds2)
        train, test = np.flatnonzero(split.train), np.flatnonzero(~split.train)
        beats1, beats2, in_val = split.beats.take(train), split.beats.take(test), split.val[train]
        noise_dir = noise_folder(args, args.mitdb)
        cache = EmbeddingCache(args.cache_dir)
        models, timings, probs = {}, {}, {}
        for name, spec in backbone_specs(args).items():
            timings[name] = {}
            feats = feature_part(
                beat_featurizer(spec, functools.cache(spec.load), options, cache, noise_dir, args.seed, timings[name]),
                args.features,
            )
            x = feats(split.records, split.beats, None)
            x1, x2 = x[train], x[test]
            models[name], head = mitbih.run_beat_probe(x1, beats1, x2, beats2, in_val, args.seed, args.n_boot)
            probs[name] = head.scores(x2)
            if not args.no_robustness:
                models[name].update(mitbih_robustness(head, feats, beats1, x1, ds2, beats2, x2, noise_dir, args))
        if "random_init" in probs and args.n_boot:
            models["model"]["test"]["vs_random_init"] = mitbih.paired_auroc_difference(
                probs["model"], probs["random_init"], beats2.label, beats2.patient_id, args.n_boot, args.seed
            )
        rr = rr_features(split.beats, {r.record_id: r.sample_rate_hz for r in split.records})
        models["rr_baseline"], _ = mitbih.run_beat_probe(
            rr[train], beats1, rr[test], beats2, in_val, args.seed, args.n_boot
        )
    except (CheckpointError, FileNotFoundError, BadRecordError, ValueError) as e:
        print(f"ecg-dino probe-mitbih: error: {e}", file=sys.stderr)
        return 2
    report = {
        "probe": "mitbih",
        "checkpoint": str(args.ckpt),
        "models": models,
        "settings": {
            "beat embedding": f"{args.window_patches}-patch beat-centred window: class token ‖ "
            "lead-averaged tokens of the R patch ± 1",
            "features": args.features,
            "precision": args.precision,
            "seed": args.seed,
            **split.description,
            "bootstrap": f"{args.n_boot} resamples of DS2 patients",
            "robustness subsample": f"at most {args.robust_per_class} DS2 beats per class (seeded)",
            "noise": "not run" if args.no_robustness else f"{noise_source(noise_dir)} ({noise_dir})",
            "beat embedding time": {m: _rate(t) for m, t in timings.items()},
        },
        "data": {"folder": str(args.mitdb), "training beats": beats1.counts(), "test beats": beats2.counts()},
    }
    write_report(report, args.out, args.step)
    print(f"wrote {args.out / 'report.md'}")
    return 0


def mitbih_robustness(
    head: LinearProbe,
    feats: BeatFeatures,
    beats1: mitbih.Beats,
    x1: np.ndarray,
    ds2: list[ECGRecord],
    beats2: mitbih.Beats,
    x2: np.ndarray,
    noise_dir: Path,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Metrics under added NSTDB noise on a DS2 subsample, and on the real noisy 118e*/119e* records."""

    def evaluate(x: np.ndarray, beats: mitbih.Beats, groups: np.ndarray | None) -> dict[str, Any]:
        res = mitbih.evaluate_multiclass(head.scores(x), beats.label, groups, args.n_boot, args.seed)
        return {k: res[k] for k in ("macro_auroc", "macro_f1", "j_kappa", "n_beats", "ci95") if k in res}

    sub = mitbih.stratified_subsample(beats2.label, args.robust_per_class, args.seed)
    sub_beats = beats2.take(sub)
    robustness = {"clean": evaluate(x2[sub], sub_beats, sub_beats.patient_id)}
    for condition in noise_conditions(noise_types=tuple(args.noise_types)):
        robustness[condition.name] = evaluate(feats(ds2, sub_beats, condition), sub_beats, sub_beats.patient_id)
    out: dict[str, Any] = {"robustness": robustness}
    # The real noisy records are DS1 patients 118/119: only two patients, so their CIs resample beats.
    clean_ids = sorted({f"mitdb/{n[:3]}" for n in mitbih.NOISY_RECORDS} & set(beats1.record_id))
    real = [n for n in mitbih.NOISY_RECORDS if f"mitdb/{n[:3]}" in clean_ids and (noise_dir / f"{n}.hea").is_file()]
    if real:
        records = mitbih.read_records(noise_dir, tuple(real))
        beats = mitbih.beat_table(records)
        x = feats(records, beats, None)
        in_ds1 = np.flatnonzero(np.isin(beats1.record_id, clean_ids))
        nstdb = {"clean": evaluate(x1[in_ds1], beats1.take(in_ds1), None)}
        for suffix, snr_db in mitbih.NSTDB_SNR_DB.items():
            keep = np.flatnonzero(np.char.endswith(beats.record_id.astype(str), f"e{suffix}"))
            if keep.size:
                nstdb[f"em_{snr_db}dB"] = evaluate(x[keep], beats.take(keep), None)
        out["nstdb_records"] = nstdb
    return out


def _rate(t: dict[str, float]) -> str:
    """Beats embedded and their throughput, or 'cached' when nothing had to be embedded."""
    if not t.get("beats"):
        return "cached"
    return f"{t['beats']} beats in {t['seconds']:.1f} s ({t['beats'] / t['seconds']:.0f} beats/s)"
