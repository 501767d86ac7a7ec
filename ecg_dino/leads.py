"""The lead vocabulary: every ECG lead the model knows, by name, with the aliases found in real files.

Each canonical lead owns one learnable lead embedding, so a record carries its lead names, never bare
indices. Holter and patch-monitor leads are their own entries because their electrodes sit elsewhere than
in a resting 12-lead ECG.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

STANDARD_12 = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
LIMB_6 = STANDARD_12[:6]
# Modified limb leads of ambulatory (Holter) recordings, e.g. MIT-BIH's MLII; ECG is a generic single lead
# (patch monitors such as Icentia11k's CardioSTAT, where the vector is not a standard lead).
HOLTER = ("MLI", "MLII", "MLIII", "ECG")
LEADS: tuple[str, ...] = STANDARD_12 + HOLTER
NUM_LEADS = len(LEADS)

_INDEX = {name: i for i, name in enumerate(LEADS)}
# Alternative spellings seen in PhysioNet, CODE, HEEDB and device exports. Keys are upper-cased.
_ALIASES = {
    **{name.upper(): name for name in LEADS},
    "DI": "I",
    "DII": "II",
    "DIII": "III",
    "LEAD I": "I",
    "LEAD II": "II",
    "LEAD III": "III",
    "AVR": "aVR",
    "AVL": "aVL",
    "AVF": "aVF",
    "-AVR": "aVR",
    "ML2": "MLII",
    "ML II": "MLII",
    "MLL": "MLII",
    "ML1": "MLI",
    "ML3": "MLIII",
    "ECG1": "ECG",
    "ECG 1": "ECG",
    "SINGLE": "ECG",
    "LEAD": "ECG",
    "CH1": "ECG",
}


class UnknownLeadError(ValueError):
    """A lead name that is neither canonical nor a known alias."""


def canonical_lead(name: str) -> str:
    """Map a lead name as written in a file (``AVR``, ``ML2``, ``DII``) to its canonical name."""
    key = " ".join(str(name).strip().upper().split())
    if key not in _ALIASES:
        raise UnknownLeadError(
            f"unknown lead name {name!r}; known leads: {', '.join(LEADS)} (map it with a lead map, {name}=LEAD)"
        )
    return _ALIASES[key]


def lead_index(name: str) -> int:
    """Vocabulary index of a lead name (any known spelling)."""
    return _INDEX[canonical_lead(name)]


def lead_indices(names: Iterable[str]) -> list[int]:
    """Vocabulary indices of several leads; duplicates are an error because each lead is one token row."""
    idx = [lead_index(n) for n in names]
    if len(set(idx)) != len(idx):
        raise ValueError(f"duplicate leads in {list(names)!r}")
    return idx


def canonical_leads(names: Sequence[str]) -> tuple[str, ...]:
    """Canonical names of several leads, in the given order."""
    return tuple(LEADS[i] for i in lead_indices(names))


def parse_lead_map(items: Iterable[str]) -> dict[str, str]:
    """``["ECG1=MLII", "ch2=V1"]`` -> ``{"ECG1": "MLII", "ch2": "V1"}``: lead names as a file writes them, each
    to a lead of the vocabulary (checked here, so a typo fails before any record is read)."""
    out = {}
    for item in items:
        old, sep, new = item.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise ValueError(f"lead map entry {item!r} is not OLD=NEW")
        out[old.strip()] = canonical_lead(new)
    return out


def map_leads(names: Iterable[str], lead_map: dict[str, str]) -> list[str]:
    """``names`` with ``lead_map`` applied, its keys matched case-insensitively; other names pass unchanged to
    the vocabulary's own (case-insensitive) aliases."""
    upper = {" ".join(k.upper().split()): v for k, v in lead_map.items()}
    return [upper.get(" ".join(str(n).upper().split()), n) for n in names]
