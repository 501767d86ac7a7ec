"""``ecg-dino compare``: one table (Markdown + JSON) and robustness plots from several probe reports."""

from __future__ import annotations

from ecg_dino.commands.arguments import fail, parse
from ecg_dino.probes.compare import ComparisonOptions, write_comparison

PROG = "ecg-dino compare"
EXAMPLE = f"{PROG} --out runs/compare --ptbxl noise=runs/a/probe-ptbxl/report.json plain=runs/b/probe-ptbxl/report.json"


def main(argv: list[str] | None = None) -> int:
    """Parse, compare, print the table; 2 on an unreadable or mismatched report."""
    opts = parse(ComparisonOptions, argv, PROG, EXAMPLE, __doc__)
    try:
        markdown = write_comparison(opts)
    except (OSError, ValueError, KeyError) as e:
        return fail(PROG, e)
    print(markdown.read_text())
    return 0
