"""``experiments/run_cpu_real.sh`` stays in step with the experiment it runs."""

import re
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "experiments" / "run_cpu_real.sh"


def test_script_parses() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_probe_crop_length_is_the_trained_global_crop() -> None:
    """The PTB-XL probe embeds crops as long as the global crops the model was trained on."""
    crop = float(re.search(r"^CROP_SECONDS=([\d.]+)", SCRIPT.read_text(), re.M).group(1))
    config = yaml.safe_load((ROOT / "experiments" / "pretrain_cpu_real.yaml").read_text())
    assert crop == config["data"]["init_args"]["multicrop"]["global_crop_seconds"]


def test_script_runs_both_experiments() -> None:
    text = SCRIPT.read_text()
    for name in ("pretrain_cpu_real", "pretrain_cpu_real_nonoise"):
        assert (ROOT / "experiments" / f"{name}.yaml").is_file()
        assert f"[{name}]=" in text


def test_probe_steps_names_a_missing_checkpoint(tmp_path) -> None:
    script = SCRIPT.parent / "probe_steps.sh"
    proc = subprocess.run(["bash", str(script), str(tmp_path), "300"], capture_output=True, text=True)
    assert proc.returncode == 1
    assert f"no checkpoint of step 300 in {tmp_path}/checkpoints" in proc.stderr
