"""PhysioNet/CinC Challenge 2017 probe: a 4-class rhythm head (N, A, O, ~) on single-lead AliveCor records.

The project's fixed split (``datamodules.readers.cinc2017.split_of``): train A00001–A04500 fits the head,
validation A04501–A05000 chooses λ and the temperature, test A05001–A06000 scores it. The challenge released no
patient ids, so each record is its own patient and bootstrap CIs resample test records. The headline is the
challenge's own score (Clifford et al., "AF classification from a short single lead ECG recording: the
PhysioNet/Computing in Cardiology Challenge 2017", CinC 44, 2017): F1 = 2·TP/(row + column sum) per class from
the confusion matrix, averaged over N, A and O (the noisy class ~ is classified but not averaged); beside it the
macro one-vs-rest AUROC over all four classes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from datamodules.readers import make_reader
from datamodules.readers.base import Reader, RecordRef
from datamodules.readers.cinc2017 import CLASSES
from ecg_dino.features.sources import file_fingerprint
from ecg_dino.probes.attentive import RecordTokens, fit_attentive
from ecg_dino.probes.calibration import calibration_summary, reliability_curve, softmax
from ecg_dino.probes.linear import LinearProbe, balanced_class_weights, fit_probe
from ecg_dino.probes.metrics import (
    bootstrap_weights,
    class_report,
    confusion,
    macro_of,
    one_hot,
    paired_difference,
    per_label_auroc,
    percentile_ci,
)
from ecg_dino.splits import CINC2017_SPLITS

FRACTIONS = (0.01, 0.1, 1.0)
SCORED = ("N", "A", "O")  # the classes the challenge's F1 averages; CLASSES puts them first


@dataclass
class CinC2017Split:
    """The labelled records of a CinC-2017 folder, train then validation then test, each in name order."""

    root: Path
    reader: Reader
    refs: list[RecordRef]
    left_out: list[str]  # why listed records could not be used (a stray file, a missing label row)

    @classmethod
    def load(cls, root: Path, limit: int | None = None) -> CinC2017Split:
        """All records of the three splits, or the first ``limit`` of each (smoke tests)."""
        if not Path(root).is_dir():
            raise FileNotFoundError(f"{root}: CinC-2017 folder not found")
        reader = make_reader("cinc2017", root, splits=list(CINC2017_SPLITS), window_seconds=0)
        listed = sorted(reader.list_records(), key=lambda r: r.record_id)
        by_split = {
            part: [r for r in listed if not r.problem and r.labels["split"] == part] for part in CINC2017_SPLITS
        }
        refs = [r for part in CINC2017_SPLITS for r in by_split[part][:limit]]
        split = cls(Path(root), reader, refs, [r.problem for r in listed if r.problem])
        for part in CINC2017_SPLITS:
            if not split.indices(part).size:
                raise ValueError(f"{root}: no labelled CinC-2017 {part} records ({CINC2017_SPLITS[part]} by number)")
        return split

    @property
    def data_key(self) -> str:
        """The records for the embedding cache: folder, header names and sizes."""
        return f"cinc2017:{self.root.resolve()}:{file_fingerprint([Path(r.path) for r in self.refs])}"

    @property
    def labels(self) -> np.ndarray:
        """Class index in ``CLASSES`` order of every record."""
        return np.array([CLASSES.index(r.labels["rhythm"]) for r in self.refs], dtype=np.int64)

    def indices(self, part: str) -> np.ndarray:
        """Row indices of the ``train``, ``val`` or ``test`` records."""
        return np.flatnonzero([r.labels["split"] == part for r in self.refs])

    def counts(self) -> dict[str, dict[str, int]]:
        """Records per class in each split."""
        y = self.labels
        return {p: {c: int((y[self.indices(p)] == k).sum()) for k, c in enumerate(CLASSES)} for p in CINC2017_SPLITS}


def stratified_subset(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of ``max(1, round(fraction·n_k))`` records of each class k, drawn without replacement, so
    1 % of the training records still holds every class (A is 9 % of them, ~ 3 %)."""
    rng = np.random.default_rng([seed, round(fraction * 1e6)])
    picks = [
        rng.permutation(idx)[: max(1, round(fraction * len(idx)))]
        for idx in (np.flatnonzero(labels == k) for k in np.unique(labels))
    ]
    return np.sort(np.concatenate(picks))


def challenge_f1(cm: np.ndarray) -> float:
    """The CinC 2017 score of a confusion matrix: per-class F1 = 2·TP/(row + column), mean over N, A and O."""
    return float(np.mean(class_report(cm)["f1"][: len(SCORED)]))


