"""The Markdown of the probe reports (PTB-XL, MIT-BIH, CinC 2017): model vs random init [vs RR] with 95 % CIs."""

from __future__ import annotations

from typing import Any

import numpy as np

CINC2017_METRICS = {"challenge_f1": "challenge F1", "macro_auroc": "macro AUROC"}
PARADIGM_TITLES = {
    "inter-patient": "DS1 → DS2, inter-patient",
    "intra-patient": "intra-patient: each record's first half of beats → its second half",
    "cross-database": "MIT-BIH → another annotated database",
}


def fmt(value: float | None, ci: tuple[float, float] | list[float] | None = None) -> str:
    """``0.812 [0.780, 0.842]``; ``–`` for a missing value."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    if ci is None or any(c is None or np.isnan(c) for c in ci):
        return f"{value:.3f}"
    return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


def table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def calibration_table(models: dict[str, Any], names: list[str], how: str) -> str:
    """The calibration section of a single-label report: temperature, ECE and Brier before → after scaling."""
    rows = [
        [
            m,
            f"{c['temperature']:.2f}",
            f"{c['ece']:.3f} → {c['ece_scaled']:.3f}",
            f"{c['brier']:.4f} → {c['brier_scaled']:.4f}",
        ]
        for m in names
        for c in [models[m]["calibration"]]
    ]
    return f"## Calibration ({how})\n\n" + table(["model", "T", "ECE before → after", "Brier before → after"], rows)


def ptbxl_markdown(report: dict[str, Any]) -> str:
    """PTB-XL report: linear AUROC by label set × fraction, linear vs attentive at 100 % with paired differences,
    calibration, robustness; model vs random init."""
    models = report["models"]
    names = list(models)
    first = models[names[0]]
    linear = "fractions" in next(iter(first.values()))
    parts = [
        f"# PTB-XL probe\n\n{_preamble(report)}",
        "## Macro AUROC on fold 10 [bootstrap 95 % CI over records]\n\n'labels (excluded)': labels in the set "
        "(of which left out of the macro mean because fold 10 lacks their positives or negatives).\n",
    ]
    if linear:
        rows = [
            [label_set, f"{r['n_labels']} ({r['n_labels_excluded']})", f"{float(frac):.0%}", str(r["n_train"])]
            + [fmt(f["macro_auroc"], f["ci95"]) for m in names for f in [models[m][label_set]["fractions"][frac]]]
            for label_set, res in first.items()
            for frac, r in res["fractions"].items()
        ]
        parts += [
            "### Linear heads\n",
            table(["label set", "labels (excluded)", "train fraction", "train records", *names], rows),
        ]
    parts.append(_ptbxl_heads_table(models, names))
    if linear:
        cal_rows = [
            [
                label_set,
                m,
                f"{c['temperature']:.2f}",
                f"{c['ece']:.3f} → {c['ece_scaled']:.3f}",
                f"{c['brier']:.4f} → {c['brier_scaled']:.4f}",
            ]
            for label_set in first
            for m in names
            for c in [models[m][label_set]["calibration"]]
        ]
        parts += [
            "## Calibration (100 % linear head; temperature fitted on fold 9)\n",
            table(["label set", "model", "T", "ECE (15 bins) before → after", "Brier before → after"], cal_rows),
        ]
    if "robustness" in next(iter(first.values())):
        for m in names:
            conds = list(next(iter(models[m].values()))["robustness"])
            rows = [
                [c]
                + [
                    fmt(models[m][s]["robustness"][c]["macro_auroc"], models[m][s]["robustness"][c]["ci95"])
                    for s in models[m]
                ]
                for c in conds
            ]
            parts += [
                f"## Robustness on fold 10: {m} (100 % linear heads, trained on clean 12-lead data)\n",
                table(["condition", *models[m]], rows),
            ]
    parts.append(_figures(report))
    return "\n\n".join(parts) + "\n"


def _ptbxl_heads_table(models: dict[str, Any], names: list[str]) -> str:
    """Linear and attentive heads side by side at 100 % of the training records, each model beside the
    random-init twin with the same head, and the paired difference."""
    rows = []
    for label_set in models[names[0]]:
        for head in ("linear", "attentive"):
            of = {m: _ptbxl_head_result(models[m][label_set], head) for m in names}
            if of[names[0]] is None:
                continue
            paired = of[names[0]].get("vs_random_init")
            rows.append(
                [label_set, head]
                + [fmt(r["macro_auroc"], r["ci95"]) if r else "–" for r in of.values()]
                + [
                    f"{fmt(paired['difference'], paired['ci95'])}, ≤ 0 in {paired['share_not_positive']:.1%}"
                    if paired
                    else "–"
                ]
            )
    header = ["label set", "head", *names, "paired Δ model − random init"]
    return "### Linear vs attentive head (100 % of the training records; paired Δ on the same resamples)\n\n" + (
        table(header, rows)
    )


def _ptbxl_head_result(res: dict[str, Any], head: str) -> dict[str, Any] | None:
    """A label set's 100 % result of one head (with the paired difference, where there is one)."""
    if head == "attentive":
        return res.get("attentive")
    if "fractions" not in res:
        return None
    fractions = res["fractions"]
    return {
        **fractions[max(fractions, key=float)],
        **({"vs_random_init": res["vs_random_init"]} if "vs_random_init" in res else {}),
    }


