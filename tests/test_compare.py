"""``ecg-dino compare``: the table, the CI check and the noise drop from probe reports the test writes."""

import json
from pathlib import Path

import pytest

from ecg_dino.cli import main as cli_main
from ecg_dino.probes import compare


def mitbih_result(auroc: float, ci: list[float], clean: float, em0: float) -> dict:
    return {
        "test": {
            "macro_auroc": auroc,
            "macro_f1": 0.3,
            "j_kappa": 0.2,
            "ci95": {"macro_auroc": ci, "macro_f1": [0.2, 0.4], "j_kappa": [0.1, 0.3]},
            "per_class": {
                "N": {"auroc": auroc + 0.05, "auroc_ci95": [auroc, auroc + 0.1]},
                "F": {"auroc": None, "auroc_ci95": [float("nan"), float("nan")]},
            },
        },
        "robustness": {
            "clean": {"macro_auroc": clean},
            "em_0dB": {"macro_auroc": em0},
            "em_6dB": {"macro_auroc": (clean + em0) / 2},
        },
    }


def ptbxl_result(auroc: float, em0: float) -> dict:
    return {
        "all": {
            "fractions": {
                "0.1": {"macro_auroc": 0.5, "ci95": [0.4, 0.6]},
                "1": {"macro_auroc": auroc, "ci95": [0.6, 0.9]},
            },
            "robustness": {"em_0dB": {"macro_auroc": em0}, "em_12dB": {"macro_auroc": auroc - 0.01}},
        }
    }


def write(path: Path, report: dict) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report))
    return str(path)


@pytest.fixture
def reports(tmp_path: Path) -> dict[str, list[str]]:
    random_init = mitbih_result(0.63, [0.58, 0.75], 0.70, 0.55)
    rr = {
        "test": {
            "macro_auroc": 0.81,
            "macro_f1": 0.37,
            "j_kappa": 0.4,
            "ci95": {"macro_auroc": [0.72, 0.91]},
            "per_class": {"N": {"auroc": 0.9}, "F": {"auroc": 0.8}},
        }
    }
    noise = mitbih_result(0.85, [0.78, 0.90], 0.86, 0.80)
    noise["test"]["within_patient_macro_auroc"] = 0.7
    noise["test"]["ci95"]["within_patient_macro_auroc"] = [0.6, 0.8]
    noise["test"]["per_class"]["N"] |= {"within_patient_auroc": 0.75, "within_patient_auroc_ci95": [0.7, 0.8]}
    noise["test"]["per_class"]["F"] |= {"within_patient_auroc": None}
    noise["patient_share_of_variance"] = 0.6
    noise["test"]["vs_random_init"] = {"difference": 0.22, "ci95": [0.1, 0.3], "share_not_positive": 0.0, "n_boot": 9}
    nonoise = mitbih_result(0.76, [0.70, 0.81], 0.84, 0.70)
    mitbih = {
        name: write(
            tmp_path / name / "mitbih.json",
            {"probe": "mitbih", "models": {"model": res, "random_init": random_init, "rr_baseline": rr}},
        )
        for name, res in (("noise", noise), ("nonoise", nonoise))
    }
    ptbxl = {
        name: write(
            tmp_path / name / "ptbxl.json",
            {"probe": "ptbxl", "models": {"model": ptbxl_result(a, e), "random_init": ptbxl_result(0.70, 0.60)}},
        )
        for name, a, e in (("noise", 0.80, 0.78), ("nonoise", 0.79, 0.70))
    }
    return {
        "mitbih": [f"with noise={mitbih['noise']}", f"without noise={mitbih['nonoise']}"],
        "ptbxl": [f"with noise={ptbxl['noise']}", f"without noise={ptbxl['nonoise']}"],
    }


def test_compare_writes_table_checks_and_plots(reports: dict[str, list[str]], tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    assert cli_main(["compare", "--out", str(out), "--mitbih", *reports["mitbih"], "--ptbxl", *reports["ptbxl"]]) == 0
    result = json.loads((out / "comparison.json").read_text())
    checks = result["checks"]["mitbih_beats_random_init"]
    assert checks["with noise"]["cis_do_not_overlap"] is True  # 0.78 > 0.75
    assert checks["without noise"]["cis_do_not_overlap"] is False  # 0.70 < 0.75
    drops = result["checks"]["mitbih_auroc_drop_clean_to_em_0dB"]
    assert drops == pytest.approx({"random init": 0.15, "with noise": 0.06, "without noise": 0.14})
    assert result["checks"]["ptbxl_auroc_drop_clean_to_em_0dB"] == pytest.approx(
        {"random init": 0.10, "with noise": 0.02, "without noise": 0.09}
    )
    assert list(result["mitbih"]) == ["random init", "with noise", "without noise", "RR intervals"]
    md = (out / "comparison.md").read_text()
    assert "| with noise | 0.850 [0.780, 0.900]" in md
    assert "CIs apart: **yes**" in md and "CIs apart: **no**" in md
    # per class: noise N [0.85, 0.95] is above random N [0.63, 0.73]; nonoise N [0.76, 0.86] too; F has no CI
    assert checks["with noise"]["classes_with_cis_apart"] == ["N"]
    assert checks["with noise"]["paired_difference"]["ci95"] == [0.1, 0.3]
    assert checks["without noise"]["paired_difference"] is None
    assert "(an added figure, not the check): 0.220 [0.100, 0.300]" in md
    assert "| with noise | 0.900 [0.850, 0.950] | – |" in md and "| RR intervals | 0.900 | 0.800 |" in md
    assert "| with noise | 0.700 [0.600, 0.800] | 0.750 [0.700, 0.800] | – | 0.600 |" in md  # within-patient
    within_table = md.split("Within-patient AUROC")[1].split("##")[0]
    assert "| without noise |" not in within_table and "| random init |" not in within_table  # reports lack it
    for png in ("mitbih_auroc_vs_snr.png", "ptbxl_auroc_vs_snr.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"


def test_random_init_twins_must_agree(reports: dict[str, list[str]], tmp_path: Path) -> None:
    path = Path(reports["mitbih"][1].partition("=")[2])
    report = json.loads(path.read_text())
    report["models"]["random_init"]["test"]["macro_auroc"] = 0.5
    path.write_text(json.dumps(report))
    with pytest.raises(ValueError, match="'random_init' results of 'with noise' and 'without noise' differ"):
        compare.build(compare.named_reports(reports["mitbih"], "mitbih"), {})


def test_wrong_report_kind_is_a_clear_error(reports: dict[str, list[str]], tmp_path: Path, capsys) -> None:
    assert cli_main(["compare", "--out", str(tmp_path / "x"), "--mitbih", reports["ptbxl"][0]]) == 2
    assert "a 'ptbxl' report, expected 'mitbih'" in capsys.readouterr().err
