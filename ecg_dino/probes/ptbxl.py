"""PTB-XL linear probe: multi-label SCP statements from frozen embeddings, folds 1–8 / 9 / 10.

Label sets follow the PTB-XL benchmark (Strodthoff et al. 2021, ``compute_label_aggregations`` of
``helme/ecg_ptbxl_benchmarking``): a statement counts when it is a key of ``scp_codes``, whatever its
likelihood (rhythm and form statements carry likelihood 0, so a ``> 0`` rule would drop e.g. every SR);
``diagnostic`` statements are aggregated to ``diagnostic_subclass`` (subdiagnostic) and ``diagnostic_class``
(superdiagnostic); ``form``/``rhythm`` are the statements flagged so. The label vocabulary comes from
``scp_statements.csv`` (all = 71, diagnostic = 44, subdiagnostic = 23, superdiagnostic = 5, form = 19,
rhythm = 12); as in the benchmark, records without any label of a set are left out of that set.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from datamodules.readers import make_reader
from datamodules.readers.base import Reader, RecordRef
from ecg_dino.features.sources import file_fingerprint
from ecg_dino.probes.attentive import RecordTokens, fit_attentive
from ecg_dino.probes.calibration import calibration_summary, reliability_curve, sigmoid
from ecg_dino.probes.linear import LinearProbe, fit_probe
from ecg_dino.probes.metrics import (
    bootstrap_macro_auroc,
    bootstrap_weights,
    masked_macro_auroc,
    paired_difference,
    percentile_ci,
)
from ecg_dino.splits import PTBXL_TEST_FOLD, PTBXL_TRAIN_FOLDS, PTBXL_VAL_FOLD

LABEL_SETS = ("all", "diagnostic", "subdiagnostic", "superdiagnostic", "form", "rhythm")
FRACTIONS = (0.01, 0.1, 1.0)


def check_root(root: Path) -> None:
    """Raise ``FileNotFoundError`` naming the PTB-XL table that is missing."""
    for name in ("ptbxl_database.csv", "scp_statements.csv"):
        if not (Path(root) / name).is_file():
            raise FileNotFoundError(f"{Path(root) / name}: PTB-XL table not found (is {root} a PTB-XL folder?)")


def read_statements(root: Path) -> pd.DataFrame:
    """``scp_statements.csv`` indexed by statement code."""
    check_root(root)
    return pd.read_csv(Path(root) / "scp_statements.csv", index_col=0)


def statement_map(statements: pd.DataFrame, label_set: str) -> dict[str, str]:
    """SCP statement -> label of ``label_set`` (the statement itself, or its diagnostic (sub)class)."""
    if label_set == "all":
        return {code: code for code in statements.index}
    if label_set in ("form", "rhythm"):
        return {code: code for code in statements.index[statements[label_set] == 1]}
    diagnostic = statements[statements["diagnostic"] == 1]
    column = {
        "diagnostic": None,
        "subdiagnostic": "diagnostic_subclass",
        "superdiagnostic": "diagnostic_class",
    }[label_set]
    if column is None:
        return {code: code for code in diagnostic.index}
    return diagnostic[column].dropna().to_dict()


def label_vocabulary(statements: pd.DataFrame, label_set: str) -> list[str]:
    """The sorted labels of a set, from ``scp_statements.csv`` (not from the records at hand)."""
    if label_set not in LABEL_SETS:
        raise ValueError(f"unknown label set {label_set!r}; choose from {', '.join(LABEL_SETS)}")
    return sorted(set(statement_map(statements, label_set).values()))


def label_matrix(
    codes: list[dict[str, float]], statements: pd.DataFrame, label_set: str
) -> tuple[np.ndarray, list[str]]:
    """Multi-hot labels [N, C] of records' ``scp_codes`` dicts, and the label names."""
    mapping, vocab = statement_map(statements, label_set), label_vocabulary(statements, label_set)
    index = {label: i for i, label in enumerate(vocab)}
    y = np.zeros((len(codes), len(vocab)), dtype=np.int64)
    for n, record_codes in enumerate(codes):
        for code in record_codes:
            if code in mapping:
                y[n, index[mapping[code]]] = 1
    return y, vocab


