"""The equal-cost table of two codes' online-probe curves: new-code step s meets old-code step s · new_ms / old_ms
(old curves interpolated linearly between their probes), per seed and as the mean of the new seeds minus the mean
of the old ones, from ``ecg-dino curves`` JSON files (runs named ``after_*`` and ``before_*``).

    python benchmarks/equal_cost_table.py docs/results/cost_equal/online_probe_curves.json \
      docs/results/cost_equal_s2/online_probe_curves.json --new-ms 850 --old-ms 1758
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

SETS = {"cinc2017": "CinC-2017 val", "ptbxl": "PTB-XL fold 9", "mitbih": "MIT-BIH DS1"}


def at(curve: dict[str, float], step: float) -> float:
    """The curve at ``step``, linear between its probes; NaN past its last probe."""
    steps = np.array(sorted(map(int, curve)))
    values = np.array([curve[str(s)] for s in steps])
    return float(np.interp(step, steps, values)) if step <= steps[-1] else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("curves", nargs="+", type=Path, help="online_probe_curves.json files")
    parser.add_argument("--new-ms", type=float, required=True, help="the new code's benchmarked ms/step")
    parser.add_argument("--old-ms", type=float, required=True, help="the old code's benchmarked ms/step")
    args = parser.parse_args()
    runs: dict[str, dict] = {}
    for path in args.curves:
        runs |= json.loads(path.read_text())
    new = sorted(r for r in runs if r.startswith("after"))
    old = sorted(r for r in runs if r.startswith("before"))
    print(f"| probe set | new-code step | old-code step | {' | '.join(new + old)} | new mean − old mean |")
    print("|---|---|---|" + "---|" * (len(new) + len(old) + 1))
    for key, name in SETS.items():
        for step in sorted(map(int, runs[new[0]][key])):
            old_step = step * args.new_ms / args.old_ms
            a = [at(runs[r][key], step) for r in new]
            b = [at(runs[r][key], old_step) for r in old]
            cells = " | ".join("–" if np.isnan(v) else f"{v:.3f}" for v in a + b)
            diff = np.mean(a) - np.mean(b)
            print(f"| {name} | {step} | {old_step:.0f} | {cells} | {'–' if np.isnan(diff) else f'{diff:+.3f}'} |")


if __name__ == "__main__":
    main()
