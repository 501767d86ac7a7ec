"""``ecg-dino``: LightningCLI for training (``fit --config experiments/x.yaml``) plus data and probe tools.

Lightning ships no ``lightning run`` command; experiment YAMLs run as ``ecg-dino fit --config <yaml>``.
The YAML is read with jsonargparse's safe loader and layered on ``configs/defaults.yaml``. ``ecg-dino --help``
lists every command with one line each; ``ecg-dino <command> --help`` gives its flags and an example.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import logging
import re
import sys
import warnings
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.cli import LightningCLI

from ecg_dino.hparams import grouped
from ecg_dino.parallel import close_process_group

DEFAULTS = Path(__file__).parent / "configs" / "defaults.yaml"
# Tools that are not Lightning subcommands: name -> module with ``main(argv) -> int``; its docstring's first line
# (after the ````ecg-dino name``:`` prefix) is the command's line in ``ecg-dino --help``.
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
# Lightning's loggers of rank_zero_info (fabric and pytorch each point lightning_utilities at their own).
RANK_ZERO_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")


class ECGDinoCLI(LightningCLI):
    """LightningCLI whose model and data module are chosen by ``class_path`` in the YAML."""

    def __init__(self, args: list[str] | None = None, run: bool = True) -> None:
        quiet_lightning()
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

    def _parse_ckpt_path(self) -> None:
        """LightningCLI's merge of a ``--ckpt_path`` checkpoint's hyperparameters into the config, with the flat
        names of a checkpoint from before the grouping (``num_prototypes``, ``lr``...) moved into their groups."""
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if not (ckpt_path and Path(ckpt_path).is_file()):
            return
        hparams = grouped(torch.load(ckpt_path, weights_only=True, map_location="cpu").get("hyper_parameters", {}))
        hparams.pop("_instantiator", None)
        if "_class_path" in hparams:
            hparams = {"class_path": hparams.pop("_class_path"), "dict_kwargs": hparams}
        if hparams:
            self.config = self.parser.parse_object({subcommand: {"model": hparams}}, self.config)


def _not_an_advert(record: logging.LogRecord) -> bool:
    """False for Lightning's "💡 Tip: For seamless cloud ..." adverts for its hosted logger and model registry."""
    return not str(record.msg).startswith("💡 Tip: For seamless cloud")


def quiet_lightning() -> None:
    """Drop two messages of every run that do not apply here: the hosted-service tips, and LightningCLI's warning
    against ``args`` beside ``sys.argv`` (``main`` passes the command line itself as ``args``)."""
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended", category=UserWarning)
    for name in RANK_ZERO_LOGGERS:
        logger = logging.getLogger(name)
        if _not_an_advert not in logger.filters:
            logger.addFilter(_not_an_advert)


def summary(module: str) -> str:
    """The first line of a command module's docstring without its ````ecg-dino name``:`` prefix, read without
    importing the module (so ``ecg-dino --help`` is quick)."""
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None, module
    doc = ast.get_docstring(ast.parse(Path(spec.origin).read_text())) or ""
    return re.sub(r"^``[^`]*``:\s*", "", doc.splitlines()[0]).replace("``", "") if doc else ""


def _first_sentence(doc: str | None) -> str:
    """The first sentence of a docstring (Lightning's run on over several lines)."""
    return " ".join((doc or "").split()).split(". ")[0].rstrip(".") + "."


def overview() -> str:
    """``ecg-dino --help``: every command, one line each, and where to read more."""
    lightning = {name: _first_sentence(getattr(L.Trainer, name).__doc__) for name in LightningCLI.subcommands()}
    width = max(map(len, [*lightning, *TOOLS])) + 2
    lines = [
        "usage: ecg-dino <command> [options]      ecg-dino <command> --help: its flags and an example",
        "",
        "training and evaluation (LightningCLI; an experiment YAML layered on ecg_dino/configs/defaults.yaml):",
        *(f"  {name.ljust(width)}{text}" for name, text in lightning.items()),
        "",
        "tools:",
        *(f"  {name.ljust(width)}{summary(module)}" for name, module in TOOLS.items()),
        "",
        "examples:",
        "  ecg-dino fit --config experiments/pretrain_debug_cpu.yaml",
        "  ecg-dino probe-ptbxl --ckpt runs/pretrain_debug_cpu/version_0/checkpoints/last.ckpt --ptbxl data/ptbxl",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run one command; ``--help`` (or nothing) prints the overview of every command."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(overview())
        return 0 if argv else 2
    if argv[0] in TOOLS:
        return int(importlib.import_module(TOOLS[argv[0]]).main(argv[1:]) or 0)
    try:
        ECGDinoCLI(args=argv)
    finally:
        close_process_group()
    return 0
