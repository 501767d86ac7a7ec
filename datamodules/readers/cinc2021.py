"""PhysioNet/CinC Challenge 2021: 12-lead WFDB records (``.hea`` + MATLAB v4 ``.mat``) from several sources.

Labels come from the header comments: ``# Dx:`` SNOMED-CT codes, ``# Age:`` and ``# Sex:``. The challenge
gives no patient ids, so each record is its own patient.
"""

from __future__ import annotations

from typing import Any

from datamodules.readers.wfdb_io import WfdbReader, WfdbSignal


def header_fields(comments: list[str]) -> dict[str, str]:
    """``["Age: 78", "Dx: 1,2"]`` -> ``{"age": "78", "dx": "1,2"}``."""
    fields = {}
    for line in comments:
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip().lower()] = value.strip()
    return fields


class CinC2021Reader(WfdbReader):
    """``root`` holds the challenge's ``*.hea``/``*.mat`` pairs, possibly in per-source subfolders."""

    source = "cinc2021"

    def labels(self, wf: WfdbSignal) -> dict[str, Any]:
        fields = header_fields(wf.comments)
        age = fields.get("age", "")
        return {
            "dx": [code.strip() for code in fields.get("dx", "").split(",") if code.strip()],
            "age": int(float(age)) if age.replace(".", "", 1).isdigit() else None,
            "sex": fields.get("sex") or None,
        }
