"""Bring your own ECGs: WFDB (lower-case and unknown lead names), EDF and NumPy folders through ``prepare`` and
``embed``, bad records quarantined with a reason naming the file, nothing else lost."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fake_layouts import STANDARD_12
from own_ecgs import write_edf_db, write_numpy_db, write_wfdb_db

from datamodules.prepare import PrepareOptions
from datamodules.readers import make_reader
from datamodules.record import ECGRecord
from datamodules.shards import MIN_STEP_MV, iter_records
from ecg_dino import ECGEncoder
from ecg_dino.commands import embed, prepare
from ecg_dino.commands.arguments import parse
from ecg_dino.features.cache import read_table
from ecg_dino.features.sources import guess_source
from ecg_dino.signal import resample


def run_prepare(raw: Path, out: Path, source: str, *extra: str) -> tuple[dict[str, list[str]], dict]:
    """``ecg-dino prepare`` -> (quarantine reasons by record id, shard records by id)."""
    assert prepare.main(["--source", source, "--raw", str(raw), "--out", str(out), *extra]) == 0
    rows = pd.read_csv(out / "quarantine.csv", keep_default_na=False)
    reasons: dict[str, list[str]] = {}
    for row in rows.itertuples():
        reasons.setdefault(row.record_id, []).append(row.reason)
    return reasons, {r.record_id: r for shard in sorted(out.glob("*.parquet")) for r in iter_records(shard)}


def run_embed(tmp_path: Path, data: Path, ckpt: Path, *extra: str) -> tuple[int, dict]:
    """``ecg-dino embed`` -> (exit code, table columns or {})."""
    out = tmp_path / f"{data.name}.parquet"
    argv = ["--ckpt", str(ckpt), "--data", str(data), "--out", str(out), "--cache-dir", str(tmp_path / "cache")]
    code = embed.main([*argv, "--crop-seconds", "4", *extra])
    return code, read_table(out) if code == 0 else {}


def assert_api_equals_embed(record: ECGRecord, ckpt: Path, cols: dict, row: int) -> None:
    """``ECGEncoder.embed`` on the record read from the user's files gives ``ecg-dino embed``'s row (4 s crops)."""
    out = ECGEncoder.from_pretrained(ckpt, crop_seconds=4).embed(record.signal, record.leads, record.sample_rate_hz)
    np.testing.assert_allclose(out.cls, cols["cls"][row], atol=1e-6, rtol=0)
    np.testing.assert_allclose(out.mean, cols["mean"][row], atol=1e-6, rtol=0)


def assert_stored(stored: np.ndarray, reference: np.ndarray, atol: float = 0.0) -> None:
    """Shard samples equal the reference to half an int16 step (plus ``atol``: the source's own quantisation)."""
    step = np.maximum(np.abs(reference).max(axis=1, keepdims=True) / 32767, MIN_STEP_MV)
    assert np.all(np.abs(stored - reference) <= step / 2 + 1e-5 + atol)


def test_wfdb_folder_unknown_lead_is_quarantined_until_mapped(tmp_path: Path) -> None:
    signals = write_wfdb_db(tmp_path / "raw")
    reasons, records = run_prepare(tmp_path / "raw", tmp_path / "out", "wfdb")
    assert list(records) == ["wfdb/a"] and records["wfdb/a"].leads == ("I", "II", "V1")
    (reason,) = reasons["wfdb/b"]
    assert "b.hea" in reason and "unknown lead name 'ch2'" in reason and "ch2=LEAD" in reason
    assert_stored(records["wfdb/a"].signal, resample(signals["a"], 500, 250))

    reasons, records = run_prepare(tmp_path / "raw", tmp_path / "mapped", "wfdb", "--lead-map", "CH2=V1")
    assert reasons == {} and records["wfdb/b"].leads == ("MLII", "V1")
    assert_stored(records["wfdb/b"].signal, resample(signals["b"], 360, 250))


def test_embed_names_the_record_and_the_unknown_lead(
    tmp_path: Path, tiny_backbone_file: Path, capsys: pytest.CaptureFixture
) -> None:
    write_wfdb_db(tmp_path / "raw")
    code, cols = run_embed(tmp_path, tmp_path / "raw", tiny_backbone_file, "--source", "wfdb")
    assert code == 0 and list(cols["record_id"]) == ["wfdb/a"]
    err = capsys.readouterr().err
    assert "b.hea" in err and "'ch2'" in err
    listed = pd.read_csv(tmp_path / "raw.quarantine.csv")
    assert list(listed["record_id"]) == ["wfdb/b"] and "'ch2'" in listed["reason"][0]

    (tmp_path / "raw" / "a.hea").unlink()  # only the record with the unknown lead is left: an error
    code, _ = run_embed(tmp_path, tmp_path / "raw", tiny_backbone_file)
    assert code == 2
    err = capsys.readouterr().err
    assert "no record could be embedded" in err and "b.hea" in err and "unknown lead name 'ch2'" in err

    code, cols = run_embed(tmp_path, tmp_path / "raw", tiny_backbone_file, "--lead-map", "ch2=V1")
    assert code == 0 and list(cols["record_id"]) == ["wfdb/b"]
    assert not (tmp_path / "raw.quarantine.csv").exists()
    reader = make_reader("wfdb", tmp_path / "raw", window_seconds=0, lead_map={"ch2": "V1"})
    assert_api_equals_embed(reader.load(reader.list_records()[0]), tiny_backbone_file, cols, 0)


def test_edf_channels_mapped_skipped_and_resampled(tmp_path: Path, tiny_backbone_file: Path) -> None:
    lead_i = write_edf_db(tmp_path / "raw")
    reader = make_reader("edf", tmp_path / "raw", window_seconds=0)
    refs = {r.record_id: r for r in reader.list_records()}
    record = reader.load(refs["edf/night"])
    assert record.leads == ("I", "II") and record.sample_rate_hz == 500 and record.num_samples == 5000
    np.testing.assert_allclose(record.signal[0], lead_i, atol=2e-4)  # EDF's 16-bit digital step over ±5 mV
    notes = "\n".join(record.notes)
    assert "'EEG Fp1' skipped: not an ECG lead" in notes and "'ECG V2' skipped: physical dimension 'mmHg'" in notes
    assert "lead II resampled from 250 to 500 Hz" in notes

    reasons, records = run_prepare(tmp_path / "raw", tmp_path / "out", "edf")
    assert list(records) == ["edf/night"] and records["edf/night"].leads == ("I", "II")
    assert_stored(records["edf/night"].signal[:1], resample(lead_i[None], 500, 250), atol=2e-4)
    (eeg,) = reasons["edf/eeg"]
    assert "eeg.edf: no ECG channel among 'EEG Fp1'" in eeg
    assert len(reasons["edf/night"]) == 3 and all("night.edf" in r for r in reasons["edf/night"])

    code, cols = run_embed(tmp_path, tmp_path / "raw", tiny_backbone_file)  # guessed from the .edf files
    assert code == 0 and list(cols["record_id"]) == ["edf/night"]
    assert len(pd.read_csv(tmp_path / "raw.quarantine.csv")) == 4
    assert_api_equals_embed(record, tiny_backbone_file, cols, 0)


def test_edf_labels_through_a_lead_map(tmp_path: Path) -> None:
    write_edf_db(tmp_path / "raw")
    reader = make_reader("edf", tmp_path / "raw", window_seconds=0, lead_map={"eeg fp1": "V6"})
    record = reader.load({r.record_id: r for r in reader.list_records()}["edf/eeg"])
    assert record.leads == ("V6",) and record.sample_rate_hz == 100


def test_numpy_folder_checks_like_the_builtin_readers(tmp_path: Path, tiny_backbone_file: Path) -> None:
    expected = write_numpy_db(tmp_path / "raw")
    good12 = np.load(tmp_path / "raw" / "good12.npy")
    holter = np.load(tmp_path / "raw" / "holter.npz")["signal"] / 1000.0
    reasons, records = run_prepare(tmp_path / "raw", tmp_path / "out", "numpy")
    assert sorted(records) == ["numpy/good12", "numpy/holter"]
    assert records["numpy/good12"].leads == tuple(STANDARD_12) and records["numpy/holter"].leads == ("MLII", "V1")
    assert_stored(records["numpy/good12"].signal, resample(good12, 500, 250))
    assert_stored(records["numpy/holter"].signal, resample(holter, 360, 250))  # uV -> mV
    assert sorted(reasons) == sorted(expected)
    for record_id, (reason,) in reasons.items():
        assert expected[record_id] in reason, reason

    code, cols = run_embed(tmp_path, tmp_path / "raw", tiny_backbone_file)
    assert code == 0 and sorted(cols["record_id"]) == ["numpy/good12", "numpy/holter"]
    reader = make_reader("numpy", tmp_path / "raw", window_seconds=0)
    holter_ref = next(r for r in reader.list_records() if r.record_id == "numpy/holter")
    assert_api_equals_embed(
        reader.load(holter_ref), tiny_backbone_file, cols, list(cols["record_id"]).index("numpy/holter")
    )
    listed = pd.read_csv(tmp_path / "raw.quarantine.csv")
    assert sorted(listed["record_id"]) == sorted(expected)
    again = read_table(next((tmp_path / "cache").glob("*.parquet")))  # the cache keeps the quarantine
    assert sorted(row[1] for row in again["quarantine"]) == sorted(expected)


def test_numpy_flags_describe_arrays_without_a_sidecar(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    signal = 1e-3 * np.random.default_rng(3).normal(size=(2, 3000))  # in V
    np.save(raw / "x.npy", signal)
    reasons, _ = run_prepare(raw, tmp_path / "none", "numpy")
    assert "x.npy: no leads or sample_rate_hz" in reasons["numpy/x"][0]
    flags = ["--numpy-leads", "ii,V5", "--numpy-sample-rate-hz", "250", "--numpy-units", "V"]
    _, records = run_prepare(raw, tmp_path / "out", "numpy", *flags)
    assert records["numpy/x"].leads == ("II", "V5")
    assert_stored(records["numpy/x"].signal, 1000 * signal)
    (raw / "x.json").write_text(json.dumps({"leads": ["I", "III"], "sample_rate_hz": 250, "colour": "red"}))
    reasons, _ = run_prepare(raw, tmp_path / "bad", "numpy", *flags)
    assert "x.json: a sidecar holds an object with keys" in reasons["numpy/x"][0] and "colour" in reasons["numpy/x"][0]


def parse_prepare(argv: list[str]) -> PrepareOptions:
    """``ecg-dino prepare``'s command line as its options (a usage error exits)."""
    return parse(PrepareOptions, argv, prepare.PROG, prepare.EXAMPLE, "")


def test_generic_options_are_checked_and_folders_guessed(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        parse_prepare(["--source", "ptbxl", "--raw", "r", "--out", "o", "--lead-map", "ch2=V1"])
    with pytest.raises(SystemExit):
        parse_prepare(["--source", "wfdb", "--raw", "r", "--out", "o", "--numpy-leads", "I"])
    with pytest.raises(SystemExit):
        parse_prepare(["--source", "wfdb", "--raw", "r", "--out", "o", "--lead-map", "ch2=V7"])
    opts = parse_prepare(["--source", "wfdb", "--raw", "r", "--out", "o", "--lead-map", "ch2=V1", "x=ii"])
    assert opts.source_options.reader_options("wfdb") == {"lead_map": {"ch2": "V1", "x": "II"}}
    write_wfdb_db(tmp_path / "wfdb")
    write_edf_db(tmp_path / "edf")
    write_numpy_db(tmp_path / "numpy")
    assert [guess_source(tmp_path / kind) for kind in ("wfdb", "edf", "numpy")] == ["wfdb", "edf", "numpy"]
