"""Readers on the real PhysioNet samples in ``../shared/data`` and on fake HEEDB / CODE-15% / Icentia11k."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import wfdb
from fake_layouts import write_code15, write_heedb, write_icentia11k

from datamodules.readers import READERS, make_reader
from datamodules.readers.base import cut_windows, slice_annotations, window_bounds
from datamodules.readers.heedb import header_path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.exists(), reason="../shared/data not present")


def test_every_source_has_a_reader():
    assert set(READERS) == {
        "ptbxl",
        "mitdb",
        "cinc2017",
        "cinc2021",
        "cpsc2021",
        "heedb",
        "code15",
        "icentia11k",
        "wfdb",
        "edf",
        "numpy",
    }
    with pytest.raises(ValueError, match="unknown source"):
        make_reader("nope", ".")


def test_window_bounds_keep_tails_of_a_second_or_more():
    assert window_bounds(2500 * 3 + 250, 250, 10) == [(0, 2500), (2500, 5000), (5000, 7500), (7500, 7750)]
    assert window_bounds(2500 * 3 + 249, 250, 10) == [(0, 2500), (2500, 5000), (5000, 7500)]
    assert window_bounds(1234, 250, None) == [(0, 1234)]


def test_slice_annotations_rebases_samples():
    ann = {
        "sample": np.array([5, 10, 25, 30]),
        "symbol": ["N", "V", "N", "+"],
        "aux_note": ["", "", "", "(AFIB"],
    }
    assert slice_annotations(ann, 10, 30) == {"sample": [0, 15], "symbol": ["V", "N"], "aux_note": ["", ""]}
    assert slice_annotations(None, 0, 10) is None


@needs_data
def test_mitdb_windows_labels_and_patients():
    reader = make_reader("mitdb", DATA / "mitdb", records=["100", "201", "202"])
    refs = reader.list_records()
    assert [r.record_id for r in refs] == ["mitdb/100", "mitdb/201", "mitdb/202"]
    assert refs[1].patient_id == refs[2].patient_id == "mitdb/201"  # 201 and 202: one patient

    record = reader.load(refs[0])
    assert record.signal.shape == (2, 650000) and record.signal.dtype == np.float32
    assert record.sample_rate_hz == 360 and record.leads == ("MLII", "V5")
    assert record.labels == {"age": 69, "sex": "M"}
    atr = wfdb.rdann(str(DATA / "mitdb" / "100"), "atr")
    np.testing.assert_array_equal(record.annotations["sample"], atr.sample)
    assert record.annotations["symbol"] == atr.symbol
    raw = wfdb.rdrecord(str(DATA / "mitdb" / "100")).p_signal.T
    np.testing.assert_allclose(record.signal, raw, atol=1e-6)

    windows = list(cut_windows(record, reader.window_seconds))
    assert len(windows) == 181 == reader.count_windows(refs[0])  # 180 x 10 s + a 5.6 s tail
    assert windows[3].record_id == "mitdb/100_w0003" and windows[3].num_samples == 3600
    inside = (atr.sample >= 3 * 3600) & (atr.sample < 4 * 3600)
    np.testing.assert_array_equal(windows[3].annotations["sample"], atr.sample[inside] - 3 * 3600)


@needs_data
def test_mitdb_reader_reads_the_noisy_nstdb_records():
    reader = make_reader("mitdb", DATA / "nstdb", records=["118e24", "119e_6"])
    refs = reader.list_records()
    assert [r.patient_id for r in refs] == ["mitdb/118", "mitdb/119"]
    record = reader.load(refs[0])
    assert record.leads == ("MLII", "V1") and record.annotations is not None


@needs_data
def test_ptbxl_labels_folds_and_resolution():
    reader = make_reader("ptbxl", DATA / "ptbxl", folds=[9, 10])
    refs = reader.list_records()
    assert refs and all(r.labels["strat_fold"] in (9, 10) for r in refs)
    record = reader.load(make_reader("ptbxl", DATA / "ptbxl", records=["1"]).list_records()[0])
    assert record.record_id == "ptbxl/1" and record.patient_id == "ptbxl/15709"
    assert record.labels["scp_codes"] == {"NORM": 100.0, "LVOLT": 0.0, "SR": 0.0}
    assert record.labels["strat_fold"] == 3 and record.labels["diagnostic_superclass"] == ["NORM"]
    assert record.signal.shape == (12, 5000) and record.leads[3] == "aVR"  # "AVR" in the header
    low = make_reader("ptbxl", DATA / "ptbxl", records=["1"], records_folder="records100")
    assert low.load(low.list_records()[0]).signal.shape == (12, 1000)


@needs_data
def test_cinc2021_dx_age_sex():
    reader = make_reader("cinc2021", DATA / "cinc2021_samples")
    refs = reader.list_records()
    assert len(refs) == 50
    record = reader.load(refs[0])
    assert record.record_id == "cinc2021/E07500"
    assert record.labels == {"dx": ["67741000119109", "426177001"], "age": 78, "sex": "Male"}
    assert record.signal.shape == (12, 5000) and record.sample_rate_hz == 500


@needs_data
def test_cpsc2021_patients_and_rhythm_annotations():
    reader = make_reader("cpsc2021", DATA / "cpsc2021_samples")
    refs = reader.list_records()
    assert len(refs) == 18 and refs[0].patient_id == "cpsc2021/data_101"
    record = reader.load(refs[0])
    assert record.sample_rate_hz == 200 and record.labels == {"rhythm": "paroxysmal atrial fibrillation"}
    assert "(AFIB" in record.annotations["aux_note"]
    windows = list(reader)[:2]
    assert [w.record_id for w in windows] == ["cpsc2021/data_101_6_w0000", "cpsc2021/data_101_6_w0001"]


def test_heedb_fake_layout(tmp_path):
    written = write_heedb(tmp_path / "ECG", np.random.default_rng(0))  # the layout sits under ECG/
    reader = make_reader("heedb", tmp_path)
    refs = reader.list_records()
    assert sorted(r.record_id for r in refs) == sorted(w.record_id for w in written)
    for ref in refs:
        record = reader.load(ref)
        fake = next(w for w in written if w.record_id == ref.record_id)
        assert record.patient_id == fake.patient_id and record.sample_rate_hz == fake.sample_rate_hz
        assert record.signal.shape == (fake.num_leads, fake.num_samples)
        assert record.labels["age"] == 60.0 and record.labels["sex"] == "Female"
    # a metadata FileName may carry its extension
    assert header_path(tmp_path / "I0001", "/S0001/2020/x.hea") == tmp_path / "I0001/WFDB/S0001/2020/x.hea"
    assert header_path(tmp_path / "I0006", "WFDB/2013/y") == tmp_path / "I0006/WFDB/2013/y.hea"


def test_code15_fake_layout_strips_padding(tmp_path):
    written = write_code15(tmp_path, np.random.default_rng(0))
    reader = make_reader("code15", tmp_path)
    refs = reader.list_records()
    assert [r.record_id for r in refs] == [w.record_id for w in written]  # filler rows (exam_id 0) skipped
    for ref, fake in zip(refs, written):
        record = reader.load(ref)
        assert record.signal.shape == (12, fake.num_samples) and record.sample_rate_hz == 400
        assert record.leads[:6] == ("I", "II", "III", "aVR", "aVL", "aVF")
        assert record.patient_id == fake.patient_id
    assert reader.load(refs[1]).labels["RBBB"] is True and refs[0].labels["normal_ecg"] is True


def test_code15_scale_option(tmp_path):
    write_code15(tmp_path, np.random.default_rng(0))
    ref = make_reader("code15", tmp_path).list_records()[0]
    base = make_reader("code15", tmp_path).load(ref).signal
    halved = make_reader("code15", tmp_path, mv_per_unit=0.5).load(ref).signal
    np.testing.assert_allclose(halved, base * 0.5)


def test_icentia11k_fake_layout(tmp_path):
    written = write_icentia11k(tmp_path, np.random.default_rng(0))
    reader = make_reader("icentia11k", tmp_path)
    refs = reader.list_records()
    assert [r.record_id for r in refs] == [w.record_id for w in written]
    assert [r.patient_id for r in refs] == ["icentia11k/p00000", "icentia11k/p00000", "icentia11k/p00001"]
    record = reader.load(refs[0])
    assert record.leads == ("ECG",) and record.sample_rate_hz == 250
    assert {"N", "S", "V", "Q", "+"} <= set(record.annotations["symbol"])
    windows = list(cut_windows(record, reader.window_seconds))
    assert len(windows) == reader.count_windows(refs[0]) == 7  # 6 x 10 s + a 5 s tail
    assert windows[-1].num_samples == 1250


def test_records_and_exclude_filters(tmp_path):
    write_icentia11k(tmp_path, np.random.default_rng(0))
    only = make_reader("icentia11k", tmp_path, records=["p00000_s01", "p00001_s00"], exclude=["p00001_s00"])
    assert [r.record_id for r in only.list_records()] == ["icentia11k/p00000_s01"]


def test_missing_root_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="raw mitdb folder not found"):
        make_reader("mitdb", tmp_path / "absent").list_records()
