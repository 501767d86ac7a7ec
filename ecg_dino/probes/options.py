"""What a probe run is given: the options every probe shares, each probe's own, and the heads' descriptions.

Every probe also probes the same architecture with random weights (``init_weights()`` under ``seed``) with the
same heads and seeds; embeddings are cached (``cache_dir``), so a rerun with other probe settings does not embed
again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from datamodules.noise import NOISE_TYPES, noise_folder
from ecg_dino.features.backbone import BackboneSpec
from ecg_dino.features.beats import BeatOptions
from ecg_dino.features.cache import DEFAULT_CACHE
from ecg_dino.features.records import EmbedOptions
from ecg_dino.probes import cinc2017, ptbxl
from ecg_dino.splits import MITDB_DS1, MITDB_DS2

HEADS = {"linear": ("linear",), "attentive": ("attentive",), "both": ("linear", "attentive")}
_LINEAR_TEXT = "linear: L2-penalised logistic regression, L2 chosen by validation macro AUROC"
_ATTENTIVE_TEXT = (
    "attentive: {queries} learnable queries, 4-head cross-attention over every lead × patch token of the record "
    "(time code added; padding and absent leads masked), linear classifier; AdamW, weight decay and epoch chosen "
    "by validation macro AUROC"
)
HEAD_TEXT = {
    "linear": _LINEAR_TEXT,
    "attentive": _ATTENTIVE_TEXT,
    "both": f"{_LINEAR_TEXT}; {_ATTENTIVE_TEXT}",
}


@dataclass(frozen=True, kw_only=True)
class ProbeOptions:
    """Options every probe shares: the checkpoint, the report, seeds, robustness and the embedding cache."""

    ckpt: Path
    out: Path | None = None  # report folder; None: ``<ckpt folder>/<probe name>``
    which: str = "teacher"
    nstdb: Path | None = None  # NSTDB folder; None: ``nstdb/`` beside the data folder
    seed: int = 0  # seeds subsets, splits, noise, bootstrap, random init
    n_boot: int = 1000
    robustness: bool = True  # the noise (and lead-subset) evaluations
    noise_types: tuple[str, ...] = NOISE_TYPES
    random_init: bool = True  # the random-init baseline
    precision: str = "fp32"
    cache_dir: Path | None = DEFAULT_CACHE
    step: int = 0  # TensorBoard step of the scalars

    def report_dir(self, name: str) -> Path:
        """``out``, else ``<ckpt folder>/<name>``."""
        return self.out or self.ckpt.parent / name

    def backbone_specs(self) -> dict[str, BackboneSpec]:
        """The checkpoint's backbone and, unless disabled, the same architecture randomly initialised."""
        specs = {"model": BackboneSpec(self.ckpt, self.which)}
        if self.random_init:
            specs["random_init"] = BackboneSpec(self.ckpt, self.which, random_init_seed=self.seed)
        return specs

    def noise_folder(self, data: Path) -> Path:
        """``nstdb``, else ``nstdb/`` beside the data folder, else ``datamodules.noise``'s default."""
        return noise_folder(self.nstdb, data)


@dataclass(frozen=True, kw_only=True)
class RecordProbeOptions(ProbeOptions):
    """A probe of whole records: label fractions, heads, and how records are embedded."""

    fractions: tuple[float, ...] = (0.01, 0.1, 1.0)
    limit: int | None = None  # only the first N records (of each split) (smoke tests)
    crop_seconds: float = EmbedOptions.crop_seconds  # the trained crop length
    long_rule: str = EmbedOptions.long_rule
    batch_size: int = EmbedOptions.batch_size
    head: str = "both"  # a key of ``HEADS``
    attentive_queries: int = 4

    @property
    def heads(self) -> tuple[str, ...]:
        """The heads to fit."""
        return HEADS[self.head]

    def embed_options(self) -> EmbedOptions:
        """How records become features; patch tokens only when the attentive head reads them."""
        return EmbedOptions(
            crop_seconds=self.crop_seconds,
            long_rule=self.long_rule,
            precision=self.precision,
            batch_size=self.batch_size,
            patches="attentive" in self.heads,
        )

    def head_text(self) -> str:
        """The report's description of the heads."""
        return HEAD_TEXT[self.head].format(queries=self.attentive_queries)


@dataclass(frozen=True, kw_only=True)
class PTBXLProbeOptions(RecordProbeOptions):
    """``probe-ptbxl``: the PTB-XL folder, the label sets and the sampling folder."""

    ptbxl: Path
    label_sets: tuple[str, ...] = ptbxl.LABEL_SETS
    fractions: tuple[float, ...] = ptbxl.FRACTIONS
    records_folder: str = "records500"


@dataclass(frozen=True, kw_only=True)
class CinC2017ProbeOptions(RecordProbeOptions):
    """``probe-cinc2017``: the CinC-2017 folder; 4 s crops (the CPU experiments' global crop)."""

    cinc2017: Path
    fractions: tuple[float, ...] = cinc2017.FRACTIONS
    crop_seconds: float = 4.0


@dataclass(frozen=True, kw_only=True)
class MITBIHProbeOptions(ProbeOptions):
    """``probe-mitbih``: the records, the paradigm, the beat embedding and the robustness subsample."""

    mitdb: Path
    ds1: tuple[str, ...] = MITDB_DS1
    ds2: tuple[str, ...] = MITDB_DS2
    val_records: int = 5  # DS1 records held out to choose λ and T
    paradigm: str = "inter"  # inter: DS1 -> DS2 patients; intra: each DS2 record's first half -> its second half
    window_patches: int = BeatOptions.window_patches
    batch_size: int = BeatOptions.batch_size
    features: str = "all"  # part of the beat embedding the heads read (``features.beats.FEATURE_PARTS``)
    robust_per_class: int = 500  # noisy DS2 evaluations use at most this many beats per class (seeded)
