"""Probe metrics with per-sample weights, so one code path gives point estimates and bootstrap resamples.

A bootstrap resample is a vector of multiplicities (how often each sample was drawn); every metric here
takes such ``weights`` (``None`` = all ones), so resampling never copies the data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np


def weighted_auroc(y: np.ndarray, score: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """AUROC of one binary label for each row of ``weights`` [R, N] (or once if ``None``); ties count 1/2.

    AUROC = P(score_pos > score_neg) + ½·P(tie), with every sample counted ``weight`` times. NaN where a
    weighting leaves no positives or no negatives.
    """
    y = np.asarray(y).astype(bool)
    order = np.argsort(score, kind="mergesort")
    s = np.asarray(score)[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])  # first index of each tie group
    w = np.ones((1, len(s))) if weights is None else np.atleast_2d(weights)[:, order].astype(float)
    pos = np.add.reduceat(w * y[order], starts, axis=1)  # [R, G] positive weight per tie group
    neg = np.add.reduceat(w * ~y[order], starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg  # negative weight strictly below each group
    n_pos, n_neg = pos.sum(1), neg.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (pos * (below + 0.5 * neg)).sum(1) / (n_pos * n_neg)
    auc[(n_pos == 0) | (n_neg == 0)] = np.nan
    return auc if weights is not None and np.ndim(weights) == 2 else auc[0]


def per_label_auroc(y: np.ndarray, scores: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """AUROC per column of ``y``/``scores`` [N, C] -> [C] (or [R, C] for weights [R, N]); NaN = undefined."""
    return np.stack([weighted_auroc(y[:, c], scores[:, c], weights) for c in range(y.shape[1])], axis=-1)


def within_group_auroc(
    y: np.ndarray, score: np.ndarray, groups: np.ndarray, min_count: int = 10, weights: np.ndarray | None = None
) -> np.ndarray:
    """AUROC of one binary label computed inside each group (patient) that holds at least ``min_count``
    positives and negatives, averaged with the group's positives as weights; NaN where no group qualifies.

    Unlike the pooled AUROC it is blind to offsets of the score between groups, so it tells how well the
    score ranks beats within a patient. ``weights`` [R, N] (a group bootstrap: a group's samples share one
    multiplicity) give one value per row.
    """
    y = np.asarray(y).astype(bool)
    inverse = np.unique(groups, return_inverse=True)[1]
    aucs, positives, first = [], [], []
    for g in range(int(inverse.max()) + 1 if len(y) else 0):
        idx = np.flatnonzero(inverse == g)
        n_pos = int(y[idx].sum())
        if n_pos >= min_count and len(idx) - n_pos >= min_count:
            aucs.append(weighted_auroc(y[idx], score[idx]))
            positives.append(n_pos)
            first.append(idx[0])
    w = np.ones((1, len(y))) if weights is None else np.atleast_2d(weights)
    m = w[:, first] * np.asarray(positives, dtype=float)  # [R, groups that qualify]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (m * np.asarray(aucs, dtype=float)).sum(1) / m.sum(1)
    return out if weights is not None and np.ndim(weights) == 2 else out[0]


def between_group_share(x: np.ndarray, groups: np.ndarray) -> float:
    """Share of the variance of standardised features [N, D] that lies between group means (η², averaged over
    features): near 1 when features mostly say which patient a beat comes from, near 0 when they do not."""
    z = (x - x.mean(0)) / np.maximum(x.std(0), 1e-12)
    inverse = np.unique(groups, return_inverse=True)[1]
    counts = np.bincount(inverse)
    means = np.stack([np.bincount(inverse, weights=z[:, d]) for d in range(z.shape[1])], axis=1) / counts[:, None]
    return float(np.mean((counts[:, None] * means**2).sum(0) / (z**2).sum(0)))


def masked_macro_auroc(y: np.ndarray, scores: np.ndarray) -> tuple[float, np.ndarray, int]:
    """(macro AUROC over labels with both classes, per-label AUROC, number of labels excluded).

    Unlike torchmetrics' ``MultilabelAUROC(average="macro")``, which scores a label without positives as 0,
    such labels are left out of the mean and counted.
    """
    per_label = per_label_auroc(y, scores)
    valid = ~np.isnan(per_label)
    macro = float(per_label[valid].mean()) if valid.any() else float("nan")
    return macro, per_label, int((~valid).sum())


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Integer labels [N] -> one-hot float [N, K]."""
    return np.eye(num_classes)[labels]


