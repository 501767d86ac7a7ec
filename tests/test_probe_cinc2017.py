"""CinC-2017 rhythm probe: the challenge F1, stratified subsets, the paired difference, errors, end-to-end run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA, needs_shared_data

from ecg_dino.cli import main as cli_main
from ecg_dino.probes import cinc2017
from ecg_dino.probes.calibration import softmax
from ecg_dino.probes.metrics import one_hot

CINC = SHARED_DATA / "cinc2017"
# Real records of each split (their own names, so the fixed split holds): 3 N, 2 A, 2 O and 1 ~ apiece.
SMALL = {
    "A00001": "N", "A00002": "N", "A00003": "N", "A00004": "A", "A00005": "A", "A00008": "O", "A00013": "O",
    "A00022": "~",
    "A04502": "N", "A04504": "N", "A04505": "N", "A04508": "A", "A04516": "A", "A04501": "O", "A04509": "O",
    "A04503": "~",
    "A05001": "N", "A05002": "N", "A05003": "N", "A05005": "A", "A05014": "A", "A05004": "O", "A05010": "O",
    "A05018": "~",
}  # fmt: skip


@pytest.fixture(scope="module")
def small_cinc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 real records copied from ``../shared/data/cinc2017`` with a matching ``REFERENCE.csv``."""
    root = tmp_path_factory.mktemp("cinc2017")
    for name in SMALL:
        for ext in ("hea", "mat"):
            shutil.copyfile(CINC / f"{name}.{ext}", root / f"{name}.{ext}")
    (root / "REFERENCE.csv").write_text("".join(f"{name},{label}\n" for name, label in SMALL.items()))
    return root


def test_challenge_f1_of_a_hand_made_confusion() -> None:
    """Rows true, columns predicted (N, A, O, ~): F1_N = 100/110, F1_A = 16/22, F1_O = 40/52; ~ not averaged."""
    cm = np.array([[50, 2, 3, 0], [1, 8, 1, 0], [4, 2, 20, 1], [0, 0, 1, 3]])
    assert cinc2017.challenge_f1(cm) == pytest.approx((100 / 110 + 16 / 22 + 40 / 52) / 3)
    assert cinc2017.challenge_f1(cm) == pytest.approx(344 / 429)


def test_stratified_subsets_keep_every_class() -> None:
    labels = np.repeat([0, 1, 2, 3], [300, 30, 100, 10])
    a = cinc2017.stratified_subset(labels, 0.01, seed=0)
    assert np.bincount(labels[a]).tolist() == [3, 1, 1, 1]
    assert np.array_equal(a, cinc2017.stratified_subset(labels, 0.01, seed=0))
    assert not np.array_equal(a, cinc2017.stratified_subset(labels, 0.01, seed=1))
    assert len(cinc2017.stratified_subset(labels, 1.0, seed=0)) == len(labels)


def test_paired_difference_is_zero_for_the_same_scores_and_positive_for_a_better_model() -> None:
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2, 3], [120, 40, 80, 20])
    noise = rng.normal(size=(len(y), 4))
    baseline, better = softmax(one_hot(y, 4) * 0.5 + noise), softmax(one_hot(y, 4) * 2.0 + noise)
    same = cinc2017.paired_differences(baseline, baseline, y, 200, seed=0)
    for d in same.values():
        assert d["difference"] == 0 and d["ci95"] == (0.0, 0.0) and d["share_not_positive"] == 1.0
    paired = cinc2017.paired_differences(better, baseline, y, 200, seed=0)
    a, b = (cinc2017.evaluate(p, y, 0, seed=0) for p in (better, baseline))
    for key, d in paired.items():
        assert d["difference"] == pytest.approx(a[key] - b[key]) and d["difference"] > 0
        assert d["ci95"][0] > 0 and d["share_not_positive"] == 0


def test_missing_folder_is_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = ["probe-cinc2017", "--ckpt", str(tmp_path / "x.safetensors"), "--cinc2017", str(tmp_path / "nope")]
    assert cli_main(argv) == 2
    assert "CinC-2017 folder not found" in capsys.readouterr().err


@needs_shared_data
def test_split_limits_each_part(small_cinc: Path) -> None:
    split = cinc2017.CinC2017Split.load(small_cinc, limit=2)
    names = ["A00001", "A00002", "A04501", "A04502", "A05001", "A05002"]
    assert [r.record_id for r in split.refs] == [f"cinc2017/{n}" for n in names]
    assert split.labels.tolist() == [0, 0, 2, 0, 0, 0] and split.indices("val").tolist() == [2, 3]


