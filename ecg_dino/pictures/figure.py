"""The picture: per lead the ECG as clinicians read it (seconds, mV, a light paper grid) over a band of its patch
tokens' PCA colours; below, the class token's attention over patches and, for a noisy twin, the cosine similarity
of each patch token to the clean one. One column per panel (pretrained, random init, clean, noisy)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MultipleLocator

from ecg_dino.pictures.tokens import DenseFeatures, Tracing

DPI = 100
COLUMN_IN = 5.5  # width of one panel
LEFT_IN, RIGHT_IN, TOP_IN, BOTTOM_IN = 0.6, 0.15, 0.55, 0.45
TRACE_IN, BAND_IN, MAP_LEAD_IN, MAP_EXTRA_IN, GAP_IN = 0.9, 0.16, 0.14, 0.45, 0.3
GRID = "#f3b8b8"


@dataclass(frozen=True)
class Panel:
    """One column: a tracing, its tokens, their PCA colours [L, P, 3], and the cosine to a clean twin [L, P]."""

    title: str
    tracing: Tracing
    features: DenseFeatures
    colours: np.ndarray
    cosine: np.ndarray | None = None


def _heights(n_leads: int, with_cosine: bool) -> list[float]:
    """Row heights in inches: per lead a trace and a band, the attention map, the cosine map (with gaps)."""
    rows = [TRACE_IN, BAND_IN] * n_leads + [GAP_IN, MAP_EXTRA_IN + MAP_LEAD_IN * n_leads]
    return rows + ([GAP_IN, MAP_EXTRA_IN + MAP_LEAD_IN * n_leads] if with_cosine else [])


def figure_size_px(n_leads: int, n_panels: int, with_cosine: bool, dpi: int = DPI) -> tuple[int, int]:
    """(width, height) in pixels of the picture of ``n_leads`` present leads in ``n_panels`` columns."""
    width = LEFT_IN + RIGHT_IN + COLUMN_IN * n_panels
    height = TOP_IN + BOTTOM_IN + sum(_heights(n_leads, with_cosine))
    return round(width * dpi), round(height * dpi)


def _paper(ax: Axes, seconds: float) -> None:
    """ECG paper's large squares, a light grid every 0.2 s and 0.5 mV; labels on whole seconds and millivolts."""
    ax.set_xlim(0, seconds)
    ax.xaxis.set_major_locator(MultipleLocator(1.0))
    ax.xaxis.set_minor_locator(MultipleLocator(0.2))
    ax.yaxis.set_major_locator(MultipleLocator(1.0))
    ax.yaxis.set_minor_locator(MultipleLocator(0.5))
    ax.grid(which="both", color=GRID, lw=0.6)
    ax.tick_params(labelsize=6, length=2, labelbottom=False)
    for spine in ax.spines.values():
        spine.set_visible(False)


def _patch_map(ax: Axes, values: np.ndarray, valid: np.ndarray, seconds_per_patch: float, **style: Any) -> None:
    """An [L, P] map of patch values over time; invalid patches are left blank."""
    shown = np.ma.masked_array(values, ~valid | ~np.isfinite(values))
    ax.imshow(
        shown,
        aspect="auto",
        interpolation="nearest",
        extent=(0, values.shape[1] * seconds_per_patch, values.shape[0], 0),
        **style,
    )


def draw(panels: list[Panel], seconds: float, suptitle: str, dpi: int = DPI) -> Figure:
    """The figure of ``panels`` side by side, ``seconds`` of time on each; only present leads and valid time drawn."""
    leads = [i for i, present in enumerate(panels[0].tracing.lead_mask) if present]
    with_cosine = any(p.cosine is not None for p in panels)
    heights = _heights(len(leads), with_cosine)
    width_px, height_px = figure_size_px(len(leads), len(panels), with_cosine, dpi)
    fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    FigureCanvasAgg(fig)  # Agg, never an interactive backend
    fig.subplots_adjust(
        left=LEFT_IN * dpi / width_px,
        right=1 - RIGHT_IN * dpi / width_px,
        top=1 - TOP_IN * dpi / height_px,
        bottom=BOTTOM_IN * dpi / height_px,
        hspace=0.0,
        wspace=0.12,
    )
    grid = fig.add_gridspec(len(heights), len(panels), height_ratios=heights)
    fig.suptitle(suptitle, fontsize=9)
    top_attention = max(float(p.features.attention.max(initial=0.0)) for p in panels)  # one scale for all panels
    for c, panel in enumerate(panels):
        t = panel.tracing
        rate, valid_samples = t.sample_rate_hz, t.valid_samples
        P, patch_s = panel.features.valid.shape[1], panel.features.patch_seconds
        time_s = np.arange(valid_samples) / rate
        for row, lead in enumerate(leads):
            ax = fig.add_subplot(grid[2 * row, c])
            trace = t.signal[lead, :valid_samples]
            ax.plot(time_s, trace, color="black", lw=0.6)
            centre = float(np.median(trace))
            half = max(1.0, float(np.abs(trace - centre).max(initial=0.0)) * 1.1)
            ax.set_ylim(centre - half, centre + half)
            _paper(ax, seconds)
            if c == 0:
                ax.set_ylabel(f"{t.leads[lead]}\nmV", fontsize=7, rotation=0, ha="right", va="center")
            if row == 0:
                ax.set_title(panel.title, fontsize=8)
            band = fig.add_subplot(grid[2 * row + 1, c])
            colours = np.concatenate([panel.colours[lead], panel.features.valid[lead, :, None]], axis=-1)[None]
            band.imshow(colours, aspect="auto", interpolation="nearest", extent=(0, P * patch_s, 0, 1))
            band.set_xlim(0, seconds)
            band.set_axis_off()
        maps = [("attention", panel.features.attention, dict(cmap="magma", vmin=0.0, vmax=top_attention))]
        if with_cosine:
            maps.append(("cosine", panel.cosine, dict(cmap="viridis", vmin=0.0, vmax=1.0)))
        for k, (name, values, style) in enumerate(maps):
            ax = fig.add_subplot(grid[2 * len(leads) + 1 + 2 * k, c])
            if values is None:
                ax.set_axis_off()
                continue
            _patch_map(ax, values[leads], panel.features.valid[leads], patch_s, **style)
            ax.set_xlim(0, seconds)
            ax.set_yticks(np.arange(len(leads)) + 0.5, [t.leads[i] for i in leads], fontsize=6)
            ax.tick_params(labelsize=6, length=2)
            ax.set_xlabel("s", fontsize=7, labelpad=1)
            if name == "attention":
                text = f"class-token attention, last block (mean of heads; {panel.features.patch_share:.0%} on patches)"
            else:
                text = f"cosine of each patch token to the clean one (mean {np.nanmean(values[leads]):.2f})"
            ax.set_title(text, fontsize=7, loc="left", pad=2)
    return fig


def write_png(fig: Figure, path: Path) -> Path:
    """Save at the figure's own size (no tight bounding box, so the pixel size is ``figure_size_px``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=fig.dpi, metadata={"Software": None})
    return path


def to_rgb(fig: Figure) -> np.ndarray:
    """The rendered figure as uint8 [H, W, 3] (TensorBoard's ``add_image(..., dataformats="HWC")``)."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
