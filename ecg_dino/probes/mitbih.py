"""MIT-BIH beat probe: AAMI classes from ``.atr`` beat annotations, inter-patient DS1 -> DS2 (de Chazal 2004,
``ecg_dino.splits``), or intra-patient (each record's first half of beats -> its second half).

Beats and their AAMI classes come from ``ecg_dino.features.beats``, which keeps every annotated beat, the first
and last included; that reproduces the published counts (``DS1_COUNTS``/``DS2_COUNTS``). Paced records 102, 104,
107, 217 are in neither set. Beat features are ``ecg_dino.features.beats.embed_beats``: 4·D per beat.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from datamodules.readers import make_reader
from datamodules.record import BadRecordError, ECGRecord
from ecg_dino.features.beats import AAMI_CLASSES, Beats, beat_table
from ecg_dino.probes.calibration import calibration_summary, reliability_curve, softmax
from ecg_dino.probes.fusion import FusedHead
from ecg_dino.probes.linear import LinearProbe, balanced_class_weights, fit_probe
from ecg_dino.probes.metrics import (
    between_group_share,
    bootstrap_weights,
    class_report,
    confusion,
    j_kappa,
    macro_of,
    one_hot,
    paired_differences,
    per_label_auroc,
    percentile_ci,
    within_group_auroc,
)

# Beats per AAMI class, de Chazal et al. 2004 (IEEE TBME 51(7):1196-1206), Table I, as restated by Llamedo &
# Martínez 2011 (IEEE TBME 58(3):616-625).
DS1_COUNTS = {"N": 45866, "S": 944, "V": 3788, "F": 415, "Q": 8}
DS2_COUNTS = {"N": 44259, "S": 1837, "V": 3221, "F": 388, "Q": 7}
# A patient counts towards a class's within-patient AUROC when it holds this many beats of it and of the rest.
WITHIN_PATIENT_MIN_BEATS = 10
NSVF = [AAMI_CLASSES.index(c) for c in "NSVF"]  # the classes the inter-patient literature reports
NSTDB_SNR_DB = {"24": 24, "18": 18, "12": 12, "06": 6, "00": 0, "_6": -6}  # record-name suffix -> SNR
NOISY_RECORDS = tuple(f"{r}e{s}" for r in ("118", "119") for s in NSTDB_SNR_DB)


def read_records(root: Path, names: tuple[str, ...]) -> list[ECGRecord]:
    """Whole annotated MIT-BIH-format records; a missing ``.hea`` or ``.atr`` is an error naming the file."""
    if not Path(root).is_dir():
        raise FileNotFoundError(f"{root}: MIT-BIH folder not found")
    for name in names:
        if not (Path(root) / f"{name}.hea").is_file():
            raise BadRecordError(f"{Path(root) / name}.hea: MIT-BIH record not found")
        if not (Path(root) / f"{name}.atr").is_file():
            raise BadRecordError(f"{Path(root) / name}.atr: beat annotation file missing")
    reader = make_reader("mitdb", root, records=names, window_seconds=0)
    by_name = {ref.record_id.rsplit("/", 1)[-1]: ref for ref in reader.list_records()}
    return [reader.load(by_name[name]) for name in names]


def read_annotated_folder(root: Path, lead_map: dict[str, str]) -> tuple[list[ECGRecord], dict[str, str]]:
    """Every WFDB record of ``root`` with ``.atr`` beat annotations (any rate; lead names through ``lead_map``),
    and the records skipped, each with the reason (unreadable, unknown lead, no annotations)."""
    if not Path(root).is_dir():
        raise FileNotFoundError(f"{root}: test database folder not found")
    reader = make_reader("wfdb", root, window_seconds=0, lead_map=lead_map)
    records, skipped = [], {}
    for ref in reader.list_records():
        try:
            record = reader.load(ref)
        except BadRecordError as e:
            skipped[ref.path] = str(e)
            continue
        if record.annotations is None:
            skipped[ref.path] = f"{Path(ref.path).with_suffix('.atr')}: no beat annotation file"
        else:
            records.append(record)
    if not records:
        raise BadRecordError(f"{root}: no readable record with beat annotations ({len(skipped)} skipped)")
    return records, skipped


def validation_records(beats: Beats, n_records: int, seed: int, required: tuple[int, ...] = (0, 1, 2, 3)) -> list[str]:
    """Seeded patient-wise validation part of DS1: the first draw (seed, seed+1, …) of ``n_records`` records
    in which the validation and training parts both hold every class in ``required``."""
    names = sorted(set(beats.record_id))
    for attempt in range(1000):
        val = set(np.random.default_rng(seed + attempt).permutation(names)[:n_records])
        in_val = np.isin(beats.record_id, list(val))
        if all(np.any(beats.label[in_val] == k) and np.any(beats.label[~in_val] == k) for k in required):
            return sorted(str(name) for name in val)
    raise ValueError(f"no {n_records}-record validation split holds every class {required}")


def stratified_subsample(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Sorted indices of at most ``per_class`` beats of each class, drawn without replacement."""
    rng = np.random.default_rng(seed)
    idx = [rng.permutation(np.flatnonzero(labels == k))[:per_class] for k in np.unique(labels)]
    return np.sort(np.concatenate(idx))


