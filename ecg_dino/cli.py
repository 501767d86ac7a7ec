"""``ecg-dino``: LightningCLI for training (``fit --config experiments/x.yaml``) plus data and probe tools.

Lightning ships no ``lightning run`` command; experiment YAMLs run as ``ecg-dino fit --config <yaml>``.
The YAML is read with jsonargparse's safe loader and layered on ``configs/defaults.yaml``.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import lightning as L
from lightning.pytorch.cli import LightningCLI

from ecg_dino.parallel import close_process_group

DEFAULTS = Path(__file__).parent / "configs" / "defaults.yaml"
# Tools that are not Lightning subcommands: name -> module with ``main(argv) -> int``.
TOOLS = {
    "prepare": "ecg_dino.commands.prepare",
    "download": "ecg_dino.commands.download",
    "embed": "ecg_dino.commands.embed",
    "export": "ecg_dino.commands.export",
    "consolidate": "ecg_dino.commands.consolidate",
    "probe-ptbxl": "ecg_dino.commands.probe_ptbxl",
    "probe-mitbih": "ecg_dino.commands.probe_mitbih",
    "probe-cinc2017": "ecg_dino.commands.probe_cinc2017",
    "compare": "ecg_dino.commands.compare",
    "curves": "ecg_dino.commands.curves",
    "show": "ecg_dino.commands.show",
}


class ECGDinoCLI(LightningCLI):
    """LightningCLI whose model and data module are chosen by ``class_path`` in the YAML."""

    def __init__(self, args: list[str] | None = None, run: bool = True) -> None:
        super().__init__(
            L.LightningModule,
            L.LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            parser_kwargs={"fit": {"default_config_files": [str(DEFAULTS)]}},
            save_config_kwargs={"overwrite": True},
            args=args,
            run=run,
        )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in TOOLS:
        return int(importlib.import_module(TOOLS[argv[0]]).main(argv[1:]) or 0)
    try:
        ECGDinoCLI(args=argv)
    finally:
        close_process_group()
    return 0
