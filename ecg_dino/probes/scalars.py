"""The probe reports' scalars: flat ``probe/…`` (model), ``probe_random_init/…`` and ``probe_rr_baseline/…``
keys, written to TensorBoard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

PREFIX = {"model": "probe", "random_init": "probe_random_init", "rr_baseline": "probe_rr_baseline"}


def prefix(model: str) -> str:
    """The scalar prefix of a report's model: ``model+rr`` (embedding beside RR features) -> ``probe_with_rr``."""
    base, _, extra = model.partition("+")
    return PREFIX[base] + (f"_with_{extra}" if extra else "")


CINC2017_TAGS = {"N": "N", "A": "A", "O": "O", "~": "noisy"}  # "~" is no name for a TensorBoard tag


def ptbxl_scalars(models: dict[str, Any]) -> dict[str, float]:
    """Flat scalars of a PTB-XL report: linear AUROC per label set and fraction, calibration, robustness, the
    attentive head's AUROC, and each paired difference to random init."""
    out = {}
    for model, sets in models.items():
        p = PREFIX[model]
        for label_set, res in sets.items():
            fractions = res.get("fractions", {})
            for frac, r in fractions.items():
                suffix = "" if float(frac) == max(map(float, fractions)) else f"_frac{frac}"
                out[f"{p}/ptbxl_{label_set}_auroc{suffix}"] = r["macro_auroc"]
            for key in ("ece", "ece_scaled", "brier", "brier_scaled") if "calibration" in res else ():
                out[f"{p}/ptbxl_{label_set}_{key}"] = res["calibration"][key]
            for cond, r in res.get("robustness", {}).items():
                out[f"{p}/ptbxl_{label_set}_auroc_{cond}"] = r["macro_auroc"]
            if "vs_random_init" in res:
                out[f"{p}/ptbxl_{label_set}_auroc_minus_random_init"] = res["vs_random_init"]["difference"]
            if "attentive" in res:
                out[f"{p}/ptbxl_{label_set}_attentive_auroc"] = res["attentive"]["macro_auroc"]
                if "vs_random_init" in res["attentive"]:
                    d = res["attentive"]["vs_random_init"]["difference"]
                    out[f"{p}/ptbxl_{label_set}_attentive_auroc_minus_random_init"] = d
    return finite(out)


def mitbih_scalars(models: dict[str, Any]) -> dict[str, float]:
    """Flat scalars of a MIT-BIH report: DS2 metrics, per-class Se/P+, calibration, robustness (missing: left out)."""
    out = {}
    for model, res in models.items():
        p, test = prefix(model), res["test"]
        for key in ("macro_auroc", "macro_f1", "j_kappa", "accuracy", "within_patient_macro_auroc"):
            out[f"{p}/mitbih_{key}"] = test.get(key)
        out[f"{p}/mitbih_patient_share_of_variance"] = res.get("patient_share_of_variance")
        for cls, r in test["per_class"].items():
            out[f"{p}/mitbih_se_{cls}"], out[f"{p}/mitbih_ppv_{cls}"] = r["sensitivity"], r["ppv"]
        for key in ("ece", "ece_scaled", "brier", "brier_scaled"):
            out[f"{p}/mitbih_{key}"] = res["calibration"][key]
        for group in ("robustness", "nstdb_records"):
            for cond, r in res.get(group, {}).items():
                out[f"{p}/mitbih_auroc_{group}_{cond}"] = r["macro_auroc"]
    return finite(out)


def cinc2017_scalars(models: dict[str, Any]) -> dict[str, float]:
    """Flat scalars of a CinC-2017 report: linear test metrics per fraction, calibration, robustness, paired
    difference; the attentive head's as ``cinc2017_attentive_…``."""
    out = {}
    for model, res in models.items():
        p, fractions = PREFIX[model], res.get("fractions", {})
        for frac, r in fractions.items():
            suffix = "" if float(frac) == max(map(float, fractions)) else f"_frac{frac}"
            for key in ("challenge_f1", "macro_auroc", "accuracy"):
                out[f"{p}/cinc2017_{key}{suffix}"] = r[key]
            for cls, c in r["per_class"].items():
                out[f"{p}/cinc2017_auroc_{CINC2017_TAGS[cls]}{suffix}"] = c["auroc"]
        for key in ("ece", "ece_scaled", "brier", "brier_scaled") if "calibration" in res else ():
            out[f"{p}/cinc2017_{key}"] = res["calibration"][key]
        for cond, r in res.get("robustness", {}).items():
            out[f"{p}/cinc2017_auroc_{cond}"] = r["macro_auroc"]
            out[f"{p}/cinc2017_challenge_f1_{cond}"] = r["challenge_f1"]
        for key, d in res.get("vs_random_init", {}).items():
            out[f"{p}/cinc2017_{key}_minus_random_init"] = d["difference"]
        if "attentive" in res:
            r = res["attentive"]
            for key in ("challenge_f1", "macro_auroc", "accuracy"):
                out[f"{p}/cinc2017_attentive_{key}"] = r[key]
            for key, d in r.get("vs_random_init", {}).items():
                out[f"{p}/cinc2017_attentive_{key}_minus_random_init"] = d["difference"]
    return finite(out)


def finite(scalars: dict[str, float | None]) -> dict[str, float]:
    """The scalars that are defined (no None/NaN: e.g. the Se of a class absent from the test set)."""
    return {k: float(v) for k, v in scalars.items() if v is not None and np.isfinite(v)}


def write_tensorboard(scalars: dict[str, float], log_dir: Path, step: int = 0) -> None:
    """Every scalar at ``step`` (e.g. the checkpoint's global step) in a TensorBoard event file."""
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(log_dir)) as writer:
        for key, value in scalars.items():
            writer.add_scalar(key, value, step)
