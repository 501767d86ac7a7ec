"""CinC-2017 reader: the real release in ``../shared/data/cinc2017`` and small folders copied from it."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io
from conftest import SHARED_DATA, needs_shared_data

from datamodules.readers import make_reader
from datamodules.readers.cinc2017 import read_reference, split_of
from datamodules.shards import iter_records
from ecg_dino.commands.prepare import main

CINC = SHARED_DATA / "cinc2017"


def copy_record(raw: Path, source: str, name: str | None = None, *, declared: str | None = None) -> Path:
    """Copy the real record ``source`` into ``raw`` as ``name``, its header naming record ``declared``."""
    name = name or source
    raw.mkdir(parents=True, exist_ok=True)
    (raw / f"{name}.mat").write_bytes((CINC / f"{source}.mat").read_bytes())
    lines = (CINC / f"{source}.hea").read_text().splitlines()
    lines[0] = " ".join([declared or name, *lines[0].split()[1:]])  # record line: name, signals, rate, length
    lines[1] = " ".join([f"{name}.mat", *lines[1].split()[1:]])  # signal line: the file holding the samples
    header = raw / f"{name}.hea"
    header.write_text("\n".join(lines) + "\n")
    return header


def write_index(raw: Path, labels: dict[str, str], records: list[str]) -> None:
    """``REFERENCE.csv`` (``name,label`` rows, no header) and ``RECORDS``, as the release has them."""
    (raw / "REFERENCE.csv").write_text("".join(f"{name},{label}\n" for name, label in labels.items()))
    (raw / "RECORDS").write_text("".join(f"{name}\n" for name in records))


def prepare(raw: Path, out: Path, *extra: str) -> tuple[pd.DataFrame, dict, dict]:
    """Run ``ecg-dino prepare --source cinc2017``; return quarantine.csv, the shard records by id, the manifest."""
    assert main(["--source", "cinc2017", "--raw", str(raw), "--out", str(out), *extra]) == 0
    quarantine = pd.read_csv(out / "quarantine.csv", keep_default_na=False)
    records = {r.record_id: r for shard in sorted(out.glob("*.parquet")) for r in iter_records(shard)}
    return quarantine, records, json.loads((out / "manifest.json").read_text())


def test_split_of_boundaries() -> None:
    """The fixed split: train to A04500, val A04501–A05000, test A05001–A06000, unused past it."""
    cases = {"A00001": "train", "A04500": "train", "A04501": "val", "A05000": "val"}
    cases |= {"A05001": "test", "A06000": "test", "A06001": "unused", "A08528": "unused"}
    assert {name: split_of(name) for name in cases} == cases
    for bad in ("A0001", "B00001", "a00001", "A00001.hea", "A000001"):
        with pytest.raises(ValueError, match="not a CinC-2017 record name"):
            split_of(bad)


@needs_shared_data
def test_real_val_split_records_and_labels() -> None:
    """``splits=["val"]`` lists exactly A04501–A05000; a record is one 300 Hz ECG lead in mV with its labels."""
    reader = make_reader("cinc2017", CINC, splits=["val"])
    refs = reader.list_records()
    assert [r.record_id for r in refs] == [f"cinc2017/A{n:05d}" for n in range(4501, 5001)]
    assert not any(r.problem for r in refs)

    record = reader.load(refs[0])
    assert record.leads == ("ECG",) and record.sample_rate_hz == 300.0 and record.signal.dtype == np.float32
    assert set(record.labels) == {"rhythm", "split"} and record.labels["split"] == "val"
    assert record.labels["rhythm"] in {"N", "A", "O", "~"} and record.patient_id == "cinc2017/A04501"
    assert np.isfinite(record.signal).all() and 0.1 < np.ptp(record.signal) < 20.0  # mV, not raw units
    # the samples behind the 24-byte MATLAB header, read independently, at the header's 1000 units/mV
    digital = scipy.io.loadmat(CINC / "A04501.mat")["val"]
    np.testing.assert_allclose(record.signal, digital / 1000.0, atol=1e-6)
    with pytest.raises(ValueError, match="unknown CinC-2017 split"):
        make_reader("cinc2017", CINC, splits=["train", "dev"])


@needs_shared_data
def test_real_reference_counts_match_the_data_readme() -> None:
    """REFERENCE.csv holds one label per record A00001–A06000, in the README's class counts."""
    labels = read_reference(CINC / "REFERENCE.csv")
    assert sorted(labels) == [f"A{n:05d}" for n in range(1, 6001)]
    assert Counter(labels.values()) == {"N": 3613, "A": 501, "O": 1688, "~": 198}


