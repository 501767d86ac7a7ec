"""Beats/s of the two beat-feature kinds on real MIT-BIH records, in one process: ``window`` (one 1.4 s window
per beat) against ``context`` (one forward per sliding crop of the pretraining's global crop length). Not a test.

    .venv/bin/python benchmarks/beat_features.py --ckpt runs/pretrain_cpu_many/version_0/checkpoints/last.ckpt
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from ecg_dino.checkpoint import load_backbone, trained_crop_seconds
from ecg_dino.features.beats import BeatOptions, beat_table
from ecg_dino.features.context import embed_beat_features
from ecg_dino.probes.mitbih import read_records


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", type=Path, required=True)
    p.add_argument("--mitdb", type=Path, default=Path("../shared/data/mitdb"))
    p.add_argument("--records", nargs="+", default=["100", "213"], help="MIT-BIH records to embed")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=2, help="each kind timed this many times, in turn; the best")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    backbone = load_backbone(args.ckpt)
    records = read_records(args.mitdb, tuple(args.records))
    beats = [beat_table([r]).sample for r in records]
    kinds = {
        "window": BeatOptions(),
        "context": BeatOptions(features="context", crop_seconds=trained_crop_seconds(args.ckpt)),
    }
    best = dict.fromkeys(kinds, float("inf"))
    for _ in range(args.rounds):
        for name, options in kinds.items():
            t = time.perf_counter()
            for record, samples in zip(records, beats, strict=True):
                embed_beat_features(backbone, record, samples, options)
            best[name] = min(best[name], time.perf_counter() - t)
    n = sum(len(s) for s in beats)
    threads = torch.get_num_threads()
    print(f"{n} beats of MIT-BIH {', '.join(args.records)}, fp32, {threads} thread(s), best of {args.rounds}")
    for name, seconds in best.items():
        print(f"{name:8s} {seconds:7.1f} s  {n / seconds:7.0f} beats/s  x window {best['window'] / seconds:5.2f}")


if __name__ == "__main__":
    main()
