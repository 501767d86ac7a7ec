"""A shard folder's ``manifest.json`` (the single source of truth of what is converted) and ``quarantine.csv``."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from datamodules.convert import records_key
from datamodules.readers import RecordRef
from ecg_dino.files import file_sha256

MANIFEST = "manifest.json"
QUARANTINE = "quarantine.csv"


class PrepareError(Exception):
    """A run that cannot start, e.g. an output folder prepared at another sample rate."""


def load_manifest(out: Path, sample_rate_hz: float) -> dict[str, Any]:
    """The folder's manifest, or a new one; refuses a folder prepared at another rate."""
    path = out / MANIFEST
    if not path.is_file():
        return {
            "target_sample_rate_hz": float(sample_rate_hz),
            "shards": [],
            "sources": {},
            "quarantine_count": 0,
        }
    manifest = json.loads(path.read_text())
    if manifest["target_sample_rate_hz"] != float(sample_rate_hz):
        raise PrepareError(
            f"{path}: shards here are at {manifest['target_sample_rate_hz']} Hz, not {sample_rate_hz} Hz; "
            "use another --out folder"
        )
    return manifest


def save_manifest(out: Path, manifest: dict[str, Any]) -> None:
    """Recompute the totals and write ``manifest.json`` atomically."""
    manifest["shards"].sort(key=lambda e: e["path"])
    rate = manifest["target_sample_rate_hz"]
    for source, totals in manifest["sources"].items():
        entries = [e for e in manifest["shards"] if e["source"] == source]
        totals["records"] = sum(e["num_records"] for e in entries)
        totals["samples"] = sum(e["num_samples"] for e in entries)
        totals["seconds"] = totals["samples"] / rate
        rows = totals.setdefault("quarantine", [])
        totals["quarantined"] = len(rows) + sum(len(e.get("quarantine", [])) for e in entries)
    manifest["quarantine_count"] = sum(t["quarantined"] for t in manifest["sources"].values())
    tmp = out / f"{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=1))
    tmp.replace(out / MANIFEST)


def write_quarantine(out: Path, manifest: dict[str, Any]) -> None:
    """Render every source's quarantine rows (listing first, then shard by shard) to ``quarantine.csv``."""
    with open(out / QUARANTINE, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "record_id", "reason"])
        for source, totals in sorted(manifest["sources"].items()):
            writer.writerows(totals.get("quarantine", []))
            for entry in manifest["shards"]:
                if entry["source"] == source:
                    writer.writerows(entry.get("quarantine", []))


def is_finished(out: Path, entry: dict[str, Any] | None, refs: list[RecordRef]) -> bool:
    """The shard of this chunk is already written: same records, file present with the listed sha256."""
    return (
        entry is not None
        and entry["records_sha256"] == records_key(refs)
        and (out / entry["path"]).is_file()
        and file_sha256(out / entry["path"]) == entry["sha256"]
    )