def confusion(y: np.ndarray, pred: np.ndarray, num_classes: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Weighted confusion matrix [K, K]: rows = true class, columns = predicted class."""
    idx = y * num_classes + pred
    return np.bincount(idx, weights=weights, minlength=num_classes**2).reshape(num_classes, num_classes)


def class_report(cm: np.ndarray) -> dict[str, np.ndarray | float]:
    """Per-class sensitivity, PPV, F1 and Cohen's κ from a confusion matrix (NaN where undefined).

    Se_k = TP/(TP+FN), P+_k = TP/(TP+FP), F1_k = 2·Se·P+/(Se+P+) (0 when TP = 0 but the class occurs);
    κ = (p_o − p_e)/(1 − p_e) with p_o the accuracy and p_e = Σ_k row_k·col_k / n².
    """
    tp = np.diag(cm)
    true, predicted, n = cm.sum(1), cm.sum(0), cm.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        se = tp / true
        ppv = tp / predicted
        f1 = 2 * tp / (true + predicted)
        p_o, p_e = tp.sum() / n, (true * predicted).sum() / n**2
        kappa = (p_o - p_e) / (1 - p_e)
    return {"sensitivity": se, "ppv": ppv, "f1": f1, "kappa": float(kappa), "accuracy": float(p_o)}


def j_kappa(cm: np.ndarray, s: int = 1, v: int = 2) -> dict[str, float]:
    """The jκ index of Mondéjar-Guerra et al. (2019): jκ = ½·κ + ⅛·j, j = Se_S + Se_V + P+_S + P+_V.

    Mondéjar-Guerra, Novo, Rouco, Penedo, Ortega, "Heartbeat classification fusing temporal and
    morphological information of ECGs via ensemble of classifiers", Biomed. Signal Process. Control 47
    (2019) 41–48; weights w1 = 0.5, w2 = 0.125 as in their code (``evaluation_AAMI.py``). Here κ is Cohen's
    κ over the full AAMI confusion matrix and Se/P+ are plain one-vs-rest values (no AAMI F-as-V exception).
    """
    rep = class_report(cm)
    j = rep["sensitivity"][s] + rep["sensitivity"][v] + rep["ppv"][s] + rep["ppv"][v]
    return {"j_index": float(j), "kappa": rep["kappa"], "j_kappa": float(0.5 * rep["kappa"] + 0.125 * j)}


def bootstrap_weights(
    n: int, n_boot: int, seed: int, groups: np.ndarray | None = None, chunk: int = 100
) -> Iterator[np.ndarray]:
    """Chunks [r, n] of multiplicities of samples drawn with replacement; whole groups (patients) if given."""
    rng = np.random.default_rng(seed)
    inverse = np.arange(n) if groups is None else np.unique(groups, return_inverse=True)[1]
    n_groups = int(inverse.max()) + 1 if n else 0
    for start in range(0, n_boot, chunk):
        r = min(chunk, n_boot - start)
        draws = rng.integers(0, n_groups, (r, n_groups))  # [r, G] drawn group indices
        counts = np.stack([np.bincount(d, minlength=n_groups) for d in draws])  # [r, G]
        yield counts[:, inverse].astype(float)


def percentile_ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The (lower, upper) percentile interval of bootstrap values, ignoring NaN resamples."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    a = (1 - level) / 2
    return float(np.quantile(values, a)), float(np.quantile(values, 1 - a))


def macro_of(per_label: np.ndarray) -> np.ndarray:
    """Mean of each row of per-label AUROCs [r, C] over its defined (non-NaN) labels; NaN where none is."""
    valid = ~np.isnan(per_label)
    count = valid.sum(-1)
    return np.where(count > 0, np.where(valid, per_label, 0).sum(-1) / np.maximum(count, 1), np.nan)


def bootstrap_macro_auroc(y: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Macro AUROC per resample of ``weights`` [r, N]; a label lacking positives or negatives in a resample
    is skipped in that resample."""
    return macro_of(per_label_auroc(y, scores, weights))


def paired_difference(
    metric: Callable[[np.ndarray, np.ndarray], np.ndarray],
    scores: np.ndarray,
    baseline: np.ndarray,
    n_boot: int,
    seed: int,
    groups: np.ndarray | None = None,
) -> dict[str, Any]:
    """``metric(scores) − metric(baseline)`` on the same bootstrap resamples (whole ``groups`` when given): the
    difference, its 95 % CI and the share of resamples where it is not positive. Paired, so the spread between
    samples (or patients) that both models share cancels; two separate CIs keep it. ``metric(scores, weights)``
    maps weights [r, N] to r values."""
    return paired_differences(lambda s, w: metric(s, w)[:, None], scores, baseline, n_boot, seed, groups)[0]


def paired_differences(
    metrics: Callable[[np.ndarray, np.ndarray], np.ndarray],
    scores: np.ndarray,
    baseline: np.ndarray,
    n_boot: int,
    seed: int,
    groups: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """``paired_difference`` of M metrics in one pass over the resamples: ``metrics(scores, weights)`` maps
    weights [r, N] to values [r, M]; one summary per metric."""
    ones = np.ones((1, len(scores)))
    diffs = np.concatenate(
        [metrics(scores, w) - metrics(baseline, w) for w in bootstrap_weights(len(scores), n_boot, seed, groups)]
    )
    point = metrics(scores, ones)[0] - metrics(baseline, ones)[0]
    return [
        {
            "difference": float(point[m]),
            "ci95": percentile_ci(d),
            "share_not_positive": float(np.mean(d[~np.isnan(d)] <= 0)),
            "n_boot": n_boot,
        }
        for m, d in enumerate(diffs.T)
    ]