def mitbih_markdown(report: dict[str, Any]) -> str:
    """MIT-BIH report: DS2 metrics per model with CIs, per-class Se/P+, confusion, calibration, robustness."""
    models = report["models"]
    names = list(models)
    metric_rows = [
        [key] + [fmt(models[m]["test"][key], models[m]["test"].get("ci95", {}).get(key)) for m in names]
        for key in ("macro_auroc", "macro_f1", "j_kappa", "accuracy")
    ]
    metric_rows.append(["kappa"] + [fmt(models[m]["test"]["kappa"]) for m in names])
    for cls in models[names[0]]["test"]["per_class"]:
        for key in ("sensitivity", "ppv"):
            metric_rows.append([f"{key} {cls}"] + [fmt(models[m]["test"]["per_class"][cls][key]) for m in names])
        per_class = [models[m]["test"]["per_class"][cls] for m in names]
        metric_rows.append([f"auroc {cls}"] + [fmt(r["auroc"], r.get("auroc_ci95")) for r in per_class])
        if "within_patient_auroc" in per_class[0]:
            metric_rows.append(
                [f"within-patient auroc {cls}"]
                + [fmt(r["within_patient_auroc"], r.get("within_patient_auroc_ci95")) for r in per_class]
            )
    tests = [models[m]["test"] for m in names]
    if "within_patient_macro_auroc" in tests[0]:
        key = "within_patient_macro_auroc"
        metric_rows.append(["within-patient macro auroc"] + [fmt(t[key], t.get("ci95", {}).get(key)) for t in tests])
    if "patient_share_of_variance" in models[names[0]]:
        key = "patient_share_of_variance"
        metric_rows.append(["patient share of N-beat feature variance"] + [fmt(models[m][key]) for m in names])
    parts = [
        f"# MIT-BIH beat probe ({PARADIGM_TITLES[report['settings'].get('paradigm', 'inter-patient')]})\n\n"
        f"{_preamble(report)}",
        "## Test metrics [bootstrap 95 % CI, patients resampled]\n",
        table(["metric", *names], metric_rows),
    ]
    for m in names:
        for key, paired in models[m]["test"].items():
            if key.startswith("vs_"):
                line = (
                    f"Paired difference, {m} − {key[3:]}, macro AUROC on the same patient resamples: "
                    f"{fmt(paired['difference'], paired['ci95'])}; not positive in "
                    f"{paired['share_not_positive']:.1%} of {paired['n_boot']} resamples."
                )
                if "per_class" in paired:
                    per_class = paired["per_class"].items()
                    classes = ", ".join(f"{c} {fmt(d['difference'], d['ci95'])}" for c, d in per_class)
                    nsvf = paired["macro_nsvf"]
                    line += f" Over N, S, V, F: {fmt(nsvf['difference'], nsvf['ci95'])}. Per class: {classes}."
                parts.append(line)
    for m in names:
        cm = models[m]["test"]["confusion"]
        classes = list(models[m]["test"]["per_class"])
        parts += [
            f"### Confusion matrix: {m} (rows true, columns predicted)\n",
            table(["", *classes], [[c] + [str(v) for v in row] for c, row in zip(classes, cm)]),
        ]
    parts.append(calibration_table(models, names, "top-label ECE, 15 bins; temperature fitted on the validation beats"))
    for group, title in (
        ("robustness", "Robustness: NSTDB noise added to a DS2 subsample"),
        (
            "nstdb_records",
            "Real noisy records 118e*/119e* (em noise; DS1 patients 118 and 119, so not a held-out test)",
        ),
    ):
        robust = [m for m in names if group in models[m]]
        if robust:
            conds = list(models[robust[0]][group])
            rows = [
                [c]
                + [
                    fmt(
                        models[m][group][c]["macro_auroc"],
                        models[m][group][c].get("ci95", {}).get("macro_auroc"),
                    )
                    for m in robust
                ]
                for c in conds
            ]
            parts += [f"## {title} — macro AUROC\n", table(["condition", *robust], rows)]
    parts.append(_figures(report))
    return "\n\n".join(parts) + "\n"