@needs_shared_data
def test_bad_records_are_quarantined_and_good_ones_kept(tmp_path: Path) -> None:
    """No label row, a truncated .mat, a header naming another record and an unknown label are each
    quarantined with a reason naming the file; every good record reaches the shards with its labels."""
    raw = tmp_path / "raw"
    names = [f"A0000{i}" for i in range(1, 8)]
    for name in names:
        copy_record(raw, name, declared="A00060" if name == "A00006" else None)
    mat = raw / "A00005.mat"
    mat.write_bytes(mat.read_bytes()[:1000])
    labels = {"A00001": "N", "A00002": "A", "A00003": "~", "A00005": "N", "A00006": "O", "A00007": "X"}
    write_index(raw, labels, names)

    quarantine, records, manifest = prepare(raw, tmp_path / "out")
    expected = {
        "cinc2017/A00004": "REFERENCE.csv: no label row for A00004",
        "cinc2017/A00005": "A00005.mat: truncated signal file",
        "cinc2017/A00006": "A00006.hea: header names record 'A00060', not the file's 'A00006'",
        "cinc2017/A00007": "REFERENCE.csv: A00007 has label 'X', not one of N, A, O, ~",
    }
    assert sorted(quarantine["record_id"]) == sorted(expected)
    for row in quarantine.itertuples():
        assert expected[row.record_id] in row.reason and Path(row.file).stem in row.reason, row.reason

    assert {rid.split("_w")[0] for rid in records} == {"cinc2017/A00001", "cinc2017/A00002", "cinc2017/A00003"}
    for rid, record in records.items():  # 10 s windows at 250 Hz
        name = rid.split("/")[1].split("_w")[0]
        assert record.labels == {"rhythm": labels[name], "split": "train"} and record.leads == ("ECG",)
    assert manifest["sources"]["cinc2017"]["records"] == len(records) and manifest["quarantine_count"] == 4


@needs_shared_data
def test_stray_header_file_is_quarantined_not_fatal(tmp_path: Path) -> None:
    """A header that is no CinC-2017 name (a duplicate download, ``A00001 (1).hea``) is reported, not a crash,
    also under ``--splits`` (no RECORDS file, so every ``A*.hea`` is listed)."""
    raw = tmp_path / "raw"
    copy_record(raw, "A00001")
    copy_record(raw, "A00001", "A00001 (1)")
    (raw / "REFERENCE.csv").write_text("A00001,N\nA00001 (1),N\n")
    quarantine, records, _ = prepare(raw, tmp_path / "out", "--splits", "train,val", "--window-seconds", "0")
    assert list(records) == ["cinc2017/A00001"]
    assert list(quarantine["record_id"]) == ["cinc2017/A00001 (1)"]
    assert "'A00001 (1)' is not a CinC-2017 record name" in quarantine["reason"][0]


@needs_shared_data
def test_splits_option_keeps_only_the_chosen_splits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--splits train,val`` writes no test or unused record; ``--splits`` with another source is refused."""
    raw = tmp_path / "raw"
    names = ["A04500", "A04501", "A05001", "A06001"]
    for name in names:
        copy_record(raw, "A00001", name)
    write_index(raw, dict.fromkeys(names, "N"), names)
    listed = make_reader("cinc2017", raw).list_records()
    assert [r.labels["split"] for r in listed] == ["train", "val", "test", "unused"]

    quarantine, records, _ = prepare(raw, tmp_path / "out", "--splits", "train,val", "--window-seconds", "0")
    assert quarantine.empty
    assert {rid: r.labels["split"] for rid, r in records.items()} == {
        "cinc2017/A04500": "train",
        "cinc2017/A04501": "val",
    }
    with pytest.raises(SystemExit):
        main(["--source", "mitdb", "--raw", str(raw), "--out", str(tmp_path / "o2"), "--splits", "train"])
    assert "--splits applies to --source cinc2017 only" in capsys.readouterr().err


def test_missing_reference_table_is_a_clear_error(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Without REFERENCE.csv listing fails naming the file, and ``prepare`` exits with status 2."""
    raw = tmp_path / "raw"
    raw.mkdir()
    with pytest.raises(FileNotFoundError, match=r"REFERENCE\.csv: CinC-2017 label table not found"):
        make_reader("cinc2017", raw).list_records()
    assert main(["--source", "cinc2017", "--raw", str(raw), "--out", str(tmp_path / "out")]) == 2
    assert f"{raw / 'REFERENCE.csv'}: CinC-2017 label table not found" in caplog.text
