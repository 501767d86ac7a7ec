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


FAKE_ECG = """#!/usr/bin/env bash
# Stands in for ecg-dino: logs each call; `fit` leaves the named run's last.ckpt behind (once: Lightning does not
# rewrite a finished run's), a probe its report.json.
echo "$*" >> calls.log
for arg in "$@"; do [[ $arg == --trainer.logger.init_args.name=* ]] && name=${arg#*=}; done
ckpts="runs/$name/version_0/checkpoints"
if [[ $1 == fit && ! -f $ckpts/last.ckpt ]]; then mkdir -p "$ckpts" && touch "$ckpts/last.ckpt"; fi
for arg in "$@"; do [[ $prev == --out ]] && mkdir -p "$arg" && touch "$arg/report.json"; prev=$arg; done
"""


def test_seeds_give_each_pretraining_its_own_run_and_table_row(tmp_path: Path) -> None:
    """``SEEDS="0 1"``: four pretrainings, seed 0 under the plain names, seed 1 under ``_seed1``, each probed and
    compared under its own label; a rerun keeps reports newer than their checkpoints unless ``REPROBE=1``. Runs
    a copy of the script in a scratch folder with a stand-in ``ecg-dino``."""
    (tmp_path / "experiments").mkdir()
    script = tmp_path / "experiments" / SCRIPT.name
    script.write_text(SCRIPT.read_text())
    fake = tmp_path / "ecg-dino"
    fake.write_text(FAKE_ECG)
    fake.chmod(0o755)
    (tmp_path / "data_cache" / "cpu_real" / "mitdb_ds1").mkdir(parents=True)
    (tmp_path / "data_cache" / "cpu_real" / "mitdb_ds1" / "manifest.json").write_text("{}")
    env = {"PATH": "/usr/bin:/bin", "ECG": str(fake), "SEEDS": "0 1", "SIDE_BY_SIDE": "0"}
    subprocess.run(["bash", str(script)], cwd=tmp_path, env=env, check=True, capture_output=True)
    calls = (tmp_path / "calls.log").read_text().splitlines()
    fits = [c for c in calls if c.startswith("fit")]
    runs = {"pretrain_cpu_real_nonoise": "0", "pretrain_cpu_real": "0"}
    runs |= {"pretrain_cpu_real_nonoise_seed1": "1", "pretrain_cpu_real_seed1": "1"}
    assert len(fits) == 4
    for name, seed in runs.items():
        (fit,) = [c for c in fits if f"init_args.name={name} " in c]
        assert f"--seed_everything {seed}" in fit
        assert ("pretrain_cpu_real_nonoise.yaml" in fit) == ("nonoise" in name)
    intra = [c for c in calls if "--paradigm intra" in c]
    assert len(intra) == 4 and all("--out runs/cpu_real_results/pretrain_cpu_real" in c for c in intra)
    (compare,) = [c for c in calls if c.startswith("compare")]
    subprocess.run(["bash", str(script)], cwd=tmp_path, env=env, check=True, capture_output=True)
    again = (tmp_path / "calls.log").read_text().splitlines()[len(calls) :]
    assert not [c for c in again if c.startswith("probe")]  # reports newer than their checkpoints are kept
    subprocess.run(["bash", str(script)], cwd=tmp_path, env=env | {"REPROBE": "1"}, check=True, capture_output=True)
    assert len([c for c in (tmp_path / "calls.log").read_text().splitlines() if c.startswith("probe")]) == 2 * 12
    labels = {"with noise, seed 1": "pretrain_cpu_real_seed1", "without noise": "pretrain_cpu_real_nonoise"}
    for label, name in labels.items():
        assert f"{label}=runs/cpu_real_results/{name}/probe-mitbih/report.json" in compare
