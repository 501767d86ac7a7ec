"""What a probe run is given: the options every probe shares, each probe's own, and the heads' descriptions.

Every probe also probes the same architecture with random weights (``init_weights()`` under ``seed``) with the
same heads and seeds; embeddings are cached (``cache_dir``), so a rerun with other probe settings does not embed
again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from datamodules.noise import NOISE_TYPES, noise_folder
from ecg_dino.checkpoint import trained_crop_seconds
from ecg_dino.features.backbone import BackboneSpec, CheckpointOptions
from ecg_dino.features.beats import FEATURE_KINDS, FEATURE_PARTS, BeatOptions
from ecg_dino.features.cache import DEFAULT_CACHE
from ecg_dino.features.records import LONG_RULES, EmbedOptions
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
class ProbeOptions(CheckpointOptions):
    """Options every probe shares: the checkpoint, the report, seeds, robustness and the embedding cache."""

    out: Path | None = None
    """report folder (default: <ckpt folder>/<probe name>)"""
    nstdb: Path | None = None
    """NSTDB folder (default: nstdb/ beside the data folder)"""
    seed: int = 0
    """seeds subsets, splits, noise, bootstrap, random init"""
    n_boot: int = 1000
    """bootstrap resamples for the 95 % CIs"""
    robustness: bool = True
    """the noise (and lead-subset) evaluations"""
    noise_types: tuple[str, ...] = field(default=NOISE_TYPES, metadata={"choices": NOISE_TYPES})
    """NSTDB noise types to test"""
    random_init: bool = True
    """the random-init baseline"""
    precision: Literal["fp32", "bf16"] = "fp32"
    """embedding precision"""
    cache_dir: Path | None = DEFAULT_CACHE
    """embedding cache ('' disables it)"""
    step: int = 0
    """TensorBoard step of the scalars"""

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
    """fractions of the training records the linear heads are fitted on"""
    limit: int | None = None
    """only the first N records (of each split): smoke tests"""
    crop_seconds: float = EmbedOptions.crop_seconds
    """the trained crop length"""
    long_rule: str = field(default=EmbedOptions.long_rule, metadata={"choices": LONG_RULES})
    """records longer than a crop: one full-length pass, or sliding crops averaged"""
    batch_size: int = EmbedOptions.batch_size
    """records per embedding batch"""
    head: str = field(default="both", metadata={"choices": tuple(HEADS)})
    """linear: class token ‖ mean patch token, at every fraction, with robustness; attentive: learnable queries
    over the patch tokens (100 % of the labels); both"""
    attentive_queries: int = 4
    """learnable queries of the attentive head (1-4)"""

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
    """PTB-XL folder (ptbxl_database.csv, records500/)"""
    label_sets: tuple[str, ...] = field(default=ptbxl.LABEL_SETS, metadata={"choices": ptbxl.LABEL_SETS})
    """label sets to probe"""
    fractions: tuple[float, ...] = ptbxl.FRACTIONS
    """fractions of the training records the linear heads are fitted on"""
    records_folder: Literal["records500", "records100"] = "records500"
    """PTB-XL sampling folder (500 or 100 Hz)"""


@dataclass(frozen=True, kw_only=True)
class CinC2017ProbeOptions(RecordProbeOptions):
    """``probe-cinc2017``: the CinC-2017 folder; 4 s crops (the CPU experiments' global crop)."""

    cinc2017: Path
    """CinC-2017 folder (REFERENCE.csv, A*.hea/.mat)"""
    fractions: tuple[float, ...] = cinc2017.FRACTIONS
    """fractions of the training records (stratified by class) the linear heads are fitted on"""
    crop_seconds: float = 4.0
    """the trained crop length"""


@dataclass(frozen=True, kw_only=True)
class MITBIHProbeOptions(ProbeOptions):
    """``probe-mitbih``: the records, the paradigm, the beat embedding and the robustness subsample."""

    mitdb: Path
    """MIT-BIH Arrhythmia Database folder"""
    ds1: tuple[str, ...] = MITDB_DS1
    """training records (default: DS1)"""
    ds2: tuple[str, ...] = MITDB_DS2
    """test records (default: DS2)"""
    val_records: int = 5
    """DS1 records held out to choose λ and T"""
    paradigm: Literal["inter", "intra"] = "inter"
    """inter: DS1 -> DS2 patients; intra: each DS2 record's first half of beats -> its second half"""
    features: str = field(default=BeatOptions.features, metadata={"choices": FEATURE_KINDS})
    """window: a beat-centred window per beat; context: the beat's tokens in sliding crops of the pretraining's
    global crop length"""
    window_patches: int = BeatOptions.window_patches
    """patches of the beat-centred window (odd)"""
    crop_seconds: float | None = None
    """context crops (default: the checkpoint's pretraining global crop length)"""
    context_stride: float = BeatOptions.stride_fraction
    """context crops start every this fraction of a crop"""
    batch_size: int = BeatOptions.batch_size
    """beats (window) or crops (context) per embedding batch"""
    part: str = field(default="all", metadata={"choices": FEATURE_PARTS})
    """part of the beat embedding the heads read: class token, R-patch tokens, or both"""
    beat_norm: Literal["record", "none"] = "record"
    """record: each beat's features minus its record's median beat feature (128 beats evenly spaced in time, no
    labels), as RR features are read against the record's mean RR; none: the raw features"""
    with_rr: bool = False
    """also fit each head on the embedding beside the RR-interval features (and report RR alone)"""
    test_dir: Path | None = None
    """another WFDB database with .atr beat annotations: heads fitted on MIT-BIH, tested there"""
    lead_map: tuple[str, ...] = ()
    """OLD=NEW names for test-database leads the vocabulary lacks, e.g. ECG1=MLII"""
    train_on: Literal["ds1", "ds1+ds2"] = "ds1"
    """with --test-dir: the MIT-BIH records that fit the heads"""
    robust_per_class: int = 500
    """noisy DS2 evaluations use at most this many beats per class (seeded)"""

    def __post_init__(self) -> None:
        if self.train_on not in ("ds1", "ds1+ds2"):
            raise ValueError(f"train_on must be ds1 or ds1+ds2, got {self.train_on!r}")
        if self.test_dir is not None and self.paradigm != "inter":
            raise ValueError("a test database (--test-dir) takes the inter-patient paradigm")

    def beat_options(self) -> BeatOptions:
        """How beats become features; context crops default to the length the checkpoint was pretrained on."""
        crop = self.crop_seconds
        if self.features == "context" and crop is None:
            crop = trained_crop_seconds(self.ckpt)
        return BeatOptions(
            self.window_patches, self.precision, self.batch_size, self.features, crop, self.context_stride
        )
