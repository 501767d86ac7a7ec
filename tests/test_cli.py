"""The ``ecg-dino`` command line: the overview lists every command, each tool's ``--help`` shows its example, flags
parse into the typed options (shared groups included), a probe prints its headline table with too-small rows
marked, and a tiny fit prints neither Lightning's cloud tip nor LightningCLI's ``args`` warning."""

from __future__ import annotations

import importlib
import sys
import warnings
from pathlib import Path

import pytest
from conftest import REPO
from lightning.pytorch.cli import LightningCLI

from ecg_dino.cli import TOOLS, main
from ecg_dino.commands.arguments import parse
from ecg_dino.commands.export import ExportOptions
from ecg_dino.features.dataset import DatasetEmbedding
from ecg_dino.features.records import EmbedOptions
from ecg_dino.probes.headline import headline
from ecg_dino.probes.options import PTBXLProbeOptions


def test_help_lists_every_command_with_a_line_each(capsys: pytest.CaptureFixture) -> None:
    assert main(["--help"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for name in [*LightningCLI.subcommands(), *TOOLS]:
        line = next((ln for ln in lines if ln.split()[:1] == [name]), None)
        assert line is not None, f"{name} missing from ecg-dino --help"
        assert len(line.split()) > 2, f"{name} has no description"


@pytest.mark.parametrize("name", list(TOOLS))
def test_each_tool_help_exits_0_with_its_example(name: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    example = importlib.import_module(TOOLS[name]).EXAMPLE
    assert example.startswith(f"ecg-dino {name} ")
    assert f"example:\n  {example}" in out


def test_probe_flags_parse_into_typed_options() -> None:
    argv = ["--ckpt", "w.ckpt", "--ptbxl", "data/ptbxl", "--fractions", "0.1", "1", "--no-robustness"]
    argv += ["--cache-dir", "", "--noise-types", "em", "--which", "student", "--label-sets", "rhythm", "form"]
    opts = parse(PTBXLProbeOptions, argv, "ecg-dino probe-ptbxl", "example")
    assert opts.ckpt == Path("w.ckpt") and opts.ptbxl == Path("data/ptbxl") and opts.which == "student"
    assert opts.fractions == (0.1, 1.0) and opts.label_sets == ("rhythm", "form") and opts.noise_types == ("em",)
    assert opts.robustness is False and opts.random_init is True and opts.cache_dir is None
    assert opts.n_boot == 1000 and opts.records_folder == "records500"  # defaults from the dataclass


def test_shared_groups_parse_into_the_same_types() -> None:
    """``--ckpt``/``--which`` come from ``CheckpointOptions`` in export and embed; embed's ``EmbedOptions`` group
    is built from its own flags."""
    export = parse(ExportOptions, ["--ckpt", "a.ckpt", "--out", "x", "--which", "student"], "p", "example")
    assert export == ExportOptions(ckpt=Path("a.ckpt"), out=Path("x"), which="student")
    argv = ["--ckpt", "a.ckpt", "--data", "d", "--out", "o.parquet", "--crop-seconds", "4", "--patches"]
    job = parse(DatasetEmbedding, argv, "p", "example")
    assert job.options == EmbedOptions(crop_seconds=4.0, patches=True)
    assert (job.ckpt, job.which, job.beats) == (Path("a.ckpt"), "teacher", False)


def test_bad_values_are_usage_errors(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse(ExportOptions, ["--ckpt", "a", "--out", "x", "--which", "both"], "ecg-dino export", "example")
    assert exit_info.value.code == 2 and "invalid choice: 'both'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # PrepareOptions rejects the combination: a usage error
        main(["prepare", "--source", "mitdb", "--raw", ".", "--out", "o", "--folds", "1-8"])
    assert exit_info.value.code == 2 and "--folds applies to --source ptbxl only" in capsys.readouterr().err


def ci(value: float) -> list[float]:
    return [value - 0.05, value + 0.05]


def test_headline_marks_too_small_rows_and_prints_model_beside_random_init() -> None:
    def fractions(auroc: float) -> dict:
        return {
            "0.01": {"macro_auroc": 0.9, "ci95": ci(0.9), "n_train": 4, "n_labels": 5},
            "1": {"macro_auroc": auroc, "ci95": ci(auroc), "n_train": 353, "n_labels": 5},
        }

    report = {
        "probe": "ptbxl",
        "models": {
            "model": {"superdiagnostic": {"fractions": fractions(0.8)}},
            "random_init": {"superdiagnostic": {"fractions": fractions(0.7)}},
        },
    }
    lines = headline(report).splitlines()
    small = next(ln for ln in lines if ln.split()[:3] == ["superdiagnostic", "linear", "1%"])
    assert "too small: 4 training records for 5 labels" in small and "0.900" not in small
    full = next(ln for ln in lines if ln.split()[:3] == ["superdiagnostic", "linear", "100%"])
    assert "0.800 [0.750, 0.850]" in full and "0.700 [0.650, 0.750]" in full
    assert full.index("0.800") < full.index("0.700")  # model column before random init
    assert "model AUROC" in lines[1] and "random_init AUROC" in lines[1]


def test_headline_of_a_beat_probe_has_auroc_and_f1_with_cis() -> None:
    def test(auroc: float, f1: float) -> dict:
        return {"test": {"macro_auroc": auroc, "macro_f1": f1, "ci95": {"macro_auroc": ci(auroc), "macro_f1": ci(f1)}}}

    report = {"probe": "mitbih", "models": {"model": test(0.9, 0.5), "random_init": test(0.6, 0.3)}}
    text = headline(report)
    assert "0.900 [0.850, 0.950]" in text and "0.500 [0.450, 0.550]" in text and "too small" not in text
    assert "random_init F1" in text


def test_tiny_fit_prints_no_cloud_tip_and_no_args_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> None:
    argv = ["fit", "--config", str(REPO / "experiments" / "pretrain_debug_cpu.yaml"), "--trainer.max_steps=1"]
    argv += [f"--trainer.logger.init_args.save_dir={tmp_path}", "--trainer.enable_progress_bar=false"]
    argv += ["--data.init_args.batch_size=2", "--data.init_args.num_workers=0"]
    monkeypatch.setattr(sys, "argv", ["ecg-dino", *argv])  # args beside a command line: what the warning is about
    caplog.set_level("INFO")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(argv) == 0
    out = capsys.readouterr()
    text = out.out + out.err + caplog.text
    assert "GPU available" in text  # logged by the same rank-zero logger as the tip: the capture works
    assert "seamless cloud" not in text
    assert not [w for w in caught if "args parameter" in str(w.message)]
