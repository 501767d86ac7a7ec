"""NumPy arrays of one's own ECGs: ``*.npy`` or ``*.npz`` files holding float [leads, samples].

What the rows are comes from a sidecar JSON, ``<name>.json`` beside the array or one ``ecg.json`` for its folder
(``{"leads": ["I", "II"], "sample_rate_hz": 500, "units": "uV", "patient_id": "p7"}``; ``units`` defaults to
mV), the reader's options (``prepare``/``embed`` flags) filling what the sidecar leaves out; a file's own JSON
replaces its folder's. Arrays load with ``allow_pickle=False``; an ``.npz`` holds one array or one named
``signal``. Lead names go through the ``lead_map`` and the vocabulary, unknown ones fail that record naming the
file and the lead.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from datamodules.readers.base import Reader, RecordRef, make_record, mv_per_unit
from datamodules.record import BadRecordError, ECGRecord
from ecg_dino.leads import map_leads

FOLDER_SIDECAR = "ecg.json"
SIDECAR_KEYS = {"leads", "sample_rate_hz", "units", "patient_id"}


def read_sidecar(path: Path) -> dict[str, Any]:
    """The checked description of a sidecar JSON; ``BadRecordError`` naming it otherwise."""
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BadRecordError(f"{path}: unreadable sidecar JSON ({e})") from e
    if not isinstance(meta, dict) or set(meta) - SIDECAR_KEYS:
        extra = sorted(set(meta) - SIDECAR_KEYS) if isinstance(meta, dict) else type(meta).__name__
        raise BadRecordError(f"{path}: a sidecar holds an object with keys {sorted(SIDECAR_KEYS)}, not {extra}")
    leads = meta.get("leads", [])
    if not isinstance(leads, list) or not all(isinstance(n, str) for n in leads):
        raise BadRecordError(f"{path}: 'leads' must be a list of lead names")
    rate = meta.get("sample_rate_hz", 1)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or rate <= 0:
        raise BadRecordError(f"{path}: 'sample_rate_hz' must be a positive number, not {rate!r}")
    return meta


def load_array(path: Path) -> np.ndarray:
    """The real-valued array of an ``.npy`` (or the one array of an ``.npz``), without unpickling anything."""
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                names = loaded.files
                if len(names) != 1 and "signal" not in names:
                    raise BadRecordError(f"{path}: holds arrays {names}; keep one, or name it 'signal'")
                array = loaded[names[0] if len(names) == 1 else "signal"]
        else:
            array = loaded
    except BadRecordError:
        raise
    except Exception as e:  # a truncated file, an object array (pickle refused), a foreign format
        raise BadRecordError(f"{path}: unreadable NumPy file ({type(e).__name__}: {e})") from e
    if array.dtype.kind not in "biuf":
        raise BadRecordError(f"{path}: array of dtype {array.dtype}, not real numbers")
    return array


class NumpyFolderReader(Reader):
    """``root`` holds ``*.npy``/``*.npz`` arrays at any depth with their sidecars; one patient per file by default."""

    source = "numpy"

    def __init__(
        self,
        root: str | Path,
        *,
        leads: Sequence[str] | None = None,
        sample_rate_hz: float | None = None,
        units: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(root, **options)
        given = {"leads": None if leads is None else list(leads), "sample_rate_hz": sample_rate_hz, "units": units}
        self.defaults = {k: v for k, v in given.items() if v is not None}

    def _list(self) -> Iterator[RecordRef]:
        paths = sorted(p for p in self.root.rglob("*") if p.suffix in (".npy", ".npz") and p.is_file())
        for path in paths:
            record_id = f"{self.source}/{path.relative_to(self.root).with_suffix('').as_posix()}"
            yield RecordRef(record_id=record_id, path=str(path), patient_id=record_id)

    def sidecar(self, path: Path) -> Path | None:
        """The sidecar describing ``path``: its own, else its folder's, else None."""
        return next((p for p in (path.with_suffix(".json"), path.parent / FOLDER_SIDECAR) if p.is_file()), None)

    def key_files(self, ref: RecordRef) -> list[Path]:
        sidecar = self.sidecar(Path(ref.path))
        return [Path(ref.path), *([sidecar] if sidecar else [])]

    def description(self, path: Path) -> dict[str, Any]:
        """Leads, rate, units and patient of one array: its sidecar's, the options filling what it leaves out."""
        sidecar = self.sidecar(path)
        meta = self.defaults | (read_sidecar(sidecar) if sidecar else {})
        missing = sorted({"leads", "sample_rate_hz"} - meta.keys())
        if missing:
            raise BadRecordError(
                f"{path}: no {' or '.join(missing)} (give them in {path.with_suffix('.json').name}, "
                f"{FOLDER_SIDECAR} or the numpy options)"
            )
        return meta

    def read(self, ref: RecordRef) -> ECGRecord:
        path = Path(ref.path)
        meta = self.description(path)
        signal = load_array(path).astype(np.float64) * mv_per_unit(meta.get("units"), str(path))
        if "patient_id" in meta:
            ref = replace(ref, patient_id=str(meta["patient_id"]))
        leads = map_leads(meta["leads"], self.lead_map)
        return make_record(ref, self.source, signal, meta["sample_rate_hz"], leads)
