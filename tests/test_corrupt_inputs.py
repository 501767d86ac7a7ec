"""Bad raw records are skipped and reported in ``quarantine.csv`` with a reason naming the file."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from fake_layouts import (
    STANDARD_12,
    digital,
    padded_tracing,
    synthetic_ecg,
    write_code15_part,
    write_exams_csv,
    write_wfdb_record,
)

from datamodules.shards import iter_records
from ecg_dino.commands.prepare import main

FS = 500


def good_record(directory: Path, name: str, rng: np.random.Generator, leads: list[str] = STANDARD_12) -> Path:
    return write_wfdb_record(directory, name, digital(synthetic_ecg(rng, len(leads), 10 * FS, FS)), FS, leads)


def edit_header(header: Path, line: int, field: int, value: str) -> None:
    """Set one whitespace-separated field of one header line."""
    lines = header.read_text().splitlines()
    fields = lines[line].split()
    fields[field] = value
    lines[line] = " ".join(fields)
    header.write_text("\n".join(lines) + "\n")


def write_corrupt_wfdb(root: Path) -> dict[str, str]:
    """A CinC-2021-style folder of good and broken records; returns record id -> expected reason."""
    rng = np.random.default_rng(0)
    for name in ("A0001", "A0002", "A0003"):
        good_record(root, name, rng)

    dat = good_record(root, "T0001", rng).with_suffix(".dat")
    dat.write_bytes(dat.read_bytes()[: dat.stat().st_size // 2])

    edit_header(good_record(root, "L0001", rng), 0, 3, "4000")  # the file holds 5000 samples
    edit_header(good_record(root, "C0001", rng), 2, 6, "12345")  # checksum of lead II
    good_record(root, "M0001", rng).with_suffix(".dat").unlink()

    d = digital(synthetic_ecg(rng, 12, 10 * FS, FS))
    d[3, 1000:1010] = -32768  # WFDB's invalid-sample value: NaN in physical units
    write_wfdb_record(root, "N0001", d, FS, STANDARD_12)

    d = digital(synthetic_ecg(rng, 12, 10 * FS, FS))
    d[7] = 250  # V2 constant
    write_wfdb_record(root, "F0001", d, FS, STANDARD_12)
    write_wfdb_record(root, "F0002", np.full((12, 10 * FS), 17, dtype=np.int16), FS, STANDARD_12)

    zero = good_record(root, "Z0001", rng)
    edit_header(zero, 0, 3, "0")
    zero.with_suffix(".dat").write_bytes(b"")

    good_record(root, "U0001", rng, [*STANDARD_12[:11], "XYZ"])
    (root / "E0001.hea").write_bytes(b"")
    good_record(root / "dup", "A0001", rng)  # same record id as A0001, found second

    return {
        "cinc2021/T0001": "T0001.dat: truncated signal file",
        "cinc2021/L0001": "L0001.dat: wrong length in header",
        "cinc2021/C0001": "C0001.hea: checksum mismatch for lead II",
        "cinc2021/M0001": "M0001.dat: signal file missing",
        "cinc2021/N0001": "N0001.hea: NaN or Inf samples",
        "cinc2021/F0001": "F0001.hea: flat (constant) lead V2 dropped; record kept",
        "cinc2021/F0002": "F0002.hea: every lead is flat (constant)",
        "cinc2021/Z0001": "Z0001.hea: zero-length record",
        "cinc2021/U0001": "U0001.hea: unknown lead name 'XYZ'",
        "cinc2021/E0001": "E0001.hea: empty file",
        "cinc2021/A0001": "dup/A0001.hea: duplicate record id cinc2021/A0001",
    }


def write_corrupt_code15(root: Path) -> dict[str, str]:
    """A CODE-15%-style folder with broken exams and parts; returns record id -> expected reason."""
    rng = np.random.default_rng(1)
    root.mkdir(parents=True)
    tracings = np.stack([padded_tracing(rng, 4000) for _ in range(6)])
    tracings[2, 2000, 5] = np.nan
    tracings[3, 1000, 0] = np.inf
    tracings[4] = 0.0
    write_code15_part(root / "exams_part0.hdf5", [11, 12, 13, 14, 15, 16], tracings)
    write_code15_part(root / "exams_part1.hdf5", [12, 17], np.stack([padded_tracing(rng, 2934) for _ in range(2)]))
    with h5py.File(root / "exams_part2.hdf5", "w") as f:
        f.create_dataset("exam_id", data=np.array([21, 22]))
    (root / "exams_part3.hdf5").write_bytes(b"")
    write_exams_csv(root, [(e, e * 10, "exams_part0.hdf5") for e in (11, 12, 13, 14, 15, 17, 21, 22)])
    return {
        "code15/13": "exams_part0.hdf5: NaN or Inf samples",
        "code15/14": "exams_part0.hdf5: NaN or Inf samples",
        "code15/15": "exams_part0.hdf5: exam code15/15 (row 4) is an all-zero tracing",
        "code15/16": "exams_part0.hdf5: exam_id 16 (row 5) is not in exams.csv",
        "code15/12": "exams_part1.hdf5: duplicate record id code15/12",
        "code15/exams_part2.hdf5": "exams_part2.hdf5: HDF5 file has no 'tracings' dataset",
        "code15/exams_part3.hdf5": "exams_part3.hdf5: empty file",
    }


def run_prepare(raw: Path, out: Path, source: str) -> tuple[pd.DataFrame, dict]:
    assert main(["--source", source, "--raw", str(raw), "--out", str(out), "--records-per-shard", "3"]) == 0
    quarantine = pd.read_csv(out / "quarantine.csv", keep_default_na=False)
    return quarantine, {r.record_id: r for shard in sorted(out.glob("*.parquet")) for r in iter_records(shard)}


def assert_reported(quarantine: pd.DataFrame, expected: dict[str, str]) -> None:
    """Exactly one row per bad record, whose reason names its file and says what is wrong."""
    assert sorted(quarantine["record_id"]) == sorted(expected)
    for row in quarantine.itertuples():
        assert expected[row.record_id] in row.reason, row.reason
        assert Path(row.file).stem in row.reason  # the reason names the file


def test_corrupt_wfdb_records_are_quarantined(tmp_path):
    expected = write_corrupt_wfdb(tmp_path / "raw")
    quarantine, records = run_prepare(tmp_path / "raw", tmp_path / "out", "cinc2021")
    assert_reported(quarantine, expected)
    assert sorted(records) == ["cinc2021/A0001", "cinc2021/A0002", "cinc2021/A0003", "cinc2021/F0001"]
    assert records["cinc2021/F0001"].leads == tuple(lead for lead in STANDARD_12 if lead != "V2")
    assert all(np.isfinite(r.signal).all() for r in records.values())
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["quarantine_count"] == len(expected) and manifest["sources"]["cinc2021"]["records"] == 4


def test_corrupt_hdf5_parts_are_quarantined(tmp_path):
    expected = write_corrupt_code15(tmp_path / "raw")
    quarantine, records = run_prepare(tmp_path / "raw", tmp_path / "out", "code15")
    assert_reported(quarantine, expected)
    assert sorted(records) == ["code15/11", "code15/12", "code15/17"]
    assert records["code15/12"].num_samples == 2500  # the first exam 12 (4000 samples at 400 Hz) was kept
    assert all(np.isfinite(r.signal).all() for r in records.values())


def test_unsafe_or_malformed_scp_codes_are_quarantined(tmp_path):
    rng = np.random.default_rng(2)
    for ecg_id in (1, 2, 3):
        good_record(tmp_path / "records500" / "00000", f"{ecg_id:05d}_hr", rng)
    rows = [
        (1, "{'NORM': 100.0, 'SR': 0.0}"),
        (2, "__import__('os').system('echo owned')"),
        (3, "{'NORM': 100.0"),
    ]
    table = pd.DataFrame(
        [
            {"ecg_id": i, "patient_id": 100.0 + i, "age": 50.0, "sex": 0, "scp_codes": codes, "strat_fold": 1}
            | {"filename_lr": f"records100/00000/{i:05d}_lr", "filename_hr": f"records500/00000/{i:05d}_hr"}
            for i, codes in rows
        ]
    )
    table.to_csv(tmp_path / "ptbxl_database.csv", index=False)
    quarantine, records = run_prepare(tmp_path, tmp_path / "out", "ptbxl")
    assert list(records) == ["ptbxl/1"] and records["ptbxl/1"].labels["scp_codes"] == {
        "NORM": 100.0,
        "SR": 0.0,
    }
    assert_reported(
        quarantine,
        {"ptbxl/2": "ecg_id 2: scp_codes is not a literal dict", "ptbxl/3": "ecg_id 3: scp_codes is not"},
    )


@pytest.mark.parametrize("source", ["mitdb", "icentia11k"])
def test_a_folder_of_only_bad_records_writes_an_empty_shard(tmp_path, source):
    (tmp_path / "raw").mkdir()
    name = "100" if source == "mitdb" else "p00000_s00"
    (tmp_path / "raw" / f"{name}.hea").write_bytes(b"")
    quarantine, records = run_prepare(tmp_path / "raw", tmp_path / "out", source)
    assert records == {} and list(quarantine["record_id"]) == [f"{source}/{name}"]
