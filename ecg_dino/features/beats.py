"""Beat embeddings: the beats of a record (annotated, else detected R peaks) and one feature vector per beat.

AAMI EC57 classes: N (N, L, R, e, j), S (A, a, J, S), V (V, E), F (F), Q (/, f, Q); every other symbol
(rhythm changes, noise, ``!`` flutter waves, ``|``, ``x``, ``+`` …) is not a beat and is ignored. Every annotated
beat is kept, the first and last included.

A beat's embedding: one beat-centred window of ``window_patches`` patches (odd; the R peak sits in the
middle of the centre patch) goes through the backbone; its class token and the patch tokens of the R patch
and its two neighbours (each averaged over leads) are concatenated: 4·D features. ``ecg-dino embed --beats``
and the MIT-BIH probe both use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datamodules.record import BadRecordError, ECGRecord
from ecg_dino.features.records import forward_batch
from ecg_dino.leads import lead_indices
from ecg_dino.model.vit import ECGViT
from ecg_dino.signal import resample

AAMI_CLASSES = ("N", "S", "V", "F", "Q")
SYMBOL_TO_AAMI = {
    **dict.fromkeys("NLRej", 0),
    **dict.fromkeys("AaJS", 1),
    **dict.fromkeys("VE", 2),
    "F": 3,
    **dict.fromkeys("/fQ", 4),
}
FEATURE_PARTS = ("all", "cls", "patches")
FEATURE_KINDS = ("window", "context")


@dataclass(frozen=True)
class BeatOptions:
    """How beats become embeddings; part of the cache key. ``features``: ``window`` (a beat-centred window of
    ``window_patches`` patches per beat) or ``context`` (sliding crops of ``crop_seconds``, the pretraining's
    global crop length, every ``stride_fraction`` of a crop; ``ecg_dino.features.context``)."""

    window_patches: int = 7
    precision: str = "fp32"
    batch_size: int = 512
    features: str = "window"
    crop_seconds: float | None = None
    stride_fraction: float = 0.5

    def __post_init__(self) -> None:
        if self.window_patches < 3 or self.window_patches % 2 == 0:
            raise ValueError(f"window_patches must be odd and at least 3, got {self.window_patches}")
        if self.features not in FEATURE_KINDS:
            raise ValueError(f"features must be one of {FEATURE_KINDS}, got {self.features!r}")
        if not 0 < self.stride_fraction <= 1:
            raise ValueError(f"stride_fraction must be in (0, 1], got {self.stride_fraction}")


@dataclass
class Beats:
    """Beats of several records: record, patient, R-peak sample at the native rate, AAMI class (-1 unknown)."""

    record_id: np.ndarray
    patient_id: np.ndarray
    sample: np.ndarray
    label: np.ndarray

    def __len__(self) -> int:
        return len(self.label)

    def take(self, idx: np.ndarray) -> Beats:
        return Beats(self.record_id[idx], self.patient_id[idx], self.sample[idx], self.label[idx])

    def counts(self) -> dict[str, int]:
        """Beats per AAMI class."""
        return {c: int((self.label == k).sum()) for k, c in enumerate(AAMI_CLASSES)}


def annotated_beats(record: ECGRecord) -> tuple[np.ndarray, np.ndarray]:
    """(R-peak samples, AAMI class indices) of the record's beat annotations; non-beat symbols dropped."""
    ann = record.annotations
    keep = [i for i, s in enumerate(ann["symbol"]) if s in SYMBOL_TO_AAMI]
    samples = np.asarray(ann["sample"], dtype=np.int64)[keep]
    return samples, np.array([SYMBOL_TO_AAMI[ann["symbol"][i]] for i in keep], dtype=np.int64)


