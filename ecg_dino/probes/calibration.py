"""Calibration: ECE and Brier score, temperature scaling fitted on validation logits, reliability diagrams.

ECE uses 15 equal-width confidence bins: ECE = Σ_b (n_b/n)·|acc_b − conf_b|. Multi-label: each label is a
binary problem (confidence = P(positive), accuracy = fraction positive in the bin), averaged over labels.
Multi-class: top-label ECE (confidence = max probability, accuracy = argmax correct).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

N_BINS = 15


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def binned(confidence: np.ndarray, outcome: np.ndarray, n_bins: int = N_BINS) -> tuple[np.ndarray, ...]:
    """(count, mean confidence, mean outcome) per equal-width bin on [0, 1]; the last bin includes 1."""
    b = np.clip((confidence * n_bins).astype(int), 0, n_bins - 1)
    count = np.bincount(b, minlength=n_bins).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.bincount(b, weights=confidence, minlength=n_bins) / count
        acc = np.bincount(b, weights=outcome.astype(float), minlength=n_bins) / count
    return count, conf, acc


def binary_ece(prob: np.ndarray, y: np.ndarray, n_bins: int = N_BINS) -> float:
    """ECE of one binary label: confidence = P(positive), accuracy = fraction of positives per bin."""
    count, conf, acc = binned(prob, y, n_bins)
    keep = count > 0
    return float((count[keep] / count.sum() * np.abs(acc[keep] - conf[keep])).sum())


def multilabel_ece(prob: np.ndarray, y: np.ndarray, n_bins: int = N_BINS) -> float:
    """Binary ECE per label [N, C], averaged over labels."""
    return float(np.mean([binary_ece(prob[:, c], y[:, c], n_bins) for c in range(y.shape[1])]))


def top_label_ece(prob: np.ndarray, y: np.ndarray, n_bins: int = N_BINS) -> float:
    """Top-label ECE of class probabilities [N, K] against integer labels [N]."""
    return binary_ece(prob.max(1), prob.argmax(1) == y, n_bins)


def multilabel_brier(prob: np.ndarray, y: np.ndarray) -> float:
    """Mean over labels and samples of (p − y)²."""
    return float(np.mean((prob - y) ** 2))


def multiclass_brier(prob: np.ndarray, y: np.ndarray) -> float:
    """Brier's original multi-class score: mean over samples of Σ_k (p_k − 1[y = k])²."""
    return float(np.mean(((prob - np.eye(prob.shape[1])[y]) ** 2).sum(1)))


def fit_temperature(logits: np.ndarray, y: np.ndarray, multilabel: bool) -> float:
    """The scalar T > 0 minimising the validation NLL of logits / T (BCE if multi-label, else CE)."""
    z = torch.as_tensor(logits, dtype=torch.float64)
    target = torch.as_tensor(y, dtype=torch.float64 if multilabel else torch.long)
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=100, line_search_fn="strong_wolfe")

    def nll() -> torch.Tensor:
        opt.zero_grad()
        scaled = z / log_t.exp()
        loss = F.binary_cross_entropy_with_logits(scaled, target) if multilabel else F.cross_entropy(scaled, target)
        loss.backward()
        return loss

    opt.step(nll)
    return float(log_t.detach().exp())


def calibration_summary(
    logits_val: np.ndarray, y_val: np.ndarray, logits_test: np.ndarray, y_test: np.ndarray, multilabel: bool
) -> dict[str, float]:
    """Test ECE and Brier before and after temperature scaling fitted on the validation split."""
    t = fit_temperature(logits_val, y_val, multilabel)
    prob = sigmoid if multilabel else softmax
    ece = multilabel_ece if multilabel else top_label_ece
    brier = multilabel_brier if multilabel else multiclass_brier
    before, after = prob(logits_test), prob(logits_test / t)
    return {
        "temperature": t,
        "ece": ece(before, y_test),
        "brier": brier(before, y_test),
        "ece_scaled": ece(after, y_test),
        "brier_scaled": brier(after, y_test),
    }


def reliability_curve(prob: np.ndarray, y: np.ndarray, multilabel: bool) -> tuple[np.ndarray, ...]:
    """Pooled reliability points (count, confidence, accuracy): all label probabilities, or top-label."""
    if multilabel:
        return binned(prob.ravel(), y.ravel())
    return binned(prob.max(1), prob.argmax(1) == y)


def plot_reliability(curves: dict[str, tuple[np.ndarray, ...]], title: str, path: Path) -> None:
    """Reliability diagram: accuracy vs confidence per bin for each named curve, with the diagonal."""
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
    for name, curve in curves.items():
        count, conf, acc = (np.asarray(a, dtype=float) for a in curve)  # lists when read back from JSON
        keep = count > 0
        ax.plot(conf[keep], acc[keep], marker="o", label=name)
    ax.set(xlabel="confidence", ylabel="observed frequency", xlim=(0, 1), ylim=(0, 1), title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
