"""``experiments/run_cpu_many.sh`` stays in step with the experiment it runs, and calls what it should."""

import re
import subprocess
from pathlib import Path

import yaml
from test_run_cpu_real import FAKE_ECG

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "experiments" / "run_cpu_many.sh"


def test_probe_crop_length_is_the_trained_global_crop() -> None:
    crop = float(re.search(r"^CROP_SECONDS=([\d.]+)", SCRIPT.read_text(), re.M).group(1))
    config = yaml.safe_load((ROOT / "experiments" / "pretrain_cpu_many.yaml").read_text())
    assert crop == config["data"]["init_args"]["multicrop"]["global_crop_seconds"]


def test_both_pretrainings_every_probe_the_comparison_and_the_curves(tmp_path: Path) -> None:
    """With a stand-in ``ecg-dino``: two fits (the no-noise one layered), three probes each, one compare with
    every report, one curves call with both runs; a rerun probes nothing."""
    (tmp_path / "experiments").mkdir()
    script = tmp_path / "experiments" / SCRIPT.name
    script.write_text(SCRIPT.read_text())
    fake = tmp_path / "ecg-dino"
    fake.write_text(FAKE_ECG)
    fake.chmod(0o755)
    for shards in ("cpu_real/mitdb_ds1", "cpu_many/cinc2017_trainval"):
        (tmp_path / "data_cache" / shards).mkdir(parents=True)
        (tmp_path / "data_cache" / shards / "manifest.json").write_text("{}")
    env = {"PATH": "/usr/bin:/bin", "ECG": str(fake)}
    subprocess.run(["bash", str(script)], cwd=tmp_path, env=env, check=True, capture_output=True)
    calls = (tmp_path / "calls.log").read_text().splitlines()
    fits = [c for c in calls if c.startswith("fit")]
    assert len(fits) == 2 and sum("pretrain_cpu_many_nonoise.yaml" in c for c in fits) == 1
    for probe in ("probe-cinc2017", "probe-mitbih", "probe-ptbxl"):
        assert len([c for c in calls if c.startswith(probe)]) == 2, probe
    assert all("--crop-seconds 8" in c for c in calls if c.startswith(("probe-cinc2017", "probe-ptbxl")))
    (compare,) = [c for c in calls if c.startswith("compare")]
    for label, name in {"with noise": "pretrain_cpu_many", "without noise": "pretrain_cpu_many_nonoise"}.items():
        for probe in ("cinc2017", "mitbih", "ptbxl"):
            assert f"{label}=runs/cpu_many_results/{name}/probe-{probe}/report.json" in compare
    (curves,) = [c for c in calls if c.startswith("curves")]
    assert "with noise=runs/pretrain_cpu_many/version_0" in curves
    subprocess.run(["bash", str(script)], cwd=tmp_path, env=env, check=True, capture_output=True)
    again = (tmp_path / "calls.log").read_text().splitlines()[len(calls) :]
    assert not [c for c in again if c.startswith("probe")]