def resampled_challenge_f1(y: np.ndarray, prob: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The challenge F1 of argmax predictions for each row of bootstrap ``weights`` [r, N]."""
    pred = prob.argmax(1)
    return np.array([challenge_f1(confusion(y, pred, len(CLASSES), w)) for w in weights])


def resampled_macro_auroc(y: np.ndarray, prob: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Macro one-vs-rest AUROC over the four classes for each row of ``weights`` [r, N]."""
    return macro_of(per_label_auroc(one_hot(y, len(CLASSES)), prob, weights))


TEST_METRICS = {"challenge_f1": resampled_challenge_f1, "macro_auroc": resampled_macro_auroc}


def evaluate(prob: np.ndarray, y: np.ndarray, n_boot: int, seed: int) -> dict[str, Any]:
    """Challenge F1, macro and per-class AUROC, accuracy and confusion; 95 % CIs resampling test records."""
    cm = confusion(y, prob.argmax(1), len(CLASSES))
    report = class_report(cm)
    auroc = per_label_auroc(one_hot(y, len(CLASSES)), prob)
    ones = np.ones((1, len(y)))
    res: dict[str, Any] = {key: float(metric(y, prob, ones)[0]) for key, metric in TEST_METRICS.items()}
    res.update(
        accuracy=report["accuracy"],
        n_records=len(y),
        per_class={
            c: {"n": int(cm[k].sum()), "auroc": _num(auroc[k]), "f1": _num(report["f1"][k])}
            for k, c in enumerate(CLASSES)
        },
        confusion=cm.astype(int).tolist(),
    )
    if n_boot:
        weights = list(bootstrap_weights(len(y), n_boot, seed))
        res["ci95"] = {
            key: percentile_ci(np.concatenate([metric(y, prob, w) for w in weights]))
            for key, metric in TEST_METRICS.items()
        }
    return res


def paired_differences(prob: np.ndarray, baseline: np.ndarray, y: np.ndarray, n_boot: int, seed: int) -> dict[str, Any]:
    """Challenge F1 and macro AUROC of ``prob`` minus ``baseline`` on the same test-record resamples."""
    return {
        key: paired_difference(functools.partial(metric, y), prob, baseline, n_boot, seed)
        for key, metric in TEST_METRICS.items()
    }


def fit_fractions(
    features: np.ndarray, split: CinC2017Split, fractions: tuple[float, ...], seed: int, n_boot: int
) -> tuple[dict[str, Any], LinearProbe]:
    """One class-balanced head per training fraction, tested; calibration of the largest, which is returned."""
    y = split.labels
    train, val, test = (split.indices(p) for p in CINC2017_SPLITS)
    results: dict[str, Any] = {"fractions": {}}
    heads = {}
    for fraction in fractions:
        subset = train[stratified_subset(y[train], fraction, seed)]
        weights = balanced_class_weights(y[subset], len(CLASSES))
        head, val_scores = fit_probe(
            features[subset], y[subset], features[val], y[val], multilabel=False, class_weights=weights
        )
        res = evaluate(head.scores(features[test]), y[test], n_boot, seed)
        res.update(n_train=len(subset), l2=head.l2, val_macro_auroc={f"{k:g}": v for k, v in val_scores.items()})
        results["fractions"][f"{fraction:g}"] = res
        heads[fraction] = head
    head = heads[max(fractions)]
    logits = head.logits(features[test])
    results["calibration"] = calibration_summary(head.logits(features[val]), y[val], logits, y[test], multilabel=False)
    results["reliability"] = {
        "before": reliability_curve(softmax(logits), y[test], False),
        "after": reliability_curve(softmax(logits / results["calibration"]["temperature"]), y[test], False),
    }
    return results, head


def attentive_probe(
    records: RecordTokens, split: CinC2017Split, seed: int, n_boot: int, num_queries: int
) -> tuple[dict[str, Any], np.ndarray]:
    """The attentive head on every training record's patch tokens (weight decay and epoch chosen on validation),
    tested; also returns its test probabilities."""
    y = split.labels
    train, val, test = (split.indices(p) for p in CINC2017_SPLITS)
    probe = fit_attentive(
        records.take(train),
        y[train],
        records.take(val),
        y[val],
        multilabel=False,
        class_weights=balanced_class_weights(y[train], len(CLASSES)),
        num_queries=num_queries,
        seed=seed,
    )
    prob = probe.scores(records.take(test))
    res = evaluate(prob, y[test], n_boot, seed)
    res.update(n_train=len(train), **probe.summary())
    return res, prob


def run_cinc2017(
    split: CinC2017Split,
    embed: Callable[[str, list[int], Any], np.ndarray],
    tokens: Callable[[], RecordTokens],
    heads: tuple[str, ...],
    fractions: tuple[float, ...],
    conditions: list[Any],
    seed: int,
    n_boot: int,
    num_queries: int = 4,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """For one backbone: linear heads at each fraction with calibration and noise robustness, and/or the
    attentive head at 100 %; also returns each head's test probabilities (for paired differences).

    ``embed(tag, indices, condition)`` gives features [len(indices), F] of those records (condition None: clean);
    ``tokens()`` the patch tokens of every clean record.
    """
    results: dict[str, Any] = {}
    probs: dict[str, np.ndarray] = {}
    test = split.indices("test")
    y_test = split.labels[test]
    if "linear" in heads:
        features = embed("clean", list(range(len(split.refs))), None)
        linear, head = fit_fractions(features, split, fractions, seed, n_boot)
        results.update(linear)
        probs["linear"] = head.scores(features[test])
        if conditions:
            clean = results["fractions"][f"{max(fractions):g}"]
            results["robustness"] = {"clean": _headline(clean)}
            for condition in conditions:
                prob = head.scores(embed(condition.name, test.tolist(), condition))
                results["robustness"][condition.name] = _headline(evaluate(prob, y_test, n_boot, seed))
    if "attentive" in heads:
        results["attentive"], probs["attentive"] = attentive_probe(tokens(), split, seed, n_boot, num_queries)
    return results, probs


def _headline(res: dict[str, Any]) -> dict[str, Any]:
    return {k: res[k] for k in ("challenge_f1", "macro_auroc", "accuracy", "ci95") if k in res}


def _num(x: float) -> float | None:
    return None if np.isnan(x) else float(x)