@needs_shared_data
def test_bad_checkpoint_is_exit_code_2(small_cinc: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint")
    argv = ["probe-cinc2017", "--ckpt", str(bad), "--cinc2017", str(small_cinc), "--cache-dir", ""]
    assert cli_main(argv) == 2
    assert "bad.safetensors: cannot be read as a safetensors file" in capsys.readouterr().err


@needs_shared_data
def test_end_to_end_probe_on_a_tiny_random_backbone(small_cinc: Path, tmp_path: Path, tiny_backbone_file: Path) -> None:
    out = tmp_path / "report"
    argv = ["probe-cinc2017", "--ckpt", str(tiny_backbone_file), "--cinc2017", str(small_cinc), "--out", str(out)]
    argv += ["--nstdb", str(SHARED_DATA / "nstdb"), "--n-boot", "20", "--cache-dir", str(tmp_path / "cache")]
    argv += ["--noise-types", "em"]
    assert cli_main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["probe"] == "cinc2017" and set(report["models"]) == {"model", "random_init"}
    model = report["models"]["model"]
    assert set(model["fractions"]) == {"0.01", "0.1", "1"}
    assert model["fractions"]["0.01"]["n_train"] == 4  # one record of each class
    full = model["fractions"]["1"]
    assert full["n_train"] == 8 and full["n_records"] == 8 and np.sum(full["confusion"]) == 8
    assert 0 <= full["challenge_f1"] <= 1 and 0 <= full["macro_auroc"] <= 1
    assert full["ci95"]["challenge_f1"][0] <= full["ci95"]["challenge_f1"][1]
    assert set(model["vs_random_init"]) == {"challenge_f1", "macro_auroc"}
    assert model["vs_random_init"]["macro_auroc"]["n_boot"] == 20
    assert len(model["robustness"]) == 1 + 6 and "em_0dB" in model["robustness"]  # em only, at 6 SNRs
    assert model["robustness"]["clean"]["macro_auroc"] == full["macro_auroc"]
    assert "robustness" in report["models"]["random_init"] and "vs_random_init" not in report["models"]["random_init"]
    assert report["data"]["records per class (train/val/test)"]["test"] == {"N": 3, "A": 2, "O": 2, "~": 1}
    assert "probe/cinc2017_challenge_f1" in report["scalars"] and "probe/cinc2017_auroc_noisy" in report["scalars"]
    for name in ("report.md", "cinc2017_auroc_vs_snr.png", "cinc2017_reliability.png"):
        assert (out / name).is_file()
    attentive = model["attentive"]  # --head both is the default
    assert attentive["n_train"] == 8 and attentive["n_records"] == 8 and 0 <= attentive["macro_auroc"] <= 1
    assert set(attentive["val_macro_auroc"]) == {"0.01", "0.1", "1"} and attentive["epochs"] >= 1
    assert set(attentive["vs_random_init"]) == {"challenge_f1", "macro_auroc"}
    assert "attentive" in report["models"]["random_init"]
    assert "probe/cinc2017_attentive_macro_auroc_minus_random_init" in report["scalars"]
    md = (out / "report.md").read_text()
    assert "sliding 4 s crops every 2 s" in md and "Linear heads, paired difference model − random init" in md
    assert "### Attentive head" in md and "Attentive heads, paired difference model − random init" in md
    assert any((out / "tensorboard").iterdir())

    only = tmp_path / "attentive_only"  # the patch tokens come from the cache the first run wrote
    argv = ["probe-cinc2017", "--ckpt", str(tiny_backbone_file), "--cinc2017", str(small_cinc), "--out", str(only)]
    argv += ["--head", "attentive", "--n-boot", "20", "--cache-dir", str(tmp_path / "cache")]
    assert cli_main(argv) == 0
    alone = json.loads((only / "report.json").read_text())["models"]["model"]
    assert set(alone) == {"attentive"} and alone["attentive"]["macro_auroc"] == attentive["macro_auroc"]
    assert "Linear head" not in (only / "report.md").read_text()

    cmp = tmp_path / "cmp"
    assert cli_main(["compare", "--out", str(cmp), "--cinc2017", f"tiny={out / 'report.json'}"]) == 0
    result = json.loads((cmp / "comparison.json").read_text())
    assert list(result["cinc2017"]) == ["random init", "tiny"]
    assert result["cinc2017"]["tiny"]["challenge_f1"]["value"] == full["challenge_f1"]
    assert set(result["checks"]["cinc2017_auroc_drop_clean_to_em_0dB"]) == {"random init", "tiny"}
    assert result["cinc2017"]["tiny"]["attentive"]["macro_auroc"]["value"] == attentive["macro_auroc"]
    assert "CinC 2017 macro AUROC lost from clean to em_0dB" in (cmp / "comparison.md").read_text()
    assert "attentive paired Δ" in (cmp / "comparison.md").read_text()