def cinc2017_markdown(report: dict[str, Any]) -> str:
    """CinC-2017 report: linear test metrics per model and fraction, the attentive head, paired differences,
    calibration, robustness."""
    models = report["models"]
    names = list(models)
    parts = [
        f"# PhysioNet/CinC Challenge 2017 rhythm probe (N, A, O, ~)\n\n{_preamble(report)}",
        "## Test records A05001–A06000 [bootstrap 95 % CI over records]\n\nChallenge F1: the challenge's score, "
        "F1 = 2·TP/(row + column) per class averaged over N, A and O (~ is classified but not averaged). "
        "Macro AUROC: one-vs-rest over the four classes.",
    ]
    linear = [m for m in names if "fractions" in models[m]]
    for m in linear:
        fractions = models[m]["fractions"]
        rows = [[f"{float(frac):.0%}", str(r["n_train"]), *_cinc2017_cells(r)] for frac, r in fractions.items()]
        header = ["train fraction", "train records", *_cinc2017_header(next(iter(fractions.values())))]
        parts += [f"### Linear head: {m}\n", table(header, rows)]
    if linear:
        parts.append(_cinc2017_paired("Linear heads", models.get("model", {}).get("vs_random_init")))
    attentive = [m for m in names if "attentive" in models[m]]
    if attentive:
        rows = [
            [m, *_cinc2017_cells(r), f"{r['weight_decay']:g}", str(r["epochs"]), f"{r['fit_seconds']:.0f}"]
            for m in attentive
            for r in [models[m]["attentive"]]
        ]
        header = ["model", *_cinc2017_header(models[attentive[0]]["attentive"]), "weight decay", "epoch kept", "fit s"]
        parts += ["### Attentive head (100 % of the training records)\n", table(header, rows)]
        paired = models.get("model", {}).get("attentive", {}).get("vs_random_init")
        parts.append(_cinc2017_paired("Attentive heads", paired))
    if linear:
        how = "100 % linear head; top-label ECE, 15 bins; temperature fitted on the validation records"
        parts.append(calibration_table(models, linear, how))
    robust = [m for m in names if "robustness" in models[m]]
    if robust:
        conds = list(models[robust[0]]["robustness"])
        rows = [
            [c]
            + [
                fmt(r[k], r.get("ci95", {}).get(k))
                for m in robust
                for r in [models[m]["robustness"][c]]
                for k in CINC2017_METRICS
            ]
            for c in conds
        ]
        header = ["condition", *(f"{m} {name}" for m in robust for name in CINC2017_METRICS.values())]
        parts += [
            "## Robustness: NSTDB noise added to the test records (100 % linear heads, trained on clean records)\n",
            table(header, rows),
        ]
    parts.append(_figures(report))
    return "\n\n".join(parts) + "\n"


def _cinc2017_header(r: dict[str, Any]) -> list[str]:
    return [*CINC2017_METRICS.values(), *(f"AUROC {c}" for c in r["per_class"]), "accuracy"]


def _cinc2017_cells(r: dict[str, Any]) -> list[str]:
    return [
        *(fmt(r[k], r.get("ci95", {}).get(k)) for k in CINC2017_METRICS),
        *(fmt(c["auroc"]) for c in r["per_class"].values()),
        fmt(r["accuracy"]),
    ]


def _cinc2017_paired(what: str, paired: dict[str, Any] | None) -> str:
    """One line: each metric's paired bootstrap difference, model − random init, with the same head."""
    if not paired:
        return ""
    lines = [
        f"{CINC2017_METRICS[key]} {fmt(d['difference'], d['ci95'])}, not positive in "
        f"{d['share_not_positive']:.1%} of {d['n_boot']} resamples"
        for key, d in paired.items()
    ]
    return f"{what}, paired difference model − random init (100 % heads, same test-record resamples): " + (
        "; ".join(lines) + "."
    )


def _preamble(report: dict[str, Any]) -> str:
    settings = "\n".join(f"- {k}: {v}" for k, v in report["settings"].items())
    data = "\n".join(f"- {k}: {v}" for k, v in report["data"].items())
    return f"Checkpoint `{report['checkpoint']}`.\n\nSettings:\n{settings}\n\nData:\n{data}"


def _figures(report: dict[str, Any]) -> str:
    return "## Figures\n\n" + "\n".join(f"![{p}]({p})" for p in report.get("figures", []))
