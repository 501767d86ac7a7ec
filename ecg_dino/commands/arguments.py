"""Flags and error reporting shared by several commands."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from datamodules.noise import NOISE_TYPES
from datamodules.readers import SourceOptions
from datamodules.record import BadRecordError
from ecg_dino.checkpoint import CheckpointError
from ecg_dino.features.cache import DEFAULT_CACHE
from ecg_dino.probes.options import HEADS, RecordProbeOptions

Options = TypeVar("Options")
SOURCE_FLAGS = tuple(f.name for f in dataclasses.fields(SourceOptions))  # the dests of ``source_arguments``


def optional_path(value: str) -> Path | None:
    """argparse type: a path, or None for the empty string (``--cache-dir ''`` disables the cache)."""
    return Path(value) if value else None


def source_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``datamodules.readers.SourceOptions``: how the generic sources (wfdb, edf, numpy) read files."""
    p.add_argument(
        "--lead-map",
        nargs="+",
        default=[],
        metavar="OLD=NEW",
        help="wfdb/edf/numpy: lead names or EDF labels the vocabulary lacks, e.g. ECG1=MLII (case-insensitive)",
    )
    p.add_argument("--numpy-leads", help="numpy arrays without a sidecar JSON: lead names of the rows, e.g. I,II,V1")
    p.add_argument("--numpy-sample-rate-hz", type=float, help="numpy arrays without a sidecar JSON: their rate")
    p.add_argument("--numpy-units", choices=("mV", "uV", "V"), help="numpy arrays without a sidecar JSON (default mV)")


def source_options(args: argparse.Namespace) -> SourceOptions:
    """The ``SourceOptions`` of parsed ``source_arguments``."""
    leads = None if args.numpy_leads is None else tuple(n.strip() for n in args.numpy_leads.split(",") if n.strip())
    return SourceOptions(tuple(args.lead_map), leads, args.numpy_sample_rate_hz, args.numpy_units)


def fail(prog: str, error: Exception) -> int:
    """Print ``<prog>: error: <message>`` to stderr; the exit code of a failed command."""
    print(f"{prog}: error: {error}", file=sys.stderr)
    return 2


def write_probe_report(prog: str, probe: Callable[[Options], Path], opts: Options) -> int:
    """Run one probe and print where its report is; 2 on an error naming the file."""
    try:
        out = probe(opts)
    except (CheckpointError, FileNotFoundError, BadRecordError, ValueError) as e:
        return fail(prog, e)
    print(f"wrote {out / 'report.md'}")
    return 0


def probe_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``probes.options.ProbeOptions``, shared by every probe command."""
    p.add_argument("--ckpt", type=Path, required=True, help="Lightning/consolidated checkpoint or .safetensors")
    p.add_argument("--out", type=Path, default=None, help="report folder (default: <ckpt folder>/<probe name>)")
    p.add_argument("--which", default="teacher", choices=("teacher", "student"))
    p.add_argument("--nstdb", type=Path, default=None, help="NSTDB folder (default: next to the data folder)")
    p.add_argument("--seed", type=int, default=0, help="seeds subsets, splits, noise, bootstrap, random init")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for 95 %% CIs")
    p.add_argument("--no-robustness", action="store_true", help="skip the noise and lead-subset evaluations")
    p.add_argument(
        "--noise-types", nargs="+", default=list(NOISE_TYPES), choices=NOISE_TYPES, help="NSTDB noise types to test"
    )
    p.add_argument("--no-random-init", action="store_true", help="skip the random-init baseline")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--cache-dir", type=optional_path, default=DEFAULT_CACHE, help="embedding cache ('' disables)")
    p.add_argument("--step", type=int, default=0, help="TensorBoard step of the scalars")


def probe_options(args: argparse.Namespace) -> dict[str, Any]:
    """The ``ProbeOptions`` fields from parsed ``probe_arguments``."""
    return {
        "ckpt": args.ckpt,
        "out": args.out,
        "which": args.which,
        "nstdb": args.nstdb,
        "seed": args.seed,
        "n_boot": args.n_boot,
        "robustness": not args.no_robustness,
        "noise_types": tuple(args.noise_types),
        "random_init": not args.no_random_init,
        "precision": args.precision,
        "cache_dir": args.cache_dir,
        "step": args.step,
    }


def record_probe_arguments(p: argparse.ArgumentParser, options: type[RecordProbeOptions], limit_help: str) -> None:
    """The flags of ``probes.options.RecordProbeOptions`` (defaults from ``options``), then ``probe_arguments``."""
    default = {f.name: f.default for f in dataclasses.fields(options)}
    p.add_argument("--fractions", nargs="+", type=float, default=list(default["fractions"]))
    p.add_argument("--limit", type=int, default=None, help=limit_help)
    p.add_argument("--crop-seconds", type=float, default=default["crop_seconds"], help="the trained crop length")
    p.add_argument("--batch-size", type=int, default=default["batch_size"])
    p.add_argument(
        "--head",
        choices=HEADS,
        default="both",
        help="linear: class token ‖ mean patch token, at every fraction, with robustness; attentive: learnable "
        "queries over the patch tokens (100 %% of the labels); both (default)",
    )
    p.add_argument("--attentive-queries", type=int, default=4, help="learnable queries of the attentive head (1-4)")
    probe_arguments(p)


def record_probe_options(args: argparse.Namespace) -> dict[str, Any]:
    """The ``RecordProbeOptions`` fields (``ProbeOptions``' included) from parsed ``record_probe_arguments``."""
    return {
        "fractions": tuple(args.fractions),
        "limit": args.limit,
        "crop_seconds": args.crop_seconds,
        "batch_size": args.batch_size,
        "head": args.head,
        "attentive_queries": args.attentive_queries,
        **probe_options(args),
    }
