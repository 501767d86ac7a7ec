"""``ecg-dino probe-mitbih``: AAMI beat probe (DS1 -> DS2, or intra-patient) with baselines and robustness."""

from __future__ import annotations

import argparse
from pathlib import Path

from ecg_dino.commands.arguments import probe_arguments, probe_options, write_probe_report
from ecg_dino.features.beats import FEATURE_KINDS, FEATURE_PARTS, BeatOptions
from ecg_dino.probes.options import MITBIHProbeOptions
from ecg_dino.probes.run_mitbih import probe_mitbih
from ecg_dino.splits import MITDB_DS1, MITDB_DS2

PROG = "ecg-dino probe-mitbih"


def parse(argv: list[str] | None) -> MITBIHProbeOptions:
    """The command line as ``MITBIHProbeOptions``."""
    p = argparse.ArgumentParser(prog=PROG, description=__doc__)
    p.add_argument("--mitdb", type=Path, required=True, help="MIT-BIH Arrhythmia Database folder")
    p.add_argument("--ds1", nargs="+", default=list(MITDB_DS1), help="training records (default: DS1)")
    p.add_argument("--ds2", nargs="+", default=list(MITDB_DS2), help="test records (default: DS2)")
    p.add_argument("--val-records", type=int, default=5, help="DS1 records held out to choose λ and T")
    p.add_argument(
        "--paradigm",
        choices=("inter", "intra"),
        default="inter",
        help="inter: DS1 -> DS2 patients (default); intra: each DS2 record's first half of beats -> its second half",
    )
    p.add_argument(
        "--features",
        choices=FEATURE_KINDS,
        default=BeatOptions.features,
        help="window: a beat-centred window per beat (default); context: the beat's tokens in sliding crops",
    )
    p.add_argument("--window-patches", type=int, default=BeatOptions.window_patches)
    p.add_argument("--crop-seconds", type=float, help="context crops (default: the pretraining's global crop)")
    p.add_argument("--context-stride", type=float, default=BeatOptions.stride_fraction, help="fraction of a crop")
    p.add_argument("--batch-size", type=int, default=BeatOptions.batch_size)
    p.add_argument(
        "--part",
        choices=FEATURE_PARTS,
        default="all",
        help="part of the beat embedding the heads read: class token, R-patch tokens, or both (default)",
    )
    p.add_argument("--with-rr", action="store_true", help="also fit heads on the embedding beside RR features")
    p.add_argument("--test-dir", type=Path, help="test on this WFDB database's .atr beats (heads fit on MIT-BIH)")
    p.add_argument("--lead-map", nargs="+", default=[], metavar="OLD=NEW", help="test lead names, e.g. ECG1=MLII")
    p.add_argument("--train-on", choices=("ds1", "ds1+ds2"), default="ds1", help="with --test-dir: fitting records")
    p.add_argument(
        "--robust-per-class",
        type=int,
        default=500,
        help="noisy DS2 evaluations use at most this many beats per class (seeded)",
    )
    probe_arguments(p)
    args = p.parse_args(argv)
    return MITBIHProbeOptions(
        mitdb=args.mitdb,
        ds1=tuple(args.ds1),
        ds2=tuple(args.ds2),
        val_records=args.val_records,
        paradigm=args.paradigm,
        features=args.features,
        window_patches=args.window_patches,
        crop_seconds=args.crop_seconds,
        context_stride=args.context_stride,
        batch_size=args.batch_size,
        part=args.part,
        with_rr=args.with_rr,
        test_dir=args.test_dir,
        lead_map=tuple(args.lead_map),
        train_on=args.train_on,
        robust_per_class=args.robust_per_class,
        **probe_options(args),
    )


def main(argv: list[str] | None = None) -> int:
    """Parse, probe, print where the report is; 2 on an error naming the file."""
    return write_probe_report(PROG, probe_mitbih, parse(argv))
