"""The online probe: fixed labelled sets from real files, cross-fitted AUROC, and the curve in TensorBoard."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from conftest import SHARED_DATA, fit_with_callback, needs_shared_data

from datamodules.readers.cinc2017 import CLASSES, read_reference
from ecg_dino.leads import lead_indices
from ecg_dino.probes.online import (
    TRAIN_ONLY,
    OnlineProbe,
    alternate_folds,
    cinc2017_set,
    cross_fitted_auroc,
    mitbih_set,
    record_crops,
)


def test_record_crops_cut_pad_and_mark_short_records():
    long, short = np.ones((1, 2500), np.float32), np.ones((2, 300), np.float32)
    signal, ids, mask, valid, item = record_crops([long, short], [("ECG",), ("MLII", "V1")], 1000)
    assert ids.tolist() == [[*lead_indices(["ECG"]), 0]] * 2 + [lead_indices(["MLII", "V1"])]
    assert signal.shape == (3, 2, 1000)  # two whole crops of the long record (the 500-sample tail dropped), one short
    assert item.tolist() == [0, 0, 1] and valid.tolist() == [1000, 1000, 300]
    assert mask.tolist() == [[True, False], [True, False], [True, True]]
    assert signal[2, :, 300:].sum() == 0 and signal[0, 1].sum() == 0


def test_alternate_folds_put_every_class_on_both_sides():
    labels = np.array([0, 0, 1, 1, 1, 2, 2, 0])
    folds = alternate_folds(labels)
    for k in (0, 1, 2):
        assert set(folds[labels == k]) == {0, 1}


@needs_shared_data
def test_cinc2017_set_reads_validation_records_only():
    probe_set = cinc2017_set(SHARED_DATA / "cinc2017", 250.0, 1000, max_records=30)
    assert probe_set.num_items == 30 and probe_set.signal.shape[1:] == (1, 1000)
    assert set(probe_set.item) == set(range(30))
    reference = read_reference(SHARED_DATA / "cinc2017" / "REFERENCE.csv")
    expected = [CLASSES.index(reference[f"A{n:05d}"]) for n in range(4501, 4531)]  # the first 30 validation records
    assert probe_set.labels.tolist() == expected


@needs_shared_data
def test_cinc2017_training_records_join_every_fit():
    probe_set = cinc2017_set(SHARED_DATA / "cinc2017", 250.0, 1000, max_records=20, train_records=45)
    train = probe_set.folds == TRAIN_ONLY
    assert probe_set.num_items == 20 + train.sum() and abs(train.sum() - 45) <= 4  # rounded per class
    assert (np.bincount(probe_set.labels[train], minlength=4) > 0).all()  # every class drawn
    # The training records join both fits: give them a feature whose class mapping is the validation records'
    # shifted by one. The validation halves alone fit the true mapping (AUROC 1); with the training records in
    # the fits the shifted mapping pulls the heads away (0.69 measured).
    x = np.eye(4)[probe_set.labels].astype(float)
    x[train] = np.eye(4)[(probe_set.labels[train] + 1) % 4]
    val_only = replace(probe_set, labels=probe_set.labels[~train], folds=probe_set.folds[~train])
    assert cross_fitted_auroc(x[~train], val_only, l2=0.1) == 1.0
    assert cross_fitted_auroc(x, probe_set, l2=0.1) < 0.9


@needs_shared_data
def test_mitbih_set_uses_ds1_beats_of_n_s_v_with_patient_folds():
    probe_set = mitbih_set(SHARED_DATA / "mitdb", 250.0, 50, beats_per_class=20)
    assert sorted(np.bincount(probe_set.labels).tolist()) == [20, 20, 20]
    for k in (0, 1, 2):
        assert set(probe_set.folds[probe_set.labels == k]) == {0, 1}
    assert probe_set.signal.shape[1:] == (2, 350) and probe_set.centre_patch.max() <= 5


@needs_shared_data
def test_curve_is_logged_from_step_zero_during_fit(tmp_path: Path):
    probe = OnlineProbe(every_n_steps=2, cinc2017=str(SHARED_DATA / "cinc2017"), max_records=24, crop_seconds=2.0)
    events = fit_with_callback(tmp_path, probe)
    curve = events.Scalars("online_probe/cinc2017/auroc")
    assert [e.step for e in curve] == [0, 2, 3]  # step 0 (random init), every 2 steps, and the last step
    assert all(0.0 <= e.value <= 1.0 for e in curve)
    assert events.Scalars("online_probe/cost_fraction")[-1].value > 0
