"""Comparison of probe reports (``ecg-dino compare``): one table (Markdown + JSON) and robustness plots.

Each report already holds its checkpoint (``model``) and the random-init twin of the same backbone and seed;
the twin is taken once and checked to be the same in every report. The table answers two questions: does the
pretrained model beat random init with non-overlapping bootstrap CIs, and how much AUROC does each model lose
from clean to 0 dB electrode-motion (``em``) noise. CinC-2017 reports add a row per model: the challenge F1, macro
AUROC and the paired difference to random init.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ecg_dino.probes.figures import plot_curves, snr_panels
from ecg_dino.probes.markdown import fmt, table
from ecg_dino.probes.mitbih import WITHIN_PATIENT_MIN_BEATS
from ecg_dino.probes.report import to_jsonable

RANDOM, RR = "random init", "RR intervals"
TITLES = {"mitbih": "MIT-BIH", "ptbxl": "PTB-XL", "cinc2017": "CinC 2017"}
NOISE = "em_0dB"  # the robustness condition the table reports
PTBXL_SETS = ("all", "superdiagnostic", "diagnostic", "rhythm")


def named_reports(pairs: list[str], probe: str) -> dict[str, dict[str, Any]]:
    """``NAME=path/report.json`` pairs -> {name: report}; the file must be a report of ``probe``."""
    out = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"expected NAME=path/report.json, got {pair!r}")
        report = json.loads(Path(path).read_text())
        if report.get("probe") != probe:
            raise ValueError(f"{path}: a {report.get('probe')!r} report, expected {probe!r}")
        out[name] = report
    return out


def shared_twin(reports: dict[str, dict[str, Any]], key: str) -> dict[str, Any]:
    """The ``key`` entry (random init / RR baseline) common to all reports; an error if they disagree."""
    twins = {name: r["models"][key] for name, r in reports.items() if key in r["models"]}
    if not twins:
        raise ValueError(f"no report holds a {key!r} result (was it run with --no-random-init?)")
    first_name, first = next(iter(twins.items()))
    for name, twin in twins.items():
        if json.dumps(twin, sort_keys=True) != json.dumps(first, sort_keys=True):
            raise ValueError(
                f"the {key!r} results of {first_name!r} and {name!r} differ: different seeds or backbones?"
            )
    return first


def mitbih_row(res: dict[str, Any]) -> dict[str, Any]:
    """DS2 headline metrics and the clean -> em 0 dB loss on the robustness subsample."""
    test = res["test"]
    row = {
        key: {"value": test[key], "ci95": test.get("ci95", {}).get(key)}
        for key in ("macro_auroc", "macro_f1", "j_kappa")
    }
    row["per_class_auroc"] = {
        c: {"value": r["auroc"], "ci95": r.get("auroc_ci95")} for c, r in test.get("per_class", {}).items()
    }
    if "within_patient_macro_auroc" in test:
        key = "within_patient_macro_auroc"
        row["within_patient_auroc"] = {
            "macro": {"value": test[key], "ci95": test.get("ci95", {}).get(key)},
            **{
                c: {"value": r["within_patient_auroc"], "ci95": r.get("within_patient_auroc_ci95")}
                for c, r in test["per_class"].items()
            },
        }
    if "patient_share_of_variance" in res:
        row["patient_share_of_variance"] = res["patient_share_of_variance"]
    if "vs_random_init" in test:
        row["vs_random_init"] = test["vs_random_init"]
    robust = res.get("robustness", {})
    if "clean" in robust and NOISE in robust:
        clean, noisy = robust["clean"]["macro_auroc"], robust[NOISE]["macro_auroc"]
        row["robustness"] = {"clean": clean, NOISE: noisy, "drop": clean - noisy}
    return row


def ptbxl_row(sets: dict[str, Any]) -> dict[str, Any]:
    """Fold-10 macro AUROC of the linear head at 100 % labels per label set, and the clean -> em 0 dB loss of
    ``all`` (the attentive head is compared in each probe's own report)."""
    row = {}
    for label_set in PTBXL_SETS:
        if "fractions" in sets.get(label_set, {}):
            fractions = sets[label_set]["fractions"]
            full = fractions[max(fractions, key=float)]
            row[label_set] = {"value": full["macro_auroc"], "ci95": full.get("ci95")}
    robust = sets.get("all", {}).get("robustness", {})
    if "all" in row and NOISE in robust:
        clean, noisy = row["all"]["value"], robust[NOISE]["macro_auroc"]
        row["robustness"] = {"clean": clean, NOISE: noisy, "drop": clean - noisy}
    return row


def cinc2017_row(res: dict[str, Any]) -> dict[str, Any]:
    """Test challenge F1 and macro AUROC of the 100 % linear head, its paired difference to random init, the
    clean -> em 0 dB loss of macro AUROC on the test records, and the attentive head's macro AUROC and paired
    difference (each where the report has it)."""
    fractions = res.get("fractions", {})
    row: dict[str, Any] = {}
    if fractions:
        full = fractions[max(fractions, key=float)]
        for key in ("challenge_f1", "macro_auroc"):
            row[key] = {"value": full[key], "ci95": full.get("ci95", {}).get(key)}
    if "vs_random_init" in res:
        row["vs_random_init"] = res["vs_random_init"]
    if "attentive" in res:
        a = res["attentive"]
        row["attentive"] = {"macro_auroc": {"value": a["macro_auroc"], "ci95": a.get("ci95", {}).get("macro_auroc")}}
        if "vs_random_init" in a:
            row["attentive"]["vs_random_init"] = a["vs_random_init"]
    robust = res.get("robustness", {})
    if "clean" in robust and NOISE in robust:
        clean, noisy = robust["clean"]["macro_auroc"], robust[NOISE]["macro_auroc"]
        row["robustness"] = {"clean": clean, NOISE: noisy, "drop": clean - noisy}
    return row


def separated(a: dict[str, Any], b: dict[str, Any]) -> bool | None:
    """True when a's CI lies wholly above b's (None without CIs)."""
    if not a.get("ci95") or not b.get("ci95"):
        return None
    return bool(a["ci95"][0] > b["ci95"][1])


def build(
    mitbih: dict[str, dict[str, Any]],
    ptbxl: dict[str, dict[str, Any]],
    cinc2017: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The comparison as plain data: rows per model and probe, plus the two acceptance checks."""
    result: dict[str, Any] = {"mitbih": {}, "ptbxl": {}, "cinc2017": {}, "checks": {}}
    if mitbih:
        rows = {RANDOM: mitbih_row(shared_twin(mitbih, "random_init"))}
        rows.update({name: mitbih_row(r["models"]["model"]) for name, r in mitbih.items()})
        rows[RR] = mitbih_row(shared_twin(mitbih, "rr_baseline"))
        result["mitbih"] = rows
        result["checks"]["mitbih_beats_random_init"] = {
            name: {
                "auroc": rows[name]["macro_auroc"],
                "random_init": rows[RANDOM]["macro_auroc"],
                "cis_do_not_overlap": separated(rows[name]["macro_auroc"], rows[RANDOM]["macro_auroc"]),
                "paired_difference": rows[name].get("vs_random_init"),
                "classes_with_cis_apart": [
                    c
                    for c, v in rows[name]["per_class_auroc"].items()
                    if separated(v, rows[RANDOM]["per_class_auroc"][c])
                ],
            }
            for name in mitbih
        }
    if ptbxl:
        rows = {RANDOM: ptbxl_row(shared_twin(ptbxl, "random_init"))}
        rows.update({name: ptbxl_row(r["models"]["model"]) for name, r in ptbxl.items()})
        result["ptbxl"] = rows
    if cinc2017:
        rows = {RANDOM: cinc2017_row(shared_twin(cinc2017, "random_init"))}
        rows.update({name: cinc2017_row(r["models"]["model"]) for name, r in cinc2017.items()})
        result["cinc2017"] = rows
    for probe in TITLES:
        drops = {name: row["robustness"]["drop"] for name, row in result[probe].items() if "robustness" in row}
        if drops:
            result["checks"][f"{probe}_auroc_drop_clean_to_{NOISE}"] = drops
    return result


def markdown(result: dict[str, Any], sources: dict[str, str]) -> str:
    """The comparison tables and the acceptance checks in words."""
    parts = ["# Probe comparison", "", "Reports: " + ", ".join(f"`{p}`" for p in sources.values()), ""]
    if result["mitbih"]:
        header = ["model", "DS2 macro AUROC", "macro-F1", "jκ", "clean (subsample)", "em 0 dB", "drop"]
        rows = [
            [
                name,
                *(fmt(r[k]["value"], r[k]["ci95"]) for k in ("macro_auroc", "macro_f1", "j_kappa")),
                *_robust_cells(r),
            ]
            for name, r in result["mitbih"].items()
        ]
        parts += ["## MIT-BIH beat probe (DS1 → DS2) [95 % CI, DS2 patients resampled]", "", table(header, rows), ""]
        classes = list(next(iter(result["mitbih"].values()))["per_class_auroc"])
        rows = [
            [name, *(fmt(v["value"], v["ci95"]) for v in map(r["per_class_auroc"].get, classes))]
            for name, r in result["mitbih"].items()
        ]
        parts += ["One-vs-rest AUROC per AAMI class (DS2) [95 % CI]:", "", table(["model", *classes], rows), ""]
        within = {name: r for name, r in result["mitbih"].items() if "within_patient_auroc" in r}
        if within:
            rows = [
                [
                    name,
                    *(fmt(v["value"], v["ci95"]) for v in map(r["within_patient_auroc"].get, ["macro", *classes])),
                    fmt(r.get("patient_share_of_variance")),
                ]
                for name, r in within.items()
            ]
            parts += [
                f"Within-patient AUROC (each DS2 patient with at least {WITHIN_PATIENT_MIN_BEATS} beats of the class "
                "and of the rest, weighted by its beats of the class; blind to offsets between patients) [95 % CI], "
                "and the share of N-beat feature variance that lies between patients:",
                "",
                table(["model", "macro", *classes, "patient share"], rows),
                "",
            ]
    if result["ptbxl"]:
        sets = [s for s in PTBXL_SETS if any(s in r for r in result["ptbxl"].values())]
        header = ["model", *(f"{s} AUROC" for s in sets), "all, em 0 dB", "drop"]
        rows = [
            [name, *(fmt(r[s]["value"], r[s]["ci95"]) if s in r else "–" for s in sets), *_robust_cells(r)[1:]]
            for name, r in result["ptbxl"].items()
        ]
        parts += [
            "## PTB-XL linear probe (folds 1–8 → 10, 100 % labels) [95 % CI, test records resampled]",
            "",
            table(header, rows),
            "",
        ]
    if result["cinc2017"]:
        header = ["model", "challenge F1", "macro AUROC", "paired Δ macro AUROC", "clean", "em 0 dB", "drop"]
        header += ["attentive macro AUROC", "attentive paired Δ"]
        rows = [
            [
                name,
                *(fmt(r[k]["value"], r[k]["ci95"]) if k in r else "–" for k in ("challenge_f1", "macro_auroc")),
                _paired_cell(r),
                *_robust_cells(r),
                fmt(a["macro_auroc"]["value"], a["macro_auroc"]["ci95"]) if a else "–",
                _paired_cell(a) if a else "–",
            ]
            for name, r in result["cinc2017"].items()
            for a in [r.get("attentive")]
        ]
        parts += [
            "## CinC 2017 rhythm probe (A00001–A04500 → A05001–A06000, 100 % labels) [95 % CI, test records resampled]",
            "",
            "Challenge F1: mean F1 of N, A and O. Paired Δ: model − random init on the same resamples, with the same "
            "head (linear: class token ‖ mean patch token; attentive: learnable queries over the patch tokens).",
            "",
            table(header, rows),
            "",
        ]
    parts += ["## Checks", ""]
    for name, c in result["checks"].get("mitbih_beats_random_init", {}).items():
        verdict = {True: "yes", False: "no", None: "no CIs"}[c["cis_do_not_overlap"]]
        parts.append(
            f"- MIT-BIH DS2, {name} vs random init: {fmt(c['auroc']['value'], c['auroc']['ci95'])} vs "
            f"{fmt(c['random_init']['value'], c['random_init']['ci95'])}; CIs apart: **{verdict}**; "
            f"classes whose CIs are apart: {', '.join(c['classes_with_cis_apart']) or 'none'}"
        )
        if c["paired_difference"]:
            d = c["paired_difference"]
            parts.append(
                f"  - paired difference on the same patient resamples (an added figure, not the check): "
                f"{fmt(d['difference'], d['ci95'])}, not positive in {d['share_not_positive']:.1%} of resamples"
            )
    for key, drops in result["checks"].items():
        if key.endswith(f"drop_clean_to_{NOISE}"):
            probe = TITLES[key.split("_", 1)[0]]
            listed = ", ".join(f"{name} {d:+.3f}" for name, d in drops.items())
            parts.append(f"- {probe} macro AUROC lost from clean to {NOISE}: {listed}")
    return "\n".join(parts) + "\n"


def _paired_cell(row: dict[str, Any]) -> str:
    d = row.get("vs_random_init", {}).get("macro_auroc")
    return f"{fmt(d['difference'], d['ci95'])}, ≤ 0 in {d['share_not_positive']:.1%}" if d else "–"


def _robust_cells(row: dict[str, Any]) -> list[str]:
    r = row.get("robustness")
    return [fmt(r["clean"]), fmt(r[NOISE]), f"{r['drop']:+.3f}"] if r else ["–", "–", "–"]


def plots(
    mitbih: dict[str, dict[str, Any]],
    ptbxl: dict[str, dict[str, Any]],
    out: Path,
    cinc2017: dict[str, dict[str, Any]] | None = None,
) -> list[str]:
    """AUROC against SNR per noise type, one line per model (MIT-BIH DS2 subsample; PTB-XL ``all``; CinC test)."""
    written = []
    for probe, reports in (("mitbih", mitbih), ("cinc2017", cinc2017 or {})):
        if not reports:
            continue
        robust = {RANDOM: shared_twin(reports, "random_init").get("robustness", {})}
        robust.update({name: r["models"]["model"].get("robustness", {}) for name, r in reports.items()})
        clean = {name: r["clean"]["macro_auroc"] for name, r in robust.items() if "clean" in r}
        panels = snr_panels(robust)
        if panels:
            plot_curves(panels, "SNR (dB)", out / f"{probe}_auroc_vs_snr.png", dict.fromkeys(panels, clean))
            written.append(f"{probe}_auroc_vs_snr.png")
    if ptbxl:
        models = {RANDOM: shared_twin(ptbxl, "random_init")}
        models.update({name: r["models"]["model"] for name, r in ptbxl.items()})
        robust = {name: sets.get("all", {}).get("robustness", {}) for name, sets in models.items()}
        clean = {name: ptbxl_row(sets)["all"]["value"] for name, sets in models.items() if "all" in sets}
        panels = snr_panels(robust)
        if panels:
            plot_curves(panels, "SNR (dB)", out / "ptbxl_auroc_vs_snr.png", dict.fromkeys(panels, clean))
            written.append("ptbxl_auroc_vs_snr.png")
    return written


@dataclass(frozen=True)
class ComparisonOptions:
    """The reports to compare (``NAME=path/report.json`` per probe) and the output folder."""

    out: Path
    """folder for comparison.md/.json and the plots"""
    mitbih: tuple[str, ...] = ()
    """NAME=probe-mitbih/report.json …"""
    ptbxl: tuple[str, ...] = ()
    """NAME=probe-ptbxl/report.json …"""
    cinc2017: tuple[str, ...] = ()
    """NAME=probe-cinc2017/report.json …"""


def write_comparison(opts: ComparisonOptions) -> Path:
    """``comparison.md``, ``comparison.json`` and the plots in ``opts.out``; returns the Markdown file."""
    mitbih, ptbxl = named_reports(list(opts.mitbih), "mitbih"), named_reports(list(opts.ptbxl), "ptbxl")
    cinc2017 = named_reports(list(opts.cinc2017), "cinc2017")
    if not mitbih and not ptbxl and not cinc2017:
        raise ValueError("give at least one --mitbih, --ptbxl or --cinc2017 report")
    result = build(mitbih, ptbxl, cinc2017)
    opts.out.mkdir(parents=True, exist_ok=True)
    result["figures"] = plots(mitbih, ptbxl, opts.out, cinc2017)
    result["reports"] = {
        f"{probe} {pair.partition('=')[0]}": pair.partition("=")[2]
        for probe, pairs in (("mitbih", opts.mitbih), ("ptbxl", opts.ptbxl), ("cinc2017", opts.cinc2017))
        for pair in pairs
    }
    (opts.out / "comparison.json").write_text(json.dumps(to_jsonable(result), indent=1))
    (opts.out / "comparison.md").write_text(markdown(result, result["reports"]))
    return opts.out / "comparison.md"
