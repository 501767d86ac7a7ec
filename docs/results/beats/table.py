"""The README's issue-14 tables from probe-mitbih reports: one row per head for every feature kind and
normalisation, or one row per checkpoint along a training.

python docs/results/beats/table.py docs/results/beats          (<features>_<norm>[/_]report.json)
python docs/results/beats/table.py --steps docs/results/beats/steps   (step_<N>[/_]report.json)
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any


def paired(d: dict[str, Any] | None) -> str:
    """A paired difference with its CI: +0.014 [+0.005, +0.025]; – where the report has none."""
    return "–" if d is None else f"{d['difference']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]"


def report(folder: Path, stem: str) -> Path | None:
    """<stem>/report.json as the probe writes it, or <stem>_report.json as docs/results keeps it."""
    return next((p for p in (folder / stem / "report.json", folder / f"{stem}_report.json") if p.exists()), None)


def row(kind: str, norm: str, name: str, m: dict[str, Any]) -> str:
    """One Markdown row: AUROC [CI], F1, jκ, accuracy, Se / +P per class, within-patient, patient share, paired Δ
    of the macro and of the macro over N, S, V, F."""
    t, pc = m["test"], m["test"]["per_class"]
    head = f"{name} (w={m['fusion_weight']:g})" if name.endswith("fusion") else name
    lo, hi = t["ci95"]["macro_auroc"]
    se = " | ".join(f"{pc[c]['sensitivity']:.3f} / {pc[c]['ppv']:.3f}" for c in "NSVF")
    key = next((k for k in t if k.startswith("vs_")), None)
    delta = f"{paired(t[key])} ({key[3:]}) | {paired(t[key].get('macro_nsvf'))}" if key else "– | –"
    if name == "rr_baseline":
        kind = norm = "–"
    return (
        f"| {kind} | {norm} | {head} | {t['macro_auroc']:.3f} [{lo:.3f}, {hi:.3f}] | {t['macro_f1']:.3f} | "
        f"{t['j_kappa']:.3f} | {t['accuracy']:.3f} | {se} | {t['within_patient_macro_auroc']:.3f} | "
        f"{pc['S']['within_patient_auroc']:.3f} | {m['patient_share_of_variance']:.3f} | {delta} |"
    )


def main(folder: Path) -> None:
    print(
        "| features | norm | head | macro AUROC | macro F1 | jκ | acc | N Se/+P | S Se/+P | V Se/+P | F Se/+P "
        "| within | within S | patient share | paired Δ | paired Δ N, S, V, F |"
    )
    print("|" + "---|" * 16)
    rr_shown = False
    for kind in ("window", "context"):
        for norm in ("record", "none"):
            path = report(folder, f"{kind}_{norm}")
            if path is None:
                continue
            for name, m in json.loads(path.read_text())["models"].items():
                if name != "rr_baseline" or not rr_shown:
                    print(row(kind, norm, name, m))
            rr_shown = True


def curve(folder: Path) -> None:
    """Window features with record normalisation and RR, one row per step: the embedding against its
    random-init twin, the fusion against RR alone and against the random-init fusion (all paired)."""
    print(
        "| step | model | random init | model − random init | fusion (w) | fusion − RR alone "
        "| fusion − RR alone, N, S, V, F | fusion − random-init fusion |"
    )
    print("|" + "---|" * 8)
    steps = {int(m.group(1)) for p in folder.iterdir() if (m := re.fullmatch(r"step_(\d+)(_report\.json)?", p.name))}
    for step in sorted(steps):
        m = json.loads(report(folder, f"step_{step}").read_text())["models"]
        model, fused = m["model"]["test"], m["model+rr_fusion"]
        vs_rr = fused["test"]["vs_rr_baseline"]
        print(
            f"| {step} | {model['macro_auroc']:.3f} | {m['random_init']['test']['macro_auroc']:.3f} | "
            f"{paired(model['vs_random_init'])} | {fused['test']['macro_auroc']:.3f} ({fused['fusion_weight']:g}) | "
            f"{paired(vs_rr)} | {paired(vs_rr.get('macro_nsvf'))} | "
            f"{paired(fused['test']['vs_random_init+rr_fusion'])} |"
        )


if __name__ == "__main__":
    if sys.argv[1] == "--steps":
        curve(Path(sys.argv[2]))
    else:
        main(Path(sys.argv[1]))
