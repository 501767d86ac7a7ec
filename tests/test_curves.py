"""``ecg-dino curves``: online-probe scalars of real TensorBoard event files -> table, JSON and PNG."""

import json
from pathlib import Path

from torch.utils.tensorboard import SummaryWriter

from ecg_dino.commands.curves import main


def write_run(folder: Path, values: list[float]) -> None:
    writer = SummaryWriter(str(folder))
    for step, value in zip((0, 250, 500), values):
        writer.add_scalar("online_probe/cinc2017/auroc", value, step)
        writer.add_scalar("online_probe/cost_fraction", 0.02, step)
        writer.add_scalar("train/loss", 9.0, step)
    writer.close()


def test_curves_of_two_runs(tmp_path: Path):
    write_run(tmp_path / "a", [0.70, 0.75, 0.80])
    write_run(tmp_path / "b", [0.70, 0.68, 0.66])
    assert main([f"noise={tmp_path / 'a'}", f"plain={tmp_path / 'b'}", "--out", str(tmp_path / "out")]) == 0
    curves = json.loads((tmp_path / "out" / "online_probe_curves.json").read_text())
    assert list(curves["noise"]["cinc2017"]) == ["0", "250", "500"]  # JSON keys: the steps
    assert [round(v, 4) for v in curves["plain"]["cinc2017"].values()] == [0.70, 0.68, 0.66]
    table = (tmp_path / "out" / "online_probe_curves.md").read_text()
    assert "| noise | 0.700 | 0.750 | 0.800 |" in table and "| plain | 0.700 | 0.680 | 0.660 |" in table
    assert (tmp_path / "out" / "online_probe_curves.png").stat().st_size > 10_000
    minutes = curves["noise"]["minutes"]  # wall time since the run's first event, at each online-probe step
    assert list(minutes) == ["0", "250", "500"] and 0 <= minutes["0"] <= minutes["500"] < 1
    assert "## minutes" in table
    assert main([f"noise={tmp_path / 'a'}", "--out", str(tmp_path / "wall"), "--x", "minutes"]) == 0
    assert (tmp_path / "wall" / "online_probe_curves.png").stat().st_size > 10_000


def test_a_run_without_online_probe_is_an_error(tmp_path: Path, capsys):
    writer = SummaryWriter(str(tmp_path / "run"))
    writer.add_scalar("train/loss", 9.0, 0)
    writer.close()
    assert main([f"x={tmp_path / 'run'}", "--out", str(tmp_path / "out")]) == 2
    assert "no online_probe/<set>/auroc scalars" in capsys.readouterr().err


def test_curves_at_equal_benchmarked_cost(tmp_path: Path, capsys):
    """``--x step-time``: each run's steps times its benchmarked ms/step, so a run twice as fast per step meets
    the other at twice the step; every run needs its figure."""
    write_run(tmp_path / "fast", [0.70, 0.75, 0.80])
    write_run(tmp_path / "slow", [0.70, 0.72, 0.74])
    runs = [f"fast={tmp_path / 'fast'}", f"slow={tmp_path / 'slow'}", "--out", str(tmp_path / "out")]
    assert main([*runs, "--x", "step-time", "--step-ms", "fast=850", "slow=1700"]) == 0
    curves = json.loads((tmp_path / "out" / "online_probe_curves.json").read_text())
    assert curves["fast"]["step_minutes"]["500"] == curves["slow"]["step_minutes"]["250"] == 500 * 850 / 60_000
    assert "## step_minutes" in (tmp_path / "out" / "online_probe_curves.md").read_text()
    assert main([*runs, "--x", "step-time", "--step-ms", "fast=850"]) == 2
    assert "needs --step-ms NAME=MS for every run" in capsys.readouterr().err