def training_subset(n: int, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of ``max(1, round(fraction·n))`` training records drawn without replacement."""
    k = max(1, round(fraction * n))
    return np.sort(np.random.default_rng([seed, round(fraction * 1e6)]).permutation(n)[:k])


@dataclass
class PTBXLSplit:
    """The refs of one PTB-XL folder with folds and patients, in ``ptbxl_database.csv`` order."""

    root: Path
    reader: Reader
    refs: list[RecordRef]
    records_folder: str

    @classmethod
    def load(cls, root: Path, records_folder: str = "records500", limit: int | None = None) -> PTBXLSplit:
        check_root(root)
        reader = make_reader("ptbxl", root, records_folder=records_folder, window_seconds=0)
        refs = reader.list_records()
        refs.sort(key=lambda r: int(r.record_id.rsplit("/", 1)[-1]))
        return cls(Path(root), reader, refs[:limit] if limit else refs, records_folder)

    @property
    def data_key(self) -> str:
        """The records for the embedding cache: folder, sampling folder, header names and sizes."""
        paths = [Path(r.path) for r in self.refs]
        return f"ptbxl:{self.root.resolve()}:{self.records_folder}:{file_fingerprint(paths)}"

    @property
    def folds(self) -> np.ndarray:
        return np.array([r.labels["strat_fold"] for r in self.refs])

    @property
    def codes(self) -> list[dict[str, float]]:
        return [r.labels["scp_codes"] for r in self.refs]

    def indices(self, part: str) -> np.ndarray:
        """Row indices of ``train`` (folds 1–8), ``val`` (9) or ``test`` (10)."""
        folds = {"train": PTBXL_TRAIN_FOLDS, "val": (PTBXL_VAL_FOLD,), "test": (PTBXL_TEST_FOLD,)}[part]
        return np.flatnonzero(np.isin(self.folds, folds))


def evaluate_multilabel(scores: np.ndarray, y: np.ndarray, vocab: list[str], n_boot: int, seed: int) -> dict[str, Any]:
    """Macro AUROC (labels with both classes), per-label AUROC, labels excluded, bootstrap 95 % CI over records."""
    macro, per_label, excluded = masked_macro_auroc(y, scores)
    boot = np.concatenate([[], *(bootstrap_macro_auroc(y, scores, w) for w in bootstrap_weights(len(y), n_boot, seed))])
    return {
        "macro_auroc": macro,
        "ci95": percentile_ci(boot),
        "n_records": len(y),
        "n_labels": len(vocab),
        "n_labels_excluded": excluded,
        "per_label_auroc": {lab: (None if np.isnan(a) else float(a)) for lab, a in zip(vocab, per_label)},
    }


def label_set_rows(
    split: PTBXLSplit, statements: pd.DataFrame, label_set: str
) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray, np.ndarray]:
    """(labels [N, K], vocabulary, train, val, test rows): records without a label of the set left out."""
    y, vocab = label_matrix(split.codes, statements, label_set)
    has_label = y.sum(1) > 0
    train, val, test = (split.indices(p) for p in ("train", "val", "test"))
    return y, vocab, train[has_label[train]], val[has_label[val]], test[has_label[test]]


def probe_label_set(
    features: np.ndarray,
    split: PTBXLSplit,
    statements: pd.DataFrame,
    label_set: str,
    fractions: tuple[float, ...],
    seed: int,
    n_boot: int,
) -> tuple[dict[str, Any], LinearProbe]:
    """Fit and test one head per training fraction; returns results and the 100 % head (for robustness)."""
    y, vocab, train, val, test = label_set_rows(split, statements, label_set)
    results: dict[str, Any] = {"n_labels": len(vocab), "fractions": {}}
    full_head = None
    for fraction in fractions:
        subset = train[training_subset(len(train), fraction, seed)]
        head, val_scores = fit_probe(features[subset], y[subset], features[val], y[val], multilabel=True)
        res = evaluate_multilabel(head.scores(features[test]), y[test], vocab, n_boot, seed)
        res.update(n_train=len(subset), l2=head.l2, val_macro_auroc={f"{k:g}": v for k, v in val_scores.items()})
        results["fractions"][f"{fraction:g}"] = res
        if fraction == max(fractions):
            full_head = head
            results["calibration"] = calibration_summary(
                head.logits(features[val]), y[val], head.logits(features[test]), y[test], multilabel=True
            )
            t = results["calibration"]["temperature"]
            logits = head.logits(features[test])
            results["reliability"] = {
                "before": reliability_curve(sigmoid(logits), y[test], True),
                "after": reliability_curve(sigmoid(logits / t), y[test], True),
            }
    return results, full_head


def attentive_label_set(
    records: RecordTokens,
    split: PTBXLSplit,
    statements: pd.DataFrame,
    label_set: str,
    seed: int,
    n_boot: int,
    num_queries: int,
) -> tuple[dict[str, Any], np.ndarray]:
    """The attentive head on all training records of a label set (weight decay and epoch chosen on fold 9),
    tested on fold 10; also returns its test scores."""
    y, vocab, train, val, test = label_set_rows(split, statements, label_set)
    probe = fit_attentive(
        records.take(train), y[train], records.take(val), y[val], True, num_queries=num_queries, seed=seed
    )
    scores = probe.scores(records.take(test))
    res = evaluate_multilabel(scores, y[test], vocab, n_boot, seed)
    res.update(n_train=len(train), **probe.summary())
    return res, scores


def paired_auroc_difference(
    split: PTBXLSplit,
    statements: pd.DataFrame,
    label_set: str,
    scores: np.ndarray,
    baseline: np.ndarray,
    n_boot: int,
    seed: int,
) -> dict[str, Any]:
    """Macro AUROC of ``scores`` minus ``baseline`` (test scores of one label set) on the same record resamples."""
    y, _, _, _, test = label_set_rows(split, statements, label_set)
    return paired_difference(functools.partial(bootstrap_macro_auroc, y[test]), scores, baseline, n_boot, seed)


def robustness_label_set(
    head: LinearProbe,
    condition_features: dict[str, np.ndarray],
    split: PTBXLSplit,
    statements: pd.DataFrame,
    label_set: str,
    seed: int,
    n_boot: int,
) -> dict[str, Any]:
    """Macro AUROC of the 100 % head on the test fold under each condition (features of test records only)."""
    y, vocab = label_matrix(split.codes, statements, label_set)
    test = split.indices("test")
    keep = y[test].sum(1) > 0
    out = {}
    for name, feats in condition_features.items():
        res = evaluate_multilabel(head.scores(feats[keep]), y[test][keep], vocab, n_boot, seed)
        out[name] = {k: res[k] for k in ("macro_auroc", "ci95", "n_labels_excluded")}
    return out


def run_ptbxl(
    split: PTBXLSplit,
    embed: Callable[[str, list[int], Any], np.ndarray],
    tokens: Callable[[], RecordTokens],
    heads: tuple[str, ...],
    label_sets: tuple[str, ...],
    fractions: tuple[float, ...],
    conditions: list[Any],
    seed: int,
    n_boot: int,
    num_queries: int = 4,
) -> tuple[dict[str, Any], dict[str, dict[str, np.ndarray]]]:
    """All label sets: linear heads at each fraction with robustness, and/or the attentive head at 100 %, for
    one backbone; also returns each label set's and head's test scores (for paired differences).

    ``embed(tag, indices, condition)`` gives features [len(indices), F] of those records under a condition
    (None = clean); ``tokens()`` the patch tokens of every clean record.
    """
    statements = read_statements(split.root)
    results: dict[str, Any] = {label_set: {} for label_set in label_sets}
    scores: dict[str, dict[str, np.ndarray]] = {label_set: {} for label_set in label_sets}
    if "linear" in heads:
        features = embed("clean", list(range(len(split.refs))), None)
        test = split.indices("test").tolist()
        condition_features = {c.name: embed(c.name, test, c) for c in conditions}
        for label_set in label_sets:
            res, head = probe_label_set(features, split, statements, label_set, fractions, seed, n_boot)
            if conditions:
                res["robustness"] = robustness_label_set(
                    head, condition_features, split, statements, label_set, seed, n_boot
                )
            results[label_set] = res
            *_, test_rows = label_set_rows(split, statements, label_set)
            scores[label_set]["linear"] = head.scores(features[test_rows])
    if "attentive" in heads:
        records = tokens()
        for label_set in label_sets:
            results[label_set]["attentive"], scores[label_set]["attentive"] = attentive_label_set(
                records, split, statements, label_set, seed, n_boot, num_queries
            )
    return results, scores
