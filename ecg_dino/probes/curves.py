"""Online-probe learning curves of several runs (``ecg-dino curves``), from their TensorBoard event files.

Writes ``online_probe_curves.png`` (one panel per probe set, one line per run, the step-0 value of each run as
its random-init reference), ``online_probe_curves.md`` (every logged point) and ``online_probe_curves.json``.
Each run also gets ``minutes``: the wall time from its first event to each logged online probe, so runs of
different speeds can be compared at equal wall time (``x="minutes"`` plots against it). Wall time also counts
whatever else the machine ran; ``step_ms`` gives each run's benchmarked milliseconds per step instead, and
``x="step-time"`` plots against step × that (``step_minutes``): equal cost, free of the machine's load.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

PREFIX, SUFFIX = "online_probe/", "/auroc"
COST = "online_probe/cost_fraction"
MINUTES = "minutes"
STEP_MINUTES = "step_minutes"
NOT_SETS = ("cost_fraction", MINUTES, STEP_MINUTES)
X_KEYS = {"step": None, "minutes": MINUTES, "step-time": STEP_MINUTES}


def read_curves(run_dir: Path) -> dict[str, dict[int, float]]:
    """{probe set: {step: AUROC}}, ``cost_fraction`` and ``minutes`` (wall time since the run's first event at
    each online-probe step) of one run's event files (the last value per step)."""
    files = sorted(Path(run_dir).rglob("events.out.tfevents.*"))
    if not files:
        raise FileNotFoundError(f"{run_dir}: no TensorBoard event files")
    curves: dict[str, dict[int, float]] = {}
    start = None
    for folder in dict.fromkeys(f.parent for f in files):
        events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
        events.Reload()
        start = events.FirstEventTimestamp() if start is None else start  # a resumed run's later folders go on
        for tag in events.Tags()["scalars"]:
            if (tag.startswith(PREFIX) and tag.endswith(SUFFIX)) or tag == COST:
                name = "cost_fraction" if tag == COST else tag[len(PREFIX) : -len(SUFFIX)]
                scalars = events.Scalars(tag)
                curves.setdefault(name, {}).update({e.step: e.value for e in scalars})
                if name != "cost_fraction":
                    curves.setdefault(MINUTES, {}).update({e.step: (e.wall_time - start) / 60 for e in scalars})
    if not any(name not in NOT_SETS for name in curves):
        raise ValueError(f"{run_dir}: no {PREFIX}<set>{SUFFIX} scalars (was the run trained with OnlineProbe?)")
    return {name: dict(sorted(points.items())) for name, points in curves.items()}


def markdown(runs: dict[str, dict[str, dict[int, float]]]) -> str:
    """One table per probe set: a row per run, a column per logged step."""
    lines = [
        "# Online-probe curves",
        "",
        "Macro AUROC of the teacher at each logged step; step 0 is random init;",
        "minutes: wall time from the run's first event; step_minutes: step × the run's benchmarked ms/step.",
        "",
    ]
    sets = sorted({s for curves in runs.values() for s in curves if s not in NOT_SETS})
    sets += [key for key in (MINUTES, STEP_MINUTES) if any(key in curves for curves in runs.values())]
    for probe_set in sets:
        steps = sorted({step for curves in runs.values() for step in curves.get(probe_set, {})})
        lines += [f"## {probe_set}", "", "| run | " + " | ".join(map(str, steps)) + " |"]
        lines.append("|---" * (len(steps) + 1) + "|")
        for name, curves in runs.items():
            points = curves.get(probe_set, {})
            digits = 1 if probe_set in (MINUTES, STEP_MINUTES) else 3
            cells = [f"{points[s]:.{digits}f}" if s in points else "–" for s in steps]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    costs = {name: c["cost_fraction"] for name, c in runs.items() if c.get("cost_fraction")}
    if costs:
        lines.append(
            "Share of wall time in the online probe at the end of the run: "
            + ", ".join(f"{name} {100 * list(points.values())[-1]:.1f} %" for name, points in costs.items())
        )
    return "\n".join(lines) + "\n"


