"""Probe reports (PTB-XL, MIT-BIH, CinC 2017): ``report.json``, ``report.md`` (model vs random init [vs RR] with
95 % CIs, ``probes.markdown``), PNG plots (``probes.figures``) and the same scalars in TensorBoard
(``probes.scalars``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ecg_dino.probes.calibration import plot_reliability
from ecg_dino.probes.figures import cinc2017_figures, mitbih_figures, ptbxl_figures
from ecg_dino.probes.markdown import cinc2017_markdown, mitbih_markdown, ptbxl_markdown
from ecg_dino.probes.scalars import cinc2017_scalars, mitbih_scalars, ptbxl_scalars, write_tensorboard


def to_jsonable(obj: Any) -> Any:
    """Numpy arrays/scalars, tuples and NaN -> plain JSON values (NaN becomes null)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and np.isnan(obj):
        return None
    return obj


def write_report(report: dict[str, Any], out: Path, step: int = 0) -> None:
    """report.json, report.md, figures and TensorBoard scalars under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    probe, models = report["probe"], report["models"]
    figures_of, scalars_of, markdown = {
        "ptbxl": (ptbxl_figures, ptbxl_scalars, ptbxl_markdown),
        "mitbih": (mitbih_figures, mitbih_scalars, mitbih_markdown),
        "cinc2017": (cinc2017_figures, cinc2017_scalars, cinc2017_markdown),
    }[probe]
    figures, scalars = figures_of(models, out), scalars_of(models)
    curves, title = _reliability_curves(probe, models)
    if curves:  # none with the attentive head alone
        plot_reliability(curves, title, out / f"{probe}_reliability.png")
        figures = [*figures, f"{probe}_reliability.png"]
    report = {**report, "figures": figures, "scalars": scalars}
    (out / "report.json").write_text(json.dumps(to_jsonable(report), indent=1))
    (out / "report.md").write_text(markdown(report))
    write_tensorboard(scalars, out / "tensorboard", step)


def _reliability_curves(probe: str, models: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Test reliability curves before/after temperature scaling (PTB-XL: the first label set)."""
    if probe == "ptbxl":
        label_set = next(iter(next(iter(models.values()))))
        rel = {m: sets[label_set]["reliability"] for m, sets in models.items() if "reliability" in sets[label_set]}
        title = f"PTB-XL {label_set}: reliability (fold 10)"
    else:
        rel = {m: res["reliability"] for m, res in models.items() if "reliability" in res}
        title = {"mitbih": "MIT-BIH DS2", "cinc2017": "CinC 2017 test records"}[probe] + ": top-label reliability"
    return {f"{m} {when}": curve for m, r in rel.items() for when, curve in r.items()}, title
