"""MIT-BIH beat probe: AAMI beat counts against de Chazal's table, beat windows, RR baseline, errors, e2e."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from datamodules.record import BadRecordError, ECGRecord
from ecg_dino.commands import probe_mitbih
from ecg_dino.features import beats as beat_features
from ecg_dino.probes import mitbih
from ecg_dino.probes.calibration import softmax
from ecg_dino.probes.embedding import feature_part
from ecg_dino.probes.metrics import one_hot
from ecg_dino.probes.rr_baseline import record_rr_features
from ecg_dino.splits import MITDB_DS1, MITDB_DS2

REPO = Path(__file__).resolve().parents[1]
MITDB = REPO.parent / "shared" / "data" / "mitdb"
needs_mitdb = pytest.mark.skipif(not MITDB.is_dir(), reason=f"MIT-BIH Arrhythmia Database not present at {MITDB}")


@needs_mitdb
def test_beat_counts_equal_de_chazal() -> None:
    """Every annotated beat, first and last included, mapped to AAMI classes gives the published counts:
    DS1 N 45866, S 944, V 3788, F 415, Q 8 and DS2 N 44259, S 1837, V 3221, F 388, Q 7 (de Chazal, O'Dwyer
    & Reilly 2004, IEEE TBME 51(7), Table I; the same figures in Llamedo & Martínez 2011, IEEE TBME 58(3))."""
    for names, expected in ((MITDB_DS1, mitbih.DS1_COUNTS), (MITDB_DS2, mitbih.DS2_COUNTS)):
        beats = beat_features.beat_table(mitbih.read_records(MITDB, names))
        assert beats.counts() == expected


def test_aami_mapping_ignores_non_beat_symbols() -> None:
    ann = {"sample": [10, 20, 30, 40, 50, 60, 70], "symbol": ["N", "+", "A", "!", "V", "~", "f"]}
    rec = ECGRecord(np.zeros((1, 100)), 360.0, ("MLII",), "r", "p", "t", annotations=ann)
    samples, labels = beat_features.annotated_beats(rec)
    assert samples.tolist() == [10, 30, 50, 70] and labels.tolist() == [0, 1, 2, 4]


def test_beat_windows_centre_r_and_stay_inside_the_record() -> None:
    patch, window = 50, 7 * 50
    starts, centre = beat_features.beat_window_starts(np.array([10, 1000, 1990]), 2000, window, patch)
    assert starts.tolist() == [0, 1000 - 3 * patch - 25, 2000 - window]
    assert centre[1] == 3 and (1000 - starts[1]) % patch == 25  # R mid centre patch
    assert centre.tolist() == [1, 3, 5]  # near the ends R sits in patch 0 / 6, clamped so R patch ± 1 fits


def test_rr_features_of_a_regular_rhythm() -> None:
    feats = record_rr_features(np.arange(30) * 0.8)
    np.testing.assert_allclose(feats[:, :4], 0.8)
    np.testing.assert_allclose(feats[:, 4:], 1.0)
    premature = np.r_[np.arange(10) * 0.8, 7.6, np.arange(11, 20) * 0.8]  # beat 10 early by 0.4 s
    f = record_rr_features(premature)
    assert f[10, 0] == pytest.approx(0.4) and f[10, 1] == pytest.approx(1.2)


def test_record_without_annotations_is_an_error_naming_the_file(tmp_path: Path) -> None:
    for ext in ("hea", "dat"):
        (tmp_path / f"100.{ext}").write_bytes(b"")
    with pytest.raises(BadRecordError, match=r"100\.atr"):
        mitbih.read_records(tmp_path, ("100",))


def test_validation_patients_hold_every_class() -> None:
    labels = {"a": [0, 1, 2, 3], "b": [0, 0, 1], "c": [0, 2, 3], "d": [0, 1, 2, 3], "e": [0]}
    beats = beat_features.Beats(
        record_id=np.array([r for r, ls in labels.items() for _ in ls], dtype=object),
        patient_id=np.array([r for r, ls in labels.items() for _ in ls], dtype=object),
        sample=np.zeros(sum(map(len, labels.values())), dtype=np.int64),
        label=np.array([lab for ls in labels.values() for lab in ls]),
    )
    val = mitbih.validation_records(beats, 2, seed=0)
    in_val = np.isin(beats.record_id, val)
    assert len(val) == 2 and {0, 1, 2, 3} <= set(beats.label[in_val]) and {0, 1, 2, 3} <= set(beats.label[~in_val])


@needs_mitdb
@pytest.mark.slow
def test_end_to_end_probe_on_a_tiny_random_backbone(tmp_path: Path, tiny_backbone_file: Path) -> None:
    out = tmp_path / "report"
    argv = [
        "--ckpt",
        str(tiny_backbone_file),
        "--mitdb",
        str(MITDB),
        "--out",
        str(out),
        "--ds1",
        "208",
        "223",
        "124",
        "118",
        "--ds2",
        "100",
        "213",
        "--val-records",
        "1",
        "--n-boot",
        "50",
        "--robust-per-class",
        "20",
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    assert probe_mitbih.main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report["models"]) == {"model", "random_init", "rr_baseline"}
    test = report["models"]["model"]["test"]
    assert test["n_beats"] == sum(report["data"]["test beats"].values())
    assert np.array(test["confusion"]).sum() == test["n_beats"]
    lo, hi = test["ci95"]["macro_auroc"]
    assert lo <= hi
    assert len(report["models"]["model"]["robustness"]) == 1 + 18
    assert set(report["models"]["model"]["nstdb_records"]) == {
        "clean",
        "em_24dB",
        "em_18dB",
        "em_12dB",
        "em_6dB",
        "em_0dB",
        "em_-6dB",
    }
    assert "robustness" not in report["models"]["rr_baseline"]
    for name in ("report.md", "mitbih_auroc_vs_snr.png", "mitbih_reliability.png"):
        assert (out / name).is_file()
    assert "DS1 patients" in (out / "report.md").read_text()
    within = test["per_class"]["V"]["within_patient_auroc"]  # 213 holds hundreds of V beats and of the rest
    assert 0 <= within <= 1 and test["within_patient_macro_auroc"] is not None
    assert test["per_class"]["Q"]["within_patient_auroc"] is None  # no DS2 patient here has 10 Q beats
    assert 0 < report["models"]["model"]["patient_share_of_variance"] < 1
    assert "within-patient auroc V" in (out / "report.md").read_text()
    assert report["settings"]["paradigm"] == "inter-patient"
    assert report["settings"]["beat normalisation"].startswith("each beat minus its record's median")

    # Intra-patient on the two DS2 records: reuses their cached embeddings; half of each record's beats test.
    intra = tmp_path / "intra"
    common = ["--ckpt", str(tiny_backbone_file), "--mitdb", str(MITDB), "--cache-dir", str(tmp_path / "cache")]
    argv = [*common, "--out", str(intra), "--ds2", "100", "213", "--paradigm", "intra", "--no-robustness"]
    argv += ["--beat-norm", "none"]
    assert probe_mitbih.main([*argv, "--n-boot", "20"]) == 0
    report = json.loads((intra / "report.json").read_text())
    assert report["settings"]["paradigm"] == "intra-patient"
    assert report["settings"]["beat normalisation"] == "none (raw features)"
    n_test = sum(report["data"]["test beats"].values())
    assert n_test == report["models"]["model"]["test"]["n_beats"]
    assert abs(n_test - sum(report["data"]["training beats"].values())) <= 2  # one per record at most
    assert report["settings"]["beat embedding time"]["model"] == "cached"


@needs_mitdb
def test_intra_patient_split_trains_on_each_records_first_half() -> None:
    records = mitbih.read_records(MITDB, ("100", "213"))
    split = mitbih.intra_patient_split(records, val_fraction=0.2)
    assert not np.any(split.val & ~split.train)
    for record in records:
        mine = split.beats.record_id == record.record_id
        train, val, test = (split.beats.sample[mine & m] for m in (split.train, split.val, ~split.train))
        assert train.max() < test.min() and val.min() == np.sort(train)[-len(val)]  # in time: train, then test
        assert abs(len(train) - len(test)) <= 1 and len(val) == round(0.2 * len(train))


@needs_mitdb
def test_noisy_beat_features_stay_on_the_beats(tiny_backbone_file: Path) -> None:
    """A test-time condition resamples the record to the model's rate; the R peaks must move with it, so a
    barely-noisy (80 dB) record gives the clean features (regression: windows landed 1.44x off the beats)."""
    from ecg_dino.features.backbone import BackboneSpec
    from ecg_dino.features.cache import EmbeddingCache
    from ecg_dino.probes.embedding import beat_featurizer
    from ecg_dino.probes.robustness import Condition

    records = mitbih.read_records(MITDB, ("100",))
    beats = beat_features.beat_table(records)
    beats = beats.take(np.arange(0, len(beats), 97))  # ~23 beats spread over the record
    spec = BackboneSpec(tiny_backbone_file)
    feats = beat_featurizer(
        spec,
        spec.load,
        beat_features.BeatOptions(),
        EmbeddingCache(None),
        REPO.parent / "shared" / "data" / "nstdb",
        0,
        {},
    )
    clean = feats(records, beats, None)
    noisy = feats(records, beats, Condition("em_80dB", noise_type="em", snr_db=80.0))
    assert np.corrcoef(clean.ravel(), noisy.ravel())[0, 1] > 0.999


def test_paired_difference_cancels_the_shared_patient_spread() -> None:
    """Same scores: difference exactly 0 in every resample. A model that separates the classes better than
    its baseline on every patient: a CI wholly above 0, narrower than the two separate CIs put together."""
    rng = np.random.default_rng(0)
    y = np.tile(np.arange(5), 60)  # 300 beats, every class in each of 12 patients
    groups = np.repeat(np.arange(12), 25)
    noise = rng.normal(size=(len(y), 5))
    baseline = softmax(one_hot(y, 5) * 0.5 + noise)
    better = softmax(one_hot(y, 5) * 1.5 + noise)
    same = mitbih.paired_auroc_difference(baseline, baseline, y, groups, 200, seed=0)
    assert same["difference"] == 0 and same["ci95"] == (0.0, 0.0) and same["share_not_positive"] == 1.0
    paired = mitbih.paired_auroc_difference(better, baseline, y, groups, 200, seed=0)
    a, b = (mitbih.evaluate_multiclass(p, y, groups, 200, seed=0) for p in (better, baseline))
    assert paired["difference"] == pytest.approx(a["macro_auroc"] - b["macro_auroc"])
    assert paired["ci95"][0] > 0 and paired["share_not_positive"] == 0
    width = paired["ci95"][1] - paired["ci95"][0]
    separate = (a["ci95"]["macro_auroc"][1] - a["ci95"]["macro_auroc"][0]) + (
        b["ci95"]["macro_auroc"][1] - b["ci95"]["macro_auroc"][0]
    )
    assert width < separate
    for c in beat_features.AAMI_CLASSES:
        lo, hi = a["per_class"][c]["auroc_ci95"]
        assert lo <= a["per_class"][c]["auroc"] <= hi
        gain = a["per_class"][c]["auroc"] - b["per_class"][c]["auroc"]
        assert paired["per_class"][c]["difference"] == pytest.approx(gain)
    nsvf = np.mean([paired["per_class"][c]["difference"] for c in "NSVF"])
    assert paired["macro_nsvf"]["difference"] == pytest.approx(nsvf)
    # A gain in Q alone moves the macro by a fifth of it and leaves N, S, V, F (and their macro) exactly as they were.
    only_q = baseline.copy()
    only_q[:, 4] = better[:, 4]
    q = mitbih.paired_auroc_difference(only_q, baseline, y, groups, 200, seed=0)
    assert q["difference"] == pytest.approx(q["per_class"]["Q"]["difference"] / 5) and q["difference"] > 0
    assert q["macro_nsvf"]["difference"] == 0 and q["macro_nsvf"]["ci95"] == (0.0, 0.0)


def test_feature_parts_split_the_class_token_from_the_patch_tokens() -> None:
    dim = 3
    x = np.arange(2 * 4 * dim, dtype=np.float32).reshape(2, 4 * dim)
    np.testing.assert_array_equal(beat_features.feature_columns(x, "cls"), x[:, :dim])
    np.testing.assert_array_equal(beat_features.feature_columns(x, "patches"), x[:, dim:])
    assert beat_features.feature_columns(x, "all") is x
    with pytest.raises(ValueError, match="unknown feature part 'mean'"):
        beat_features.feature_columns(x, "mean")
    patches = feature_part(lambda records, beats, condition: x, "patches")
    np.testing.assert_array_equal(patches([], None, None), x[:, dim:])


def _records_with_beats(n_beats: dict[str, int], symbol: str = "N") -> list[ECGRecord]:
    """Records whose beats are annotated every 100 samples (one V in every ten)."""
    out = []
    for name, n in n_beats.items():
        symbols = ["V" if i % 10 == 3 else symbol for i in range(n)]
        ann = {"sample": (np.arange(n) * 100 + 50).tolist(), "symbol": symbols}
        out.append(ECGRecord(np.zeros((1, n * 100 + 100)), 360.0, ("MLII",), name, name, "t", annotations=ann))
    return out


def _position_features(records: list[ECGRecord], beats: beat_features.Beats, condition: None) -> np.ndarray:
    """A stand-in for beat embeddings: the record's offset, then the beat's position, in ``beats`` order."""
    offset = {r.record_id: 10.0 * (i + 1) for i, r in enumerate(records)}
    return np.stack([[offset[r] for r in beats.record_id], beats.sample / 100.0], axis=1)


def test_record_centring_subtracts_each_records_median_beat_without_labels() -> None:
    """Each record's usual beat (median of evenly spaced reference beats) is subtracted; a class-stratified
    subsample gets the same reference as the whole record, and the labels change nothing."""
    from ecg_dino.probes.embedding import record_centred, reference_table

    records = _records_with_beats({"a": 41, "b": 500})
    reference = reference_table(records, 128)
    assert (reference.record_id == "a").sum() == 41 and (reference.record_id == "b").sum() == 128
    b_positions = np.sort(reference.sample[reference.record_id == "b"])
    assert b_positions[0] == 50 and b_positions[-1] == 499 * 100 + 50  # first to last beat, evenly spaced
    assert np.ptp(np.diff(b_positions)) <= 100

    centred = record_centred(_position_features, 128)
    beats = beat_features.beat_table(records)
    x = centred(records, beats, None)
    in_a = beats.record_id == "a"
    np.testing.assert_allclose(x[:, 0], 0.0)  # the record offset is gone
    np.testing.assert_allclose(x[in_a, 1], beats.sample[in_a] / 100 - 20.5)  # minus record a's median position
    sub = mitbih.stratified_subsample(beats.label, 5, seed=0)
    np.testing.assert_allclose(centred(records, beats.take(sub), None), x[sub])
    relabelled = _records_with_beats({"a": 41, "b": 500}, symbol="A")
    np.testing.assert_allclose(centred(relabelled, beat_features.beat_table(relabelled), None), x)


def test_record_centring_embeds_the_reference_beats_only_when_they_are_not_given() -> None:
    from ecg_dino.probes.embedding import record_centred

    calls: list[int] = []

    def counting(records: list[ECGRecord], beats: beat_features.Beats, condition: None) -> np.ndarray:
        calls.append(len(beats))
        return _position_features(records, beats, condition)

    records = _records_with_beats({"a": 41, "b": 500})
    beats = beat_features.beat_table(records)
    record_centred(counting, 128)(records, beats, None)
    assert calls == [541]  # the reference beats are among the record's beats
    record_centred(counting, 128)(records, beats.take(np.arange(0, 541, 7)), None)
    assert calls[1:] == [78, 41 + 128]  # a subsample: the reference is embedded under the same condition
