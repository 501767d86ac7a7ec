"""Every experiment YAML parses through ``ecg-dino fit --print_config``, layered on its parents (a ``# parent:``
header line names each), and the printed config holds every value the files set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ecg_dino.cli import main as cli_main

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = [
    *sorted((REPO / "experiments").glob("*.yaml")),
    *sorted((REPO / "experiments" / "ablations").glob("*.yaml")),
]
PARENT = "# parent: "


def chain(path: Path) -> list[Path]:
    """The experiment's configs in ``--config`` order: its parents (each named by a ``# parent:`` line), then it."""
    parents = [line[len(PARENT) :].strip() for line in path.read_text().splitlines() if line.startswith(PARENT)]
    return [p for parent in parents for p in chain(REPO / parent)] + [path]


def merged(paths: list[Path]) -> dict[str, Any]:
    """The files' settings merged as ``--config`` layers them: a later file's value wins, mappings merge."""

    def merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
        out = dict(a)
        for key, value in b.items():
            out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        return out

    result: dict[str, Any] = {}
    for path in paths:
        result = merge(result, yaml.safe_load(path.read_text()) or {})
    return result


def mismatches(printed: Any, expected: Any, where: str = "") -> list[str]:
    """Where the printed config does not hold what the files set. A subclass-typed value is printed as
    ``class_path`` + ``init_args`` with every default filled in; ``key+`` appends its items to the list ``key``."""
    if isinstance(expected, dict):
        if not isinstance(printed, dict):
            return [f"{where}: the files set a mapping, the printed config holds {printed!r}"]
        out = []
        for key, value in expected.items():
            at = f"{where}.{key}" if where else key
            node = printed if key.rstrip("+") in printed else printed.get("init_args", {})
            if key.rstrip("+") not in node:
                out.append(f"{at}: not in the printed config")
            elif key.endswith("+"):
                items = node[key[:-1]]
                out += [f"{at}: {v!r} not appended" for v in value if all(mismatches(e, v) for e in items)]
            else:
                out += mismatches(node[key], value, at)
        return out
    if isinstance(expected, list) and isinstance(printed, list) and len(expected) == len(printed):
        return [m for k, (p, e) in enumerate(zip(printed, expected)) for m in mismatches(p, e, f"{where}[{k}]")]
    return [] if printed == expected else [f"{where}: the files set {expected!r}, the printed config holds {printed!r}"]


def print_config(paths: list[Path], capsys: pytest.CaptureFixture) -> dict[str, Any]:
    """``ecg-dino fit --config ... --print_config``, in process, as a dict."""
    argv = ["fit", *(a for p in paths for a in ("--config", str(p))), "--print_config"]
    with pytest.raises(SystemExit) as exit_info:
        cli_main(argv)
    out = capsys.readouterr()
    assert exit_info.value.code in (0, None), out.err
    return yaml.safe_load(out.out)


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: str(p.relative_to(REPO / "experiments")))
def test_experiment_parses_with_its_parents(path: Path, capsys: pytest.CaptureFixture) -> None:
    paths = chain(path)
    config = print_config(paths, capsys)
    assert config["model"]["class_path"] == "ecg_dino.module.DinoPretrainModule"
    assert config["data"]["class_path"] == "datamodules.pretrain_datamodule.PretrainDataModule"
    wrong = mismatches(config, merged(paths))
    assert not wrong, "\n".join(wrong)


def test_layered_experiments_name_their_parents() -> None:
    """Files that only hold what differs from another experiment say so, and the parent exists."""
    layered = {p.name: [c.name for c in chain(p)[:-1]] for p in EXPERIMENTS if len(chain(p)) > 1}
    assert layered["pretrain_vitb.yaml"] == ["pretrain_vits.yaml"]
    assert layered["pretrain_cpu_real_nonoise.yaml"] == ["pretrain_cpu_real.yaml"]
    assert layered["lr_1e-3.yaml"] == ["pretrain_cpu_many.yaml"]