def evaluate_multiclass(
    prob: np.ndarray, y: np.ndarray, groups: np.ndarray | None, n_boot: int, seed: int
) -> dict[str, Any]:
    """AAMI metrics with bootstrap 95 % CIs (resampling ``groups``, i.e. patients, when given).

    Macro AUROC: one-vs-rest over classes with positives and negatives; macro-F1: over classes present in
    ``y``; Se/P+ per class; jκ (``metrics.j_kappa``); confusion matrix (rows true, columns predicted). With
    ``groups``, also the within-patient AUROC per class and its macro (``metrics.within_group_auroc``): the
    pooled figure also scores offsets between patients, which decide it where one patient holds most of a
    class (F in DS2).
    """
    K = len(AAMI_CLASSES)
    pred = prob.argmax(1)
    target = one_hot(y, K)
    present = np.bincount(y, minlength=K) > 0

    def point(weights: np.ndarray | None) -> dict[str, float]:
        cm = confusion(y, pred, K, weights)
        rep = class_report(cm)
        return {
            "macro_f1": float(np.nanmean(np.where(cm.sum(1) > 0, rep["f1"], np.nan)[present])),
            "accuracy": rep["accuracy"],
            **j_kappa(cm),
        }

    cm = confusion(y, pred, K)
    rep = class_report(cm)
    auroc = per_label_auroc(target, prob)
    res: dict[str, Any] = {
        "macro_auroc": float(np.nanmean(auroc)),
        "n_beats": len(y),
        "per_class": {
            c: {
                "n": int(cm[k].sum()),
                "auroc": _num(auroc[k]),
                "sensitivity": _num(rep["sensitivity"][k]),
                "ppv": _num(rep["ppv"][k]),
                "f1": _num(rep["f1"][k]),
            }
            for k, c in enumerate(AAMI_CLASSES)
        },
        "confusion": cm.astype(int).tolist(),
        **point(None),
    }
    if groups is not None:
        within_point = within_patient_auroc(target, prob, groups)
        res["within_patient_macro_auroc"] = _num(macro_of(within_point[None])[0])
        for k, c in enumerate(AAMI_CLASSES):
            res["per_class"][c]["within_patient_auroc"] = _num(within_point[k])
    if n_boot:
        per_label, per_within, boot = [], [], []
        for w in bootstrap_weights(len(y), n_boot, seed, groups):
            per_label.append(per_label_auroc(target, prob, w))  # [r, K]
            if groups is not None:
                per_within.append(within_patient_auroc(target, prob, groups, w))
            boot.extend(point(wr) for wr in w)
        per_label = np.concatenate(per_label)
        res["ci95"] = {"macro_auroc": percentile_ci(macro_of(per_label))}
        for key in ("macro_f1", "j_kappa", "accuracy"):
            res["ci95"][key] = percentile_ci(np.array([b[key] for b in boot]))
        for k, c in enumerate(AAMI_CLASSES):
            res["per_class"][c]["auroc_ci95"] = percentile_ci(per_label[:, k])
        if per_within:
            per_within = np.concatenate(per_within)
            res["ci95"]["within_patient_macro_auroc"] = percentile_ci(macro_of(per_within))
            for k, c in enumerate(AAMI_CLASSES):
                res["per_class"][c]["within_patient_auroc_ci95"] = percentile_ci(per_within[:, k])
    return res


