"""``prepare``: exact sample counts and values on real data, fake layouts, resumability, manifest, CLI."""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import wfdb
from fake_layouts import write_code15, write_heedb, write_icentia11k
from scipy.signal import resample_poly

from datamodules import download
from datamodules.prepare import parse_folds, parse_names
from datamodules.shards import MIN_STEP_MV, iter_records
from ecg_dino.commands import download as download_command
from ecg_dino.commands.prepare import main
from ecg_dino.files import file_sha256

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.exists(), reason="../shared/data not present")
RATE = 250


def prepare(raw: Path, out: Path, source: str, *extra: str) -> dict:
    """Run ``ecg-dino prepare`` and return the manifest it wrote."""
    assert main(["--source", source, "--raw", str(raw), "--out", str(out), *extra]) == 0
    return json.loads((out / "manifest.json").read_text())


def read_shards(out: Path) -> dict:
    """Every record of every shard in ``out``, by record id."""
    return {r.record_id: r for shard in sorted(out.glob("*.parquet")) for r in iter_records(shard)}


def expected_windows(num_samples: int, rate_in: float, window_seconds: float | None) -> list[int]:
    """Window lengths after ``resample_poly`` to 250 Hz: ceil(n * up / down) samples, cut into full windows
    plus a tail of at least 1 s."""
    ratio = Fraction(RATE) / Fraction(rate_in)
    n_out = math.ceil(num_samples * ratio)
    if not window_seconds:
        return [n_out]
    size = round(window_seconds * RATE)
    tail = n_out % size
    return [size] * (n_out // size) + ([tail] if tail >= RATE else [])


def resampled(signal_mv: np.ndarray, rate_in: float) -> np.ndarray:
    """float [L, T] -> the 250 Hz signal prepare should store."""
    ratio = Fraction(RATE) / Fraction(rate_in)
    return resample_poly(signal_mv, ratio.numerator, ratio.denominator, axis=1, padtype="line")


def assert_within_int16(stored: np.ndarray, reference: np.ndarray) -> None:
    """Stored (int16 + per-lead scale) equals the reference to half a quantisation step."""
    step = np.maximum(np.abs(reference).max(axis=1, keepdims=True) / 32767, MIN_STEP_MV)
    assert np.all(np.abs(stored - reference) <= step / 2 + 1e-5)


def ptbxl_headers(ids: list[int]) -> dict[str, Path]:
    db = pd.read_csv(DATA / "ptbxl" / "ptbxl_database.csv", index_col="ecg_id")
    return {f"ptbxl/{i}": DATA / "ptbxl" / f"{db.loc[i, 'filename_hr']}.hea" for i in ids}


def wfdb_headers(folder: str, source: str, names: list[str] | None = None) -> dict[str, Path]:
    paths = [DATA / folder / f"{n}.hea" for n in names] if names else sorted((DATA / folder).glob("*.hea"))
    return {f"{source}/{p.stem}": p for p in paths}


PTBXL_IDS = list(range(1, 26))
REAL_CASES = {  # source -> (folder, extra arguments, window seconds, raw headers by record id)
    "mitdb": (
        "mitdb",
        ["--include-records", "100,101"],
        10.0,
        lambda: wfdb_headers("mitdb", "mitdb", ["100", "101"]),
    ),
    "ptbxl": (
        "ptbxl",
        ["--include-records", ",".join(map(str, PTBXL_IDS))],
        None,
        lambda: ptbxl_headers(PTBXL_IDS),
    ),
    "cinc2021": ("cinc2021_samples", [], None, lambda: wfdb_headers("cinc2021_samples", "cinc2021")),
    "cpsc2021": ("cpsc2021_samples", [], 10.0, lambda: wfdb_headers("cpsc2021_samples", "cpsc2021")),
}


@needs_data
@pytest.mark.parametrize("source", sorted(REAL_CASES))
def test_prepare_real_data_exact_samples_and_values(tmp_path, source):
    folder, extra, window_seconds, headers = REAL_CASES[source]
    manifest = prepare(DATA / folder, tmp_path, source, *extra)
    headers = headers()

    expected = {}
    for record_id, header in headers.items():
        h = wfdb.rdheader(str(header.with_suffix("")))
        sizes = expected_windows(h.sig_len, h.fs, window_seconds)
        ids = [f"{record_id}_w{k:04d}" for k in range(len(sizes))] if window_seconds else [record_id]
        expected |= dict(zip(ids, sizes))
    records = read_shards(tmp_path)
    assert {rid: r.num_samples for rid, r in records.items()} == expected
    totals = manifest["sources"][source]
    assert totals["records"] == len(expected) and totals["samples"] == sum(expected.values())
    assert sum(s["num_samples"] for s in manifest["shards"]) == sum(expected.values())
    assert manifest["target_sample_rate_hz"] == RATE
    # no record is skipped; some Chapman records (JS200xx) have all-zero leads, which are dropped
    quarantine = pd.read_csv(tmp_path / "quarantine.csv")
    assert manifest["quarantine_count"] == len(quarantine)
    assert quarantine["reason"].str.endswith("dropped; record kept").all()

    # the first window of the first record and the last window of the last one equal the resampled raw signal
    for record_id, header in (next(iter(headers.items())), list(headers.items())[-1]):
        raw = wfdb.rdrecord(str(header.with_suffix("")))
        reference = resampled(raw.p_signal.T, raw.fs)
        ids = sorted(i for i in expected if i == record_id or i.startswith(f"{record_id}_w"))
        k, stored = len(ids) - 1, records[ids[-1]]
        start = k * round(window_seconds * RATE) if window_seconds else 0
        assert_within_int16(stored.signal, reference[:, start : start + stored.num_samples])
        assert stored.sample_rate_hz == RATE and stored.source == source


@needs_data
def test_prepare_mitdb_rescales_annotations(tmp_path):
    prepare(DATA / "mitdb", tmp_path, "mitdb", "--include-records", "100")
    window = read_shards(tmp_path)["mitdb/100_w0001"]
    atr = wfdb.rdann(str(DATA / "mitdb" / "100"), "atr")
    moved = np.rint(atr.sample * 25 / 36).astype(int)
    inside = (moved >= 2500) & (moved < 5000)
    assert window.annotations["sample"] == (moved[inside] - 2500).tolist()
    assert window.annotations["symbol"] == [s for s, i in zip(atr.symbol, inside) if i]
    assert window.patient_id == "mitdb/100" and window.labels == {"age": 69, "sex": "M"}


@pytest.mark.parametrize(
    ("source", "writer", "window_seconds", "num_shards"),
    [
        ("heedb", write_heedb, None, 2),
        ("code15", write_code15, None, 2),
        ("icentia11k", write_icentia11k, 10.0, 3),
    ],
)
def test_prepare_fake_layouts(tmp_path, source, writer, window_seconds, num_shards):
    written = writer(tmp_path / "raw", np.random.default_rng(0))
    manifest = prepare(tmp_path / "raw", tmp_path / "out", source, "--records-per-shard", "4")
    expected = {}
    for fake in written:
        sizes = expected_windows(fake.num_samples, fake.sample_rate_hz, window_seconds)
        ids = [f"{fake.record_id}_w{k:04d}" for k in range(len(sizes))] if window_seconds else [fake.record_id]
        expected |= dict(zip(ids, sizes))
    records = read_shards(tmp_path / "out")
    assert {rid: r.num_samples for rid, r in records.items()} == expected
    assert manifest["sources"][source]["samples"] == sum(expected.values())
    assert len(manifest["shards"]) == num_shards  # 4 records per shard; a 7-window segment fills one alone
    patients = {f.record_id: f.patient_id for f in written}
    assert all(r.patient_id == patients[rid.split("_w")[0]] for rid, r in records.items())


def test_manifest_fields(tmp_path):
    write_code15(tmp_path / "raw", np.random.default_rng(0))
    manifest = prepare(tmp_path / "raw", tmp_path / "out", "code15", "--records-per-shard", "2")
    assert len(manifest["shards"]) == 3
    for shard in manifest["shards"]:
        assert {"path", "num_records", "num_samples", "sha256", "bytes", "source"} <= set(shard)
        assert shard["sha256"] == file_sha256(tmp_path / "out" / shard["path"])
        assert shard["bytes"] == (tmp_path / "out" / shard["path"]).stat().st_size
    totals = manifest["sources"]["code15"]
    assert totals["records"] == 5 and totals["seconds"] == pytest.approx(totals["samples"] / RATE)
    assert totals["args"]["records_per_shard"] == 2 and totals["args"]["sample_rate_hz"] == RATE
    assert manifest["quarantine_count"] == 0
    assert (tmp_path / "out" / "quarantine.csv").read_text().splitlines() == ["file,record_id,reason"]


def test_rerun_skips_finished_shards_and_redoes_missing_ones(tmp_path, caplog):
    write_icentia11k(tmp_path / "raw", np.random.default_rng(0))
    out = tmp_path / "out"
    first = prepare(tmp_path / "raw", out, "icentia11k", "--records-per-shard", "7")
    shards = sorted(out.glob("*.parquet"))
    assert len(shards) == 3
    mtimes = {p.name: p.stat().st_mtime_ns for p in shards}

    caplog.set_level("INFO", logger="datamodules.prepare")
    second = prepare(tmp_path / "raw", out, "icentia11k", "--records-per-shard", "7")
    assert "skipping 3 finished shard(s) of 3" in caplog.text
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.parquet")} == mtimes
    assert second["shards"] == first["shards"]

    # an interrupted run: one shard lost, another left as a partial .tmp
    shards[1].unlink()
    shards[2].rename(shards[2].with_suffix(".parquet.tmp"))
    caplog.clear()
    third = prepare(tmp_path / "raw", out, "icentia11k", "--records-per-shard", "7")
    assert "skipping 1 finished shard(s) of 3" in caplog.text
    assert shards[0].stat().st_mtime_ns == mtimes[shards[0].name]
    assert {s["path"]: s["sha256"] for s in third["shards"]} == {s["path"]: s["sha256"] for s in first["shards"]}


def test_rerun_redoes_a_shard_whose_checksum_changed(tmp_path):
    write_code15(tmp_path / "raw", np.random.default_rng(0))
    out = tmp_path / "out"
    first = prepare(tmp_path / "raw", out, "code15", "--records-per-shard", "2")
    victim = out / first["shards"][0]["path"]
    victim.write_bytes(victim.read_bytes()[:-10] + b"0123456789")
    prepare(tmp_path / "raw", out, "code15", "--records-per-shard", "2")
    assert file_sha256(victim) == first["shards"][0]["sha256"]


def test_changed_arguments_reconvert(tmp_path):
    write_code15(tmp_path / "raw", np.random.default_rng(0))
    out = tmp_path / "out"
    prepare(tmp_path / "raw", out, "code15", "--records-per-shard", "2")
    manifest = prepare(tmp_path / "raw", out, "code15", "--records-per-shard", "5")
    assert [s["path"] for s in manifest["shards"]] == ["code15-00000.parquet"]
    assert sorted(p.name for p in out.glob("*.parquet")) == ["code15-00000.parquet"]  # stale shards removed
    assert manifest["sources"]["code15"]["records"] == 5


@pytest.mark.slow  # two spawned processes start in about 5 s
def test_workers_give_the_same_shards(tmp_path):
    write_code15(tmp_path / "raw", np.random.default_rng(0))
    one = prepare(tmp_path / "raw", tmp_path / "one", "code15", "--records-per-shard", "2")
    two = prepare(tmp_path / "raw", tmp_path / "two", "code15", "--records-per-shard", "2", "--workers", "2")
    assert [(s["path"], s["sha256"]) for s in one["shards"]] == [(s["path"], s["sha256"]) for s in two["shards"]]


def test_sources_share_a_folder_at_one_rate(tmp_path):
    write_code15(tmp_path / "code15", np.random.default_rng(0))
    write_heedb(tmp_path / "heedb", np.random.default_rng(1))
    out = tmp_path / "out"
    prepare(tmp_path / "code15", out, "code15")
    manifest = prepare(tmp_path / "heedb", out, "heedb")
    assert set(manifest["sources"]) == {"code15", "heedb"}
    assert {s["source"] for s in manifest["shards"]} == {"code15", "heedb"}
    assert main(["--source", "code15", "--raw", str(tmp_path / "code15"), "--out", str(out)]) == 0
    assert (
        main(
            [
                "--source",
                "code15",
                "--raw",
                str(tmp_path / "code15"),
                "--out",
                str(out),
                "--sample-rate-hz",
                "500",
            ]
        )
        == 2
    )


def test_missing_raw_folder_fails_cleanly(tmp_path):
    assert main(["--source", "mitdb", "--raw", str(tmp_path / "absent"), "--out", str(tmp_path / "out")]) == 2


def test_command_line_parsing(tmp_path):
    assert parse_folds("1-3,5") == [1, 2, 3, 5] and parse_folds("9") == [9]
    names = tmp_path / "names.txt"
    names.write_text("100\n101\n\n")
    assert parse_names(f"@{names}") == ["100", "101"] and parse_names("1, 2") == ["1", "2"]
    with pytest.raises(SystemExit):
        main(["--source", "mitdb", "--raw", ".", "--out", str(tmp_path), "--folds", "1-8"])


def test_download_calls_wfdb(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(download.wfdb, "dl_database", lambda *args, **kwargs: calls.append((args, kwargs)))
    assert download_command.main(["nstdb", "--out", str(tmp_path / "nstdb")]) == 0
    assert calls == [(("nstdb",), {"dl_dir": str(tmp_path / "nstdb"), "records": "all", "overwrite": False})]
    with pytest.raises(SystemExit):
        download_command.main(["not-a-database", "--out", str(tmp_path)])
