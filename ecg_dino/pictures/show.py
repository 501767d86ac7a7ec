"""``ecg-dino show``: one PNG per record of what a frozen backbone sees in it (``figure`` draws, ``tokens`` computes).

Panels: the checkpoint's backbone and, with ``compare_random``, the same architecture freshly initialised under
``seed`` (the probes' random-init twin, ``features.backbone.BackboneSpec``); each on the clean window and, with
``noise``, on the window plus NSTDB evaluation-split noise at ``snr`` (``datamodules.noise.add_noise``). PCA
colours are fitted per backbone on the clean window's patch tokens, or on the first ``pca_records`` records of
``pca_from``; the noisy window is coloured with the clean one's fit, so a colour change is a token change.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from datamodules.noise import NOISE_TYPES, add_noise, noise_folder
from datamodules.readers.base import record_name
from datamodules.record import ECGRecord
from ecg_dino.features.backbone import BackboneSpec, CheckpointOptions
from ecg_dino.features.sources import SOURCES, ReaderSource, open_source
from ecg_dino.model.vit import ECGViT
from ecg_dino.pictures.figure import DPI, Panel, draw, write_png
from ecg_dino.pictures.tokens import PCAColours, Tracing, dense_features, patch_cosine


@dataclass(frozen=True, kw_only=True)
class ShowOptions(CheckpointOptions):
    """What to draw: the checkpoint, the records and window, the noise, the PCA reference, the random twin."""

    data: Path
    """dataset folder"""
    out: Path | None = None
    """PNG folder (default: <ckpt folder>/pictures)"""
    record: str | None = None
    """record name (119) or id (mitdb/119); default: every record"""
    source: str | None = field(default=None, metadata={"choices": SOURCES})
    """dataset kind (guessed from the folder when omitted)"""
    start: float = 0.0
    """window start in seconds"""
    seconds: float = 10.0
    """window length in seconds"""
    noise: str | None = field(default=None, metadata={"choices": NOISE_TYPES})
    """also draw the window with this NSTDB noise type, and each patch token's similarity to its clean twin"""
    snr: float = 6.0
    """SNR of the added noise in dB"""
    nstdb: Path | None = None
    """NSTDB folder (default: nstdb/ beside the data folder)"""
    pca_from: Path | None = None
    """fit the PCA on this dataset folder's records instead of each record's own patches"""
    pca_records: int = 32
    """records of --pca-from to fit the PCA on"""
    compare_random: bool = False
    """draw the random-init twin (the same architecture initialised under --seed) beside the checkpoint"""
    seed: int = 0
    """seeds the random-init twin's weights and the noise excerpt"""
    limit: int | None = None
    """at most this many records"""
    dpi: int = DPI
    """PNG resolution"""

    def __post_init__(self) -> None:
        if self.noise is not None and self.noise not in NOISE_TYPES:
            raise ValueError(f"unknown noise type {self.noise!r}; choose from {', '.join(NOISE_TYPES)}")
        if self.seconds <= 0:
            raise ValueError(f"seconds must be positive, got {self.seconds}")


def select_records(data: Path, source: str | None, record: str | None, limit: int | None) -> Iterator[ECGRecord]:
    """The records of a dataset folder, only ``record`` (by name or id) when given, at most ``limit``."""
    src = open_source(data, source)
    if isinstance(src, ReaderSource):
        refs = [r for r in src.refs if record is None or record in (r.record_id, record_name(r.record_id))]
        records: Iterator[ECGRecord] = (src.reader.load(ref) for ref in refs)
    else:
        records = (r for r in src.records() if record is None or record in (r.record_id, record_name(r.record_id)))
    found = 0
    for found, rec in enumerate(records, 1):
        yield rec
        if found == limit:
            return
    if not found:
        raise FileNotFoundError(f"{data}: no record {record!r}" if record else f"{data}: no records")


