"""PTB-XL probe: label sets from scp_statements.csv, splits, robustness conditions, errors, end-to-end run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from datamodules.record import ECGRecord
from ecg_dino.commands import probe_ptbxl
from ecg_dino.probes import ptbxl
from ecg_dino.probes.robustness import apply_condition, lead_conditions, noise_conditions

REPO = Path(__file__).resolve().parents[1]
PTBXL = REPO.parent / "shared" / "data" / "ptbxl"
NSTDB = REPO.parent / "shared" / "data" / "nstdb"
needs_ptbxl = pytest.mark.skipif(not PTBXL.is_dir(), reason=f"PTB-XL sample not present at {PTBXL}")
needs_nstdb = pytest.mark.skipif(not NSTDB.is_dir(), reason=f"NSTDB not present at {NSTDB}")


@needs_ptbxl
def test_label_set_sizes_follow_the_full_scp_statements_table() -> None:
    statements = ptbxl.read_statements(PTBXL)
    sizes = {s: len(ptbxl.label_vocabulary(statements, s)) for s in ptbxl.LABEL_SETS}
    assert sizes == {"all": 71, "diagnostic": 44, "subdiagnostic": 23, "superdiagnostic": 5, "form": 19, "rhythm": 12}
    assert ptbxl.label_vocabulary(statements, "superdiagnostic") == ["CD", "HYP", "MI", "NORM", "STTC"]


@needs_ptbxl
def test_statements_count_whatever_their_likelihood_and_aggregate_to_classes() -> None:
    statements = ptbxl.read_statements(PTBXL)
    codes = [{"NORM": 100.0, "LVOLT": 0.0, "SR": 0.0}, {"IMI": 50.0, "ASMI": 15.0, "SR": 0.0}]
    y, vocab = ptbxl.label_matrix(codes, statements, "rhythm")
    assert vocab.index("SR") >= 0 and y[:, vocab.index("SR")].tolist() == [1, 1]  # likelihood 0 still counts
    y, vocab = ptbxl.label_matrix(codes, statements, "superdiagnostic")
    assert dict(zip(vocab, y[1])) == {"CD": 0, "HYP": 0, "MI": 1, "NORM": 0, "STTC": 0}
    y, vocab = ptbxl.label_matrix(codes, statements, "subdiagnostic")
    assert [v for v, on in zip(vocab, y[1]) if on] == ["AMI", "IMI"]
    y, _ = ptbxl.label_matrix(codes, statements, "form")
    assert y[0].sum() == 1  # LVOLT


def test_training_subsets_are_seeded_by_record() -> None:
    a = ptbxl.training_subset(400, 0.1, seed=0)
    assert len(a) == 40 and np.array_equal(a, ptbxl.training_subset(400, 0.1, seed=0))
    assert not np.array_equal(a, ptbxl.training_subset(400, 0.1, seed=1))
    assert len(ptbxl.training_subset(50, 0.01, seed=0)) == 1


def test_folder_without_database_table_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "scp_statements.csv").write_text("code,diagnostic\n")
    with pytest.raises(FileNotFoundError, match=r"ptbxl_database\.csv"):
        ptbxl.PTBXLSplit.load(tmp_path)


def test_lead_subsets_reach_the_model_as_fewer_leads() -> None:
    rec = ECGRecord(np.random.default_rng(0).normal(size=(12, 5000)), 500.0, ptbxl_leads(), "r", "p", "t")
    by_name = {c.name: c for c in lead_conditions()}
    sub = apply_condition(rec, by_name["leads_2"], 250.0, np.random.default_rng(0), NSTDB)
    assert sub.leads == ("II", "V1") and sub.signal.shape == (2, 2500) and sub.sample_rate_hz == 250.0


@needs_nstdb
def test_noise_conditions_add_noise_at_the_requested_snr() -> None:
    t = np.arange(2500) / 250
    clean = np.stack([np.sin(2 * np.pi * 1.1 * t), np.cos(2 * np.pi * 0.9 * t)]).astype(np.float32)
    rec = ECGRecord(clean, 250.0, ("II", "V1"), "r", "p", "t")
    em6 = next(c for c in noise_conditions() if c.name == "em_6dB")
    noisy = apply_condition(rec, em6, 250.0, np.random.default_rng(0), NSTDB).signal
    noise = noisy - clean
    snr = 10 * np.log10(clean.var(1) / noise.var(1))
    np.testing.assert_allclose(snr, 6.0, atol=0.01)


def ptbxl_leads() -> tuple[str, ...]:
    return ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")


@needs_ptbxl
@pytest.mark.slow
def test_end_to_end_probe_on_a_tiny_random_backbone(tmp_path: Path, tiny_backbone_file: Path) -> None:
    out = tmp_path / "report"
    argv = [
        "--ckpt",
        str(tiny_backbone_file),
        "--ptbxl",
        str(PTBXL),
        "--out",
        str(out),
        "--limit",
        "100",
        "--label-sets",
        "superdiagnostic",
        "rhythm",
        "--fractions",
        "0.1",
        "1",
        "--n-boot",
        "50",
        "--records-folder",
        "records100",
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    assert probe_ptbxl.main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    res = report["models"]["model"]["superdiagnostic"]
    assert set(report["models"]) == {"model", "random_init"}
    assert set(res["fractions"]) == {"0.1", "1"} and res["n_labels"] == 5
    full = res["fractions"]["1"]
    assert full["n_labels_excluded"] >= 0 and 0 <= full["macro_auroc"] <= 1
    assert len(res["robustness"]) == 18 + 5
    assert res["robustness"]["leads_12"]["macro_auroc"] == pytest.approx(full["macro_auroc"], abs=1e-6)
    for name in ("report.md", "ptbxl_auroc_vs_snr.png", "ptbxl_auroc_vs_leads.png", "ptbxl_reliability.png"):
        assert (out / name).is_file()
    assert "probe/ptbxl_superdiagnostic_auroc" in report["scalars"]
    assert any((out / "tensorboard").iterdir())
    attentive = res["attentive"]  # --head both is the default: the attentive head on every label set
    assert attentive["n_train"] == full["n_train"] and 0 <= attentive["macro_auroc"] <= 1
    assert set(attentive["val_macro_auroc"]) == {"0.01", "0.1", "1"}
    for paired in (res["vs_random_init"], attentive["vs_random_init"]):  # each head beside its random-init twin
        assert paired["n_boot"] == 50 and paired["ci95"][0] <= paired["difference"] <= paired["ci95"][1]
    assert "attentive" in report["models"]["random_init"]["rhythm"]
    assert "probe/ptbxl_rhythm_attentive_auroc_minus_random_init" in report["scalars"]
    md = (out / "report.md").read_text()
    assert "Linear vs attentive head" in md and "| superdiagnostic | attentive |" in md