def within_patient_auroc(
    target: np.ndarray, prob: np.ndarray, groups: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """Within-patient AUROC per class [K] (or [r, K] for bootstrap ``weights`` [r, N])."""
    per_class = [
        within_group_auroc(target[:, k], prob[:, k], groups, WITHIN_PATIENT_MIN_BEATS, weights)
        for k in range(target.shape[1])
    ]
    return np.stack(per_class, axis=-1)


def paired_auroc_difference(
    prob: np.ndarray, baseline: np.ndarray, y: np.ndarray, groups: np.ndarray, n_boot: int, seed: int
) -> dict[str, Any]:
    """Macro AUROC of ``prob`` minus ``baseline`` on the same DS2 patient resamples (``metrics.paired_differences``):
    paired, so the patient-to-patient spread both models share (one patient holds most F beats) cancels. Beside
    it, on the same resamples, the difference per class and of the macro over N, S, V, F: they say where a macro
    difference comes from, and Q, with 7 DS2 beats, can move the macro by itself."""
    target = one_hot(y, len(AAMI_CLASSES))

    def aurocs(p: np.ndarray, w: np.ndarray) -> np.ndarray:
        per_class = per_label_auroc(target, p, w)  # [r, K]
        return np.column_stack([macro_of(per_class), macro_of(per_class[:, NSVF]), per_class])

    macro, nsvf, *per_class = paired_differences(aurocs, prob, baseline, n_boot, seed, groups)
    return macro | {"macro_nsvf": nsvf, "per_class": dict(zip(AAMI_CLASSES, per_class))}


def _num(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


@dataclass
class BeatSplit:
    """The beats of ``records``: ``train`` ones fit the head (``val`` of them choose λ and T), the rest test it."""

    records: list[ECGRecord]
    beats: Beats
    train: np.ndarray  # bool [n]
    val: np.ndarray  # bool [n], within train
    description: dict[str, Any]  # for the report's settings


def inter_patient_split(ds1: list[ECGRecord], ds2: list[ECGRecord], val_records: int, seed: int) -> BeatSplit:
    """De Chazal's paradigm: the head learns on DS1 patients (``val_records`` of them held out) and is tested on
    DS2 patients it has never seen: what the features hold about beats that carries over between patients."""
    beats = beat_table(ds1 + ds2)
    train = np.isin(beats.record_id, [r.record_id for r in ds1])
    val_names = validation_records(beats.take(np.flatnonzero(train)), val_records, seed)
    val = np.isin(beats.record_id, val_names)
    return BeatSplit(ds1 + ds2, beats, train, val, {"paradigm": "inter-patient", "validation records": val_names})


def intra_patient_split(records: list[ECGRecord], val_fraction: float = 0.2) -> BeatSplit:
    """The intra-patient paradigm: in each record the first half of the beats (in time) fits the head, the last
    ``val_fraction`` of that half choosing λ and T, and the second half tests it. Every test patient is also a
    training patient, so it shows what the features hold about beats, transferable or not."""
    beats = beat_table(records)
    train, val = np.zeros(len(beats), bool), np.zeros(len(beats), bool)
    for record in records:
        idx = np.flatnonzero(beats.record_id == record.record_id)
        idx = idx[np.argsort(beats.sample[idx], kind="stable")]
        first = idx[: len(idx) // 2]
        train[first] = True
        val[first[round((1 - val_fraction) * len(first)) :]] = True
    description = {
        "paradigm": "intra-patient",
        "split": f"first half of each record's beats trains (its last {val_fraction:.0%} validates), second tests",
    }
    return BeatSplit(records, beats, train, val, description)


def run_beat_probe(
    x1: np.ndarray, beats1: Beats, x2: np.ndarray, beats2: Beats, in_val: np.ndarray, seed: int, n_boot: int
) -> tuple[dict[str, Any], LinearProbe]:
    """Class-weighted linear head on ``beats1`` (minus ``in_val``, which choose λ and T) -> ``beats2``."""
    train, val = np.flatnonzero(~in_val), np.flatnonzero(in_val)
    weights = balanced_class_weights(beats1.label[train], len(AAMI_CLASSES))
    head, val_scores = fit_probe(
        x1[train], beats1.label[train], x1[val], beats1.label[val], multilabel=False, class_weights=weights
    )
    report = beat_head_report(head, x1, beats1, x2, beats2, in_val, seed, n_boot)
    report |= {"val_macro_auroc": {f"{k:g}": v for k, v in val_scores.items()}}
    return report | {"class_weights": dict(zip(AAMI_CLASSES, weights.tolist()))}, head


def beat_head_report(
    head: LinearProbe | FusedHead,
    x1: np.ndarray,
    beats1: Beats,
    x2: np.ndarray,
    beats2: Beats,
    in_val: np.ndarray,
    seed: int,
    n_boot: int,
) -> dict[str, Any]:
    """A fitted head's DS2 metrics, calibration (T fitted on the ``in_val`` beats) and patient share."""
    val = np.flatnonzero(in_val)
    prob = head.scores(x2)
    calibration = calibration_summary(
        head.logits(x1[val]), beats1.label[val], head.logits(x2), beats2.label, multilabel=False
    )
    scaled = softmax(head.logits(x2) / calibration["temperature"])
    normal = beats2.label == AAMI_CLASSES.index("N")
    return {
        "test": evaluate_multiclass(prob, beats2.label, beats2.patient_id, n_boot, seed),
        # How much the features say which patient a beat is from rather than what beat it is.
        "patient_share_of_variance": between_group_share(x2[normal], beats2.patient_id[normal]),
        "l2": head.l2,
        "n_train": int((~in_val).sum()),
        "n_val": len(val),
        "calibration": calibration,
        "reliability": {
            "before": reliability_curve(prob, beats2.label, False),
            "after": reliability_curve(scaled, beats2.label, False),
        },
    }