def reference_pca(backbone: ECGViT, data: Path, source: str | None, n_records: int, seconds: float) -> PCAColours:
    """PCA colours fitted on the patch tokens of the first ``seconds`` of the first ``n_records`` records."""
    rate = backbone.sample_rate_hz
    tracings = [Tracing.from_record(r, rate, 0.0, seconds) for r in select_records(data, source, None, n_records)]
    return PCAColours.fit_features([dense_features(backbone, [t])[0] for t in tracings])


def backbone_panels(
    name: str, backbone: ECGViT, clean: Tracing, noisy: Tracing | None, pca: PCAColours | None
) -> list[Panel]:
    """The clean (and noisy) panels of one backbone; ``pca`` None fits it on the clean window's tokens."""
    features = dense_features(backbone, [clean] if noisy is None else [clean, noisy])
    pca = pca or PCAColours.fit_features(features[:1])
    panels = [Panel(f"{name}: {clean.title}", clean, features[0], pca(features[0].patches))]
    if noisy is not None:
        cosine = patch_cosine(features[0], features[1])
        panels.append(Panel(f"{name}: {noisy.title}", noisy, features[1], pca(features[1].patches), cosine))
    return panels


def picture(
    backbones: dict[str, ECGViT],
    clean: Tracing,
    noisy: Tracing | None,
    pcas: dict[str, PCAColours | None],
    seconds: float,
    suptitle: str,
    dpi: int = DPI,
) -> Figure:
    """The figure of each backbone on ``clean`` (and ``noisy``), columns side by side."""
    panels = [p for name, model in backbones.items() for p in backbone_panels(name, model, clean, noisy, pcas[name])]
    return draw(panels, seconds, suptitle, dpi)


def png_name(record_id: str, opts: ShowOptions) -> str:
    """``119_start600s_em6dB_vs-random.png``: the record and what the picture holds."""
    parts = [re.sub(r"[^A-Za-z0-9_.-]", "_", record_name(record_id)), f"start{opts.start:g}s"]
    parts += [f"{opts.noise}{opts.snr:g}dB"] if opts.noise else []
    parts += ["vs-random"] if opts.compare_random else []
    return "_".join(parts) + ".png"


def show(opts: ShowOptions) -> list[Path]:
    """Write one PNG per selected record; returns their paths."""
    specs = {"pretrained": BackboneSpec(opts.ckpt, opts.which)}
    if opts.compare_random:
        specs["random init"] = BackboneSpec(opts.ckpt, opts.which, random_init_seed=opts.seed)
    backbones = {name: spec.load() for name, spec in specs.items()}
    pcas: dict[str, PCAColours | None] = {name: None for name in backbones}
    fitted_on = "each record's window"
    if opts.pca_from is not None:
        pcas = {n: reference_pca(m, opts.pca_from, None, opts.pca_records, opts.seconds) for n, m in backbones.items()}
        fitted_on = f"{opts.pca_records} records of {opts.pca_from.name}"
    rate = next(iter(backbones.values())).sample_rate_hz
    out_dir = opts.out or opts.ckpt.parent / "pictures"
    written = []
    for record in select_records(opts.data, opts.source, opts.record, opts.limit):
        clean = Tracing.from_record(record, rate, opts.start, opts.seconds)
        noisy = None
        if opts.noise is not None:
            rng = np.random.default_rng(opts.seed)
            signal = add_noise(
                clean.signal, opts.noise, opts.snr, rng, "eval", rate, str(noise_folder(opts.nstdb, opts.data))
            )
            noisy = clean.with_signal(signal, f"+ NSTDB {opts.noise} at {opts.snr:g} dB")
        suptitle = f"{record.record_id} · {opts.ckpt.name} ({opts.which}) · PCA colours fitted on {fitted_on}"
        fig = picture(backbones, clean, noisy, pcas, opts.seconds, suptitle, opts.dpi)
        written.append(write_png(fig, out_dir / png_name(record.record_id, opts)))
    return written
