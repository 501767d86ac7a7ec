"""The headline table a probe command prints from its ``report.json``: macro AUROC (and F1 where the probe has
one) with 95 % CIs, the model beside its random-init twin (and the RR baseline for MIT-BIH).

A label-fraction row whose training set is too small to mean anything is marked rather than printed as a result:
``probes.ptbxl.training_subset`` keeps ``max(1, round(fraction·n))`` records, so 1 % of a 353-record sample is 4
records for up to 71 labels, and most labels then have no positive example to learn from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ecg_dino.probes.markdown import fmt

MIN_TRAIN_RECORDS = 10  # below this, or below one record per label, a fraction row is marked too small


@dataclass(frozen=True)
class Row:
    """One line of the table: what it is, its training set, and each column's ``value [CI]``."""

    keys: tuple[str, ...]
    n_train: int | None
    n_labels: int
    cells: dict[str, str]

    def too_small(self) -> bool:
        """Fewer training records than ``MIN_TRAIN_RECORDS`` or than labels: no figure worth reading."""
        return self.n_train is not None and self.n_train < max(MIN_TRAIN_RECORDS, self.n_labels)


def headline(report: dict[str, Any]) -> str:
    """The report's headline table as aligned text, with a note under it when a row is too small."""
    title, key_names, rows = {"ptbxl": _ptbxl, "cinc2017": _cinc2017, "mitbih": _mitbih}[report["probe"]](
        report["models"]
    )
    columns = list(rows[0].cells) if rows else []
    header = [*key_names, "train records", *columns]
    lines = [[*r.keys, "–" if r.n_train is None else str(r.n_train), *r.cells.values()] for r in rows]
    widths = [max(len(line[k]) for line in [header, *lines]) for k in range(len(header))]
    fixed = len(key_names) + 1
    text = [title, _join(header, widths)]
    for row, line in zip(rows, lines):
        if row.too_small():
            line = [*line[:fixed], f"too small: {row.n_train} training records for {row.n_labels} labels"]
        text.append(_join(line, widths))
    if any(r.too_small() for r in rows):
        text.append(
            f"too small: fewer than {MIN_TRAIN_RECORDS} training records or fewer than one per label; "
            "the report still lists those rows"
        )
    return "\n".join(text)


def _join(cells: list[str], widths: list[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()


def _metric(res: dict[str, Any], key: str, ci: Any) -> str:
    """``value [CI]`` of one metric, ``–`` where the report lacks it."""
    return fmt(res.get(key), ci)


def _ptbxl(models: dict[str, Any]) -> tuple[str, tuple[str, ...], list[Row]]:
    """Each label set's linear head at every fraction, then its attentive head; macro AUROC per model."""
    names = list(models)
    rows = []
    for label_set, res in models[names[0]].items():
        for frac, r in res.get("fractions", {}).items():
            of = {m: models[m][label_set]["fractions"][frac] for m in names}
            cells = {f"{m} AUROC": _metric(x, "macro_auroc", x.get("ci95")) for m, x in of.items()}
            rows.append(Row((label_set, "linear", f"{float(frac):.0%}"), r["n_train"], r["n_labels"], cells))
        if "attentive" in res:
            of = {m: models[m][label_set]["attentive"] for m in names}
            cells = {f"{m} AUROC": _metric(x, "macro_auroc", x.get("ci95")) for m, x in of.items()}
            rows.append(Row((label_set, "attentive", "100%"), res["attentive"]["n_train"], 0, cells))
    return "PTB-XL, fold 10: macro AUROC [bootstrap 95 % CI]", ("label set", "head", "label fraction"), rows


def _cinc2017(models: dict[str, Any]) -> tuple[str, tuple[str, ...], list[Row]]:
    """The linear head at every fraction, then the attentive head; macro AUROC and challenge F1 per model."""
    names = list(models)
    heads = [("linear", f, lambda m, f=f: models[m]["fractions"][f]) for f in models[names[0]].get("fractions", {})]
    if "attentive" in models[names[0]]:
        heads.append(("attentive", "1", lambda m: models[m]["attentive"]))
    rows = []
    for head, frac, result in heads:
        cells = {}
        for m in names:
            r = result(m)
            ci = r.get("ci95", {})
            cells[f"{m} AUROC"] = _metric(r, "macro_auroc", ci.get("macro_auroc"))
            cells[f"{m} F1"] = _metric(r, "challenge_f1", ci.get("challenge_f1"))
        rows.append(Row((head, f"{float(frac):.0%}"), result(names[0])["n_train"], 4, cells))
    return "CinC 2017 test records: macro AUROC, challenge F1 [bootstrap 95 % CI]", ("head", "label fraction"), rows


def _mitbih(models: dict[str, Any]) -> tuple[str, tuple[str, ...], list[Row]]:
    """DS2 macro AUROC and macro F1 of the model, the random-init twin and the RR baseline."""
    cells = {}
    for m, res in models.items():
        test = res["test"]
        ci = test.get("ci95", {})
        cells[f"{m} AUROC"] = _metric(test, "macro_auroc", ci.get("macro_auroc"))
        cells[f"{m} F1"] = _metric(test, "macro_f1", ci.get("macro_f1"))
    rows = [Row(("DS2 beats",), None, 0, cells)]
    return "MIT-BIH: macro AUROC, macro F1 [bootstrap 95 % CI over patients]", ("test",), rows
