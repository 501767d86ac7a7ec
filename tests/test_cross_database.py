"""Cross-database beat evaluation: lead maps, the generic WFDB folder reader, MIT-BIH heads tested on a small
annotated database the test writes (two records, different rates and lead names), and DS1 -> DS2 through
``--test-dir`` reproducing the built-in figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import wfdb
from fake_layouts import digital, synthetic_ecg, write_wfdb_record

from datamodules.readers import make_reader
from datamodules.record import BadRecordError
from ecg_dino.commands import probe_mitbih
from ecg_dino.leads import UnknownLeadError, map_leads, parse_lead_map

MITDB = Path(__file__).resolve().parents[2] / "shared" / "data" / "mitdb"
needs_mitdb = pytest.mark.skipif(not MITDB.is_dir(), reason=f"MIT-BIH Arrhythmia Database not present at {MITDB}")
TRAIN = ["--ds1", "208", "223", "124", "118", "--val-records", "1", "--no-robustness", "--n-boot", "20"]


def test_lead_map_is_case_insensitive_and_checked() -> None:
    lead_map = parse_lead_map(["ECG1=MLII", "ch2 = v1"])
    assert lead_map == {"ECG1": "MLII", "ch2": "V1"}
    assert map_leads(["ecg1", "CH2", "avr"], lead_map) == ["MLII", "V1", "avr"]
    with pytest.raises(ValueError, match="not OLD=NEW"):
        parse_lead_map(["ECG1"])
    with pytest.raises(UnknownLeadError, match="'V7'"):
        parse_lead_map(["ch3=V7"])


def write_annotated_database(root: Path) -> None:
    """Two 60 s records: ``a`` at 250 Hz with leads ECG1 and ch2 (ch2 unknown to the vocabulary), ``b`` at
    500 Hz with lower-case mlii and v5; beats N, V, A and non-beat symbols (+, ~, a MIT-BIH-foreign ``?``)."""
    rng = np.random.default_rng(0)
    for name, fs, leads in (("a", 250, ["ECG1", "ch2"]), ("b", 500, ["mlii", "v5"])):
        n = 60 * fs
        write_wfdb_record(root, name, digital(synthetic_ecg(rng, 2, n, fs)), fs, leads)
        beats = np.arange(int(0.5 * fs), n - fs // 2, int(0.8 * fs))
        symbols = [("N", "V", "N", "A")[i % 4] for i in range(len(beats))]
        samples = np.r_[beats, [beats[3] + 5, beats[10] + 5, beats[20] + 5]]
        symbols += ["+", "~", "?"]
        order = np.argsort(samples, kind="stable")
        wfdb.wrann(name, "atr", sample=samples[order], symbol=[symbols[i] for i in order], fs=fs, write_dir=str(root))
    (root / "RECORDS").write_text("a\nb\n")


def test_wfdb_folder_reader_maps_leads_and_names_the_unknown_one(tmp_path: Path) -> None:
    write_annotated_database(tmp_path)
    reader = make_reader("wfdb", tmp_path, window_seconds=0)
    refs = {r.record_id: r for r in reader.list_records()}
    assert reader.load(refs["wfdb/b"]).leads == ("MLII", "V5")
    with pytest.raises(BadRecordError, match=r"a\.hea: unknown lead name 'ch2'"):
        reader.load(refs["wfdb/a"])
    mapped = make_reader("wfdb", tmp_path, window_seconds=0, lead_map=parse_lead_map(["ECG1=MLII", "CH2=V1"]))
    record = mapped.load({r.record_id: r for r in mapped.list_records()}["wfdb/a"])
    assert record.leads == ("MLII", "V1") and record.sample_rate_hz == 250
    assert record.annotations is not None and "?" in record.annotations["symbol"]


@needs_mitdb
def test_mitbih_heads_tested_on_another_database(tmp_path: Path, tiny_backbone_file: Path) -> None:
    """Without a lead map the record with an unknown lead is skipped and reported; with it both records are
    tested, resampled from 250 and 500 Hz, and the symbols left out are counted."""
    db = tmp_path / "db"
    write_annotated_database(db)
    common = ["--ckpt", str(tiny_backbone_file), "--mitdb", str(MITDB), "--cache-dir", str(tmp_path / "cache"), *TRAIN]

    assert probe_mitbih.main([*common, "--out", str(tmp_path / "r1"), "--test-dir", str(db)]) == 0
    report = json.loads((tmp_path / "r1" / "report.json").read_text())
    assert report["data"]["test records"] == 1
    (reason,) = report["data"]["skipped test records"].values()
    assert "a.hea" in reason and "'ch2'" in reason

    out = tmp_path / "r2"
    argv = [*common, "--out", str(out), "--test-dir", str(db), "--lead-map", "ch2=V1", "--with-rr"]
    assert probe_mitbih.main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["settings"]["paradigm"] == "cross-database"
    assert report["data"]["test records"] == 2 and not report["data"]["skipped test records"]
    assert report["data"]["annotation symbols left out (not AAMI beats)"] == {"+": 2, "~": 2, "?": 2}
    beats = report["data"]["test beats"]
    assert beats["N"] > 0 and beats["V"] > 0 and beats["S"] > 0 and beats["F"] == 0
    for model in ("model", "random_init", "rr_baseline", "model+rr"):
        test = report["models"][model]["test"]
        assert test["n_beats"] == sum(beats.values())
        lo, hi = test["ci95"]["macro_auroc"]
        assert lo <= hi
    assert "another annotated database" in (out / "report.md").read_text()


@needs_mitdb
def test_ds1_to_ds2_through_test_dir_reproduces_the_built_in_probe(tmp_path: Path, tiny_backbone_file: Path) -> None:
    """DS2 records copied into a folder of their own give the built-in DS1 -> DS2 figures (same beats, same
    features, same heads)."""
    ds2 = tmp_path / "ds2"
    ds2.mkdir()
    for name in ("100", "213"):
        for ext in ("hea", "dat", "atr"):
            (ds2 / f"{name}.{ext}").symlink_to(MITDB / f"{name}.{ext}")
    common = ["--ckpt", str(tiny_backbone_file), "--mitdb", str(MITDB), "--cache-dir", str(tmp_path / "cache"), *TRAIN]
    assert probe_mitbih.main([*common, "--out", str(tmp_path / "built_in"), "--ds2", "100", "213"]) == 0
    assert probe_mitbih.main([*common, "--out", str(tmp_path / "cross"), "--test-dir", str(ds2)]) == 0
    built_in = json.loads((tmp_path / "built_in" / "report.json").read_text())
    cross = json.loads((tmp_path / "cross" / "report.json").read_text())
    assert built_in["data"]["test beats"] == cross["data"]["test beats"]
    for model in ("model", "random_init", "rr_baseline"):
        a, b = built_in["models"][model]["test"], cross["models"][model]["test"]
        for key in ("macro_auroc", "macro_f1", "j_kappa", "accuracy"):
            assert a[key] == pytest.approx(b[key], abs=1e-9), (model, key)
        assert a["confusion"] == b["confusion"]