def plot(runs: dict[str, dict[str, dict[int, float]]], path: Path, x: str = "step") -> None:
    """One panel per probe set, against the step, the wall time since each run's start (``minutes``) or the
    benchmarked training time (``step-time``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = sorted({s for curves in runs.values() for s in curves if s not in NOT_SETS})
    fig, axes = plt.subplots(1, len(sets), figsize=(4.5 * len(sets), 3.6), squeeze=False)
    for ax, probe_set in zip(axes[0], sets):
        for i, (name, curves) in enumerate(runs.items()):
            points = curves.get(probe_set)
            if not points:
                continue
            xs = [curves[X_KEYS[x]][step] for step in points] if X_KEYS[x] else list(points)
            line = ax.plot(xs, list(points.values()), marker="o", ms=3, label=name, color=f"C{i}")[0]
            ax.axhline(points[min(points)], ls=":", lw=1, color=line.get_color())  # the run's step-0 value
        xlabel = {
            "step": "step",
            "minutes": "wall time since the run's start (minutes)",
            "step-time": "training time at the benchmarked ms/step (minutes)",
        }[x]
        ax.set(title=probe_set, xlabel=xlabel, ylabel="macro AUROC (online probe)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle("Online probe of the teacher (dotted: step 0 = random init)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


@dataclass(frozen=True)
class CurvesOptions:
    """The runs (``NAME=RUN_DIR``, a folder holding event files), the output folder and the plot's x axis
    (``step``, ``minutes`` or ``step-time`` with ``step_ms``)."""

    runs: tuple[str, ...]
    """NAME=runs/<name>/version_<n> (a folder holding event files)"""
    out: Path
    """folder for the PNG, Markdown and JSON"""
    x: Literal["step", "minutes", "step-time"] = "step"
    """plot against the step, the wall time (minutes) or step × the benchmarked ms/step (step-time)"""
    step_ms: tuple[str, ...] = ()
    """NAME=MS: each run's benchmarked milliseconds per step (benchmarks/step_ablation.py), for --x step-time"""


def pairs(items: tuple[str, ...], what: str) -> dict[str, str]:
    """``NAME=VALUE`` strings as a dict; a clear error on a malformed one."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise ValueError(f"expected NAME={what}, got {item!r}")
        out[name] = value
    return out


def write_curves(opts: CurvesOptions) -> Path:
    """``online_probe_curves.png``/``.md``/``.json`` in ``opts.out``; returns the PNG."""
    if opts.x not in X_KEYS:
        raise ValueError(f"x must be one of {', '.join(X_KEYS)}, got {opts.x!r}")
    runs = {name: read_curves(Path(folder)) for name, folder in pairs(opts.runs, "RUN_DIR").items()}
    step_ms = {name: float(ms) for name, ms in pairs(opts.step_ms, "MS").items()}
    for name, ms in step_ms.items():
        if name not in runs:
            raise ValueError(f"step_ms names {name!r}, which is not a run ({', '.join(runs)})")
        steps = next(points for key, points in runs[name].items() if key not in NOT_SETS)
        runs[name][STEP_MINUTES] = {step: step * ms / 60_000 for step in steps}
    if opts.x == "step-time" and set(step_ms) != set(runs):
        raise ValueError(f"--x step-time needs --step-ms NAME=MS for every run ({', '.join(runs)})")
    opts.out.mkdir(parents=True, exist_ok=True)
    (opts.out / "online_probe_curves.json").write_text(json.dumps(runs, indent=1))
    (opts.out / "online_probe_curves.md").write_text(markdown(runs))
    plot(runs, opts.out / "online_probe_curves.png", opts.x)
    return opts.out / "online_probe_curves.png"
