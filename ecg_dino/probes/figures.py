"""The probe reports' robustness plots: AUROC against SNR per noise type, and against the number of leads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

SUMMARY_SETS = ("all", "superdiagnostic")  # label sets drawn in the PTB-XL robustness plots


def plot_curves(
    panels: dict[str, dict[str, dict[float, float]]],
    xlabel: str,
    path: Path,
    references: dict[str, dict[str, float]] | None = None,
) -> None:
    """One subplot per panel, one line per named curve {x: AUROC}; dashed clean references per panel."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.5), squeeze=False, sharey=True)
    for ax, (title, curves) in zip(axes[0], panels.items()):
        for i, (name, points) in enumerate(curves.items()):
            xs = sorted(points)
            line = ax.plot(xs, [points[x] for x in xs], marker="o", label=name, color=f"C{i}")
            reference = (references or {}).get(title, {})
            if name in reference:
                ax.axhline(reference[name], linestyle="--", linewidth=1, color=line[0].get_color())
        ax.set(title=title, xlabel=xlabel)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("macro AUROC")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def snr_panels(robust: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, dict[float, float]]]:
    """{curve: {condition: result}} -> {noise type: {curve: {snr: AUROC}}} for conditions named ``em_6dB``."""
    panels: dict[str, dict[str, dict[float, float]]] = {}
    for curve, conds in robust.items():
        for cond, r in conds.items():
            if cond.endswith("dB"):
                noise, snr = cond.split("_", 1)
                panels.setdefault(noise, {}).setdefault(curve, {})[float(snr[:-2])] = r["macro_auroc"]
    return panels


def ptbxl_figures(models: dict[str, Any], out: Path) -> list[str]:
    """AUROC against SNR per noise type and against the number of leads (label sets ``SUMMARY_SETS``)."""
    robust = {
        f"{m} {s}": sets[s]["robustness"]
        for m, sets in models.items()
        for s in SUMMARY_SETS
        if s in sets and "robustness" in sets[s]
    }
    if not robust:
        return []
    clean = {
        f"{m} {s}": sets[s]["fractions"][max(sets[s]["fractions"], key=float)]["macro_auroc"]
        for m, sets in models.items()
        for s in SUMMARY_SETS
        if s in sets
    }
    panels = snr_panels(robust)
    plot_curves(panels, "SNR (dB)", out / "ptbxl_auroc_vs_snr.png", dict.fromkeys(panels, clean))
    leads = {
        "lead subsets": {
            c: {float(k.split("_")[1]): v["macro_auroc"] for k, v in r.items() if k.startswith("leads_")}
            for c, r in robust.items()
        }
    }
    plot_curves(leads, "number of leads", out / "ptbxl_auroc_vs_leads.png")
    return ["ptbxl_auroc_vs_snr.png", "ptbxl_auroc_vs_leads.png"]


def mitbih_figures(models: dict[str, Any], out: Path) -> list[str]:
    """AUROC against SNR per noise type, with the real noisy 118e/119e records as one more panel."""
    robust = {m: r["robustness"] for m, r in models.items() if "robustness" in r}
    if not robust:
        return []
    panels = snr_panels(robust)
    clean = {m: r["clean"]["macro_auroc"] for m, r in robust.items() if "clean" in r}
    references = dict.fromkeys(panels, clean)
    real = {
        m: {_nstdb_snr(c): v["macro_auroc"] for c, v in r["nstdb_records"].items() if c != "clean"}
        for m, r in models.items()
        if "nstdb_records" in r
    }
    if real:
        title = "em: real 118e/119e (DS1)"
        panels[title] = real
        references[title] = {m: r["nstdb_records"]["clean"]["macro_auroc"] for m, r in models.items() if m in real}
    plot_curves(panels, "SNR (dB)", out / "mitbih_auroc_vs_snr.png", references)
    return ["mitbih_auroc_vs_snr.png"]


def cinc2017_figures(models: dict[str, Any], out: Path) -> list[str]:
    """AUROC against SNR per noise type."""
    robust = {m: r["robustness"] for m, r in models.items() if "robustness" in r}
    if not robust:
        return []
    panels = snr_panels(robust)
    clean = {m: r["clean"]["macro_auroc"] for m, r in robust.items()}
    plot_curves(panels, "SNR (dB)", out / "cinc2017_auroc_vs_snr.png", dict.fromkeys(panels, clean))
    return ["cinc2017_auroc_vs_snr.png"]


def _nstdb_snr(name: str) -> float:
    """``em_6dB`` -> 6.0 (the real noisy records are reported under the same names)."""
    return float(name.split("_", 1)[1][:-2])