def dropped_symbols(records: list[ECGRecord]) -> dict[str, int]:
    """How often each annotation symbol that is no AAMI beat occurs (rhythm changes, noise, symbols another
    database uses that MIT-BIH does not): what a cross-database test leaves out, for its report."""
    counts: dict[str, int] = {}
    for record in records:
        for symbol in (record.annotations or {}).get("symbol", []):
            if symbol not in SYMBOL_TO_AAMI:
                counts[symbol] = counts.get(symbol, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def detected_beats(record: ECGRecord) -> tuple[np.ndarray, np.ndarray]:
    """R peaks found by ``neurokit2.ecg_peaks`` on the first lead (unannotated data); classes unknown (-1)."""
    import neurokit2 as nk

    rate = round(record.sample_rate_hz)
    clean = nk.ecg_clean(record.signal[0], sampling_rate=rate)
    _, info = nk.ecg_peaks(clean, sampling_rate=rate)
    samples = np.asarray(info["ECG_R_Peaks"], dtype=np.int64)
    return samples, np.full(len(samples), -1, dtype=np.int64)


def beat_table(records: list[ECGRecord]) -> Beats:
    """All annotated beats of the records (R peaks detected where a record has no annotations)."""
    parts = [annotated_beats(r) if r.annotations is not None else detected_beats(r) for r in records]
    return Beats(
        record_id=np.concatenate([[r.record_id] * len(s) for r, (s, _) in zip(records, parts)]).astype(object),
        patient_id=np.concatenate([[r.patient_id] * len(s) for r, (s, _) in zip(records, parts)]).astype(object),
        sample=np.concatenate([s for s, _ in parts]),
        label=np.concatenate([lab for _, lab in parts]),
    )


def beat_window_starts(r_samples: np.ndarray, num_samples: int, window: int, patch: int) -> tuple[np.ndarray, ...]:
    """(window starts, index of the patch holding R) for beat-centred windows, shifted inside the record.

    The window starts ``(window/patch)//2 + ½`` patches before R, so R lies mid centre patch; near the
    record's ends the window is shifted inwards and the R patch index moves with it (clamped to keep ±1).
    """
    n_patches = window // patch
    start = r_samples - (n_patches // 2) * patch - patch // 2
    start = np.clip(start, 0, max(0, num_samples - window))
    centre = np.clip((r_samples - start) // patch, 1, n_patches - 2)
    return start, centre


def embed_beats(backbone: ECGViT, record: ECGRecord, r_samples: np.ndarray, options: BeatOptions) -> np.ndarray:
    """Beat features [n, 4·D]: class token ‖ lead-averaged patch tokens of (R patch − 1, R patch, R patch + 1).

    ``r_samples`` are at the record's rate; the record is resampled to the model's rate first.
    """
    rate, patch, batch_size = backbone.sample_rate_hz, backbone.patch_samples, options.batch_size
    signal = resample(record.signal, record.sample_rate_hz, rate)
    r_model = np.round(r_samples * rate / record.sample_rate_hz).astype(np.int64)
    window = options.window_patches * patch
    if signal.shape[1] < window:
        raise BadRecordError(f"{record.record_id}: shorter than one beat window ({options.window_patches} patches)")
    starts, centre = beat_window_starts(r_model, signal.shape[1], window, patch)
    ids = np.asarray(lead_indices(record.leads))
    feats = []
    for i in range(0, len(starts), batch_size):
        s, c = starts[i : i + batch_size], centre[i : i + batch_size]
        windows = signal[:, s[:, None] + np.arange(window)].transpose(1, 0, 2)  # [B, L, window]
        out = forward_batch(backbone, list(windows), [ids] * len(s), options.precision)
        tokens = out["patches"].mean(1)  # [B, P, D] averaged over leads (all present: every window is whole)
        near = np.take_along_axis(tokens, (c[:, None] + np.arange(-1, 2))[:, :, None], axis=1)  # [B, 3, D]
        feats.append(np.concatenate([out["cls"], near.reshape(len(s), -1)], axis=1))
    return np.concatenate(feats) if feats else np.zeros((0, 4 * backbone.embed_dim), np.float32)


def feature_columns(x: np.ndarray, part: str) -> np.ndarray:
    """The columns of beat features [n, 4·D] that ``part`` names: all, the class token, or the three patch
    tokens; probing each part alone shows which one carries the beat information."""
    if part not in FEATURE_PARTS:
        raise ValueError(f"unknown feature part {part!r}; choose from {FEATURE_PARTS}")
    dim = x.shape[1] // 4
    return {"all": x, "cls": x[:, :dim], "patches": x[:, dim:]}[part]
