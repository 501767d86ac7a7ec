"""Embedding tables on disk: columns <-> Parquet, and a cache of them keyed by (backbone, data, options).

Per-record arrays whose shapes differ between records are stored as raw bytes with their shape and dtype. Patch
tokens [L, P, D] are kept in float16 (half the disk and memory; the probes' heads see no difference) and
``patch_valid`` [L, P] marks the patches some crop covered. A table's ``quarantine`` (the ``[file, record_id,
reason]`` rows of the records skipped or trimmed while embedding it) travels in the Parquet metadata.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ecg_dino.signal import RESAMPLER_VERSION

DEFAULT_CACHE = Path.home() / ".cache" / "ecg-dino" / "embeddings"
RAGGED_COLUMNS = {"patches": np.float16, "patch_valid": np.bool_}
TABLE_FORMAT = 2  # part of the cache key: 1 stored float32 patches without patch_valid
QUARANTINE = "quarantine"  # the columns' key of the quarantine rows, stored as metadata


def rows_to_columns(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """List of per-record dicts -> dict of stacked columns (ragged arrays stay a list: shapes differ)."""
    if not rows:
        return {"record_id": np.array([], dtype=object)}
    cols: dict[str, Any] = {"record_id": np.array([r["record_id"] for r in rows], dtype=object)}
    for key in rows[0]:
        if key in RAGGED_COLUMNS:
            cols[key] = [r[key] for r in rows]
        elif key != "record_id":
            cols[key] = np.stack([np.asarray(r[key]) for r in rows]).astype(np.float32)
    return cols


def write_table(columns: dict[str, Any], path: Path) -> None:
    """Write embedding columns to Parquet: 2-D float arrays as fixed-size lists, ragged arrays as bytes of their
    ``RAGGED_COLUMNS`` dtype with their shape."""
    arrays: dict[str, pa.Array] = {}
    for key, value in columns.items():
        if key == QUARANTINE:
            continue
        if key in RAGGED_COLUMNS:
            dtype = RAGGED_COLUMNS[key]
            arrays[key] = pa.array([np.ascontiguousarray(p, dtype=dtype).tobytes() for p in value], pa.binary())
            arrays[f"{key}_shape"] = pa.array([list(p.shape) for p in value], pa.list_(pa.int32()))
        elif isinstance(value, np.ndarray) and value.ndim == 2:
            flat = pa.array(value.astype(np.float32).ravel())
            arrays[key] = pa.FixedSizeListArray.from_arrays(flat, value.shape[1])
        else:
            arrays[key] = pa.array(list(value) if isinstance(value, np.ndarray) and value.dtype == object else value)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    metadata = {QUARANTINE: json.dumps(columns[QUARANTINE])} if columns.get(QUARANTINE) else None
    pq.write_table(pa.table(arrays, metadata=metadata), tmp)
    tmp.replace(path)


def read_table(path: Path) -> dict[str, Any]:
    """Inverse of ``write_table``."""
    table = pq.read_table(path)
    cols: dict[str, Any] = {}
    for key in table.column_names:
        col = table.column(key).combine_chunks()
        if key.removesuffix("_shape") in RAGGED_COLUMNS and key.endswith("_shape"):
            continue
        if key in RAGGED_COLUMNS:
            shapes = table.column(f"{key}_shape").to_pylist()
            cols[key] = [np.frombuffer(b, RAGGED_COLUMNS[key]).reshape(s) for b, s in zip(col.to_pylist(), shapes)]
        elif pa.types.is_fixed_size_list(col.type):
            cols[key] = col.flatten().to_numpy().reshape(len(col), col.type.list_size)
        else:
            cols[key] = np.asarray(col.to_pylist(), dtype=object if pa.types.is_string(col.type) else None)
    quarantine = (table.schema.metadata or {}).get(QUARANTINE.encode())
    if quarantine is not None:
        cols[QUARANTINE] = json.loads(quarantine)
    return cols


class EmbeddingCache:
    """Parquet files under ``root`` named by the hash of (backbone key, data key, options, table format,
    resampler version)."""

    def __init__(self, root: Path | None) -> None:
        self.root = root

    def path(self, backbone_key: str, data_key: str, options: Any) -> Path | None:
        """The file of one (backbone, data, options dataclass) triple; None when caching is off."""
        if self.root is None:
            return None
        key = {
            "backbone": backbone_key,
            "data": data_key,
            "options": asdict(options),
            "format": TABLE_FORMAT,
            "resampler": RESAMPLER_VERSION,
        }
        blob = json.dumps(key, sort_keys=True)
        return self.root / f"{hashlib.sha256(blob.encode()).hexdigest()[:32]}.parquet"

    def get_or_compute(
        self, backbone_key: str, data_key: str, options: Any, compute: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        """The cached table, or ``compute()`` written to the cache."""
        path = self.path(backbone_key, data_key, options)
        if path is not None and path.is_file():
            return read_table(path)
        columns = compute()
        if path is not None:
            write_table(columns, path)
        return columns
