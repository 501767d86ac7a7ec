"""``ecg-dino curves``: the online-probe learning curves of several runs, from their TensorBoard event files.

Writes ``online_probe_curves.png`` (one panel per probe set, one line per run, the step-0 value of each run as
its random-init reference), ``online_probe_curves.md`` (every logged point) and ``online_probe_curves.json``.
"""

from __future__ import annotations

from ecg_dino.commands.arguments import fail, parse
from ecg_dino.probes.curves import CurvesOptions, write_curves

PROG = "ecg-dino curves"
EXAMPLE = f"{PROG} noise=runs/pretrain_cpu_many/version_0 plain=runs/pretrain_cpu_many_nonoise/version_0 --out runs/cmp"


def main(argv: list[str] | None = None) -> int:
    """Parse, plot, print where the files are; 2 on a missing run folder or a malformed pair."""
    opts = parse(CurvesOptions, argv, PROG, EXAMPLE, __doc__, positional=("runs",))
    try:
        png = write_curves(opts)
    except (FileNotFoundError, ValueError) as e:
        return fail(PROG, e)
    print(f"wrote {png} and .md/.json")
    return 0
