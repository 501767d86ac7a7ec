"""Options of the generic sources (one's own ECGs as WFDB, EDF or NumPy files), shared by ``prepare`` and
``embed``: lead names the vocabulary lacks, and what NumPy arrays hold when no sidecar JSON says."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from datamodules.readers.base import MV_PER_UNIT
from ecg_dino.leads import parse_lead_map

GENERIC_SOURCES = ("wfdb", "edf", "numpy")


def split_names(text: str) -> tuple[str, ...]:
    """``"I,II,V1"`` -> ``("I", "II", "V1")``."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


@dataclass(frozen=True)
class SourceOptions:
    """How a generic source reads files; each option is an error with a source that does not read it."""

    lead_map: tuple[str, ...] = ()
    """wfdb/edf/numpy: OLD=NEW lead names or EDF labels the vocabulary lacks, e.g. ECG1=MLII (case-insensitive)"""
    numpy_leads: tuple[str, ...] | None = field(default=None, metadata={"parse": split_names})
    """numpy arrays without a sidecar JSON: lead names of the rows, e.g. I,II,V1"""
    numpy_sample_rate_hz: float | None = None
    """numpy arrays without a sidecar JSON: their sampling rate"""
    numpy_units: str | None = field(default=None, metadata={"choices": ("mV", "uV", "V")})
    """numpy arrays without a sidecar JSON: their units (default mV)"""

    def __post_init__(self) -> None:
        parse_lead_map(self.lead_map)  # a malformed entry or an unknown target lead fails before any file is read
        if self.numpy_units is not None and self.numpy_units.strip().lower() not in MV_PER_UNIT:
            raise ValueError(f"numpy units must be mV, uV or V, not {self.numpy_units!r}")
        if self.numpy_sample_rate_hz is not None and self.numpy_sample_rate_hz <= 0:
            raise ValueError(f"numpy sample rate must be positive, not {self.numpy_sample_rate_hz}")

    def reader_options(self, source: str) -> dict[str, Any]:
        """Constructor options of the ``source`` reader (only those given, so unchanged runs keep their settings)."""
        numpy = {"leads": self.numpy_leads, "sample_rate_hz": self.numpy_sample_rate_hz, "units": self.numpy_units}
        numpy = {k: list(v) if isinstance(v, tuple) else v for k, v in numpy.items() if v is not None}
        if self.lead_map and source not in GENERIC_SOURCES:
            raise ValueError(f"a lead map applies to the generic sources ({', '.join(GENERIC_SOURCES)}), not {source}")
        if numpy and source != "numpy":
            raise ValueError(f"the numpy options apply to the numpy source, not {source}")
        return ({"lead_map": parse_lead_map(self.lead_map)} if self.lead_map else {}) | numpy
