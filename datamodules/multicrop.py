"""DINO multi-crop for ECGs: global crops on (most of) the leads, local crops on short lead subsets.

A sample leaving a worker is ``{"global": crops, "local": crops, "sample_rate_hz": float}`` with numpy
``crops = {"signal": [C, L, T], "lead_ids": [C, L], "lead_mask": [C, L], "valid_samples": [C]}``; present
leads come first in each crop, absent ones are zero with ``lead_mask`` False and ``lead_ids`` 0.
``collate_multicrop`` pads leads across the batch and lays the crops out crop-major (docs/INTERFACES.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

GROUPS = ("global", "local")
SIGNAL_KEYS = ("signal", "teacher_signal")  # teacher_signal: the global crops before noise (augment.py)


def _time_gather(signal: np.ndarray, lead_idx: np.ndarray, crop_samples: int, starts: np.ndarray):
    """Cut one crop per row of ``lead_idx`` [C, L] at ``starts`` [C]; short records are zero-padded."""
    n_samples = signal.shape[1]
    n_crops = lead_idx.shape[0]
    if n_samples < crop_samples:
        signal = np.pad(signal, ((0, 0), (0, crop_samples - n_samples)))
    windows = np.lib.stride_tricks.sliding_window_view(signal, crop_samples, axis=1)  # [L, starts, T] view
    crops = windows[lead_idx, starts[:, None]]  # [C, L, T]
    valid = np.full(n_crops, min(n_samples, crop_samples), dtype=np.int64)
    return crops, valid


def _crops(signal, lead_ids, lead_idx, lead_mask, crop_samples, starts) -> dict[str, np.ndarray]:
    crops, valid = _time_gather(signal, lead_idx, crop_samples, starts)
    crops *= lead_mask[:, :, None]
    return {
        "signal": crops.astype(np.float32, copy=False),
        "lead_ids": np.where(lead_mask, lead_ids[lead_idx], 0).astype(np.int64),
        "lead_mask": lead_mask,
        "valid_samples": valid,
    }


def crop_starts(
    n_samples: int, crop_samples: int, n_crops: int, rng: np.random.Generator, span: tuple[int, int] | None = None
) -> np.ndarray:
    """``n_crops`` random crop starts such that each crop lies inside ``span`` (default: the whole signal);
    where the span is shorter than a crop, the crop starts at the span's start."""
    lo, hi = span if span is not None else (0, n_samples)
    return lo + rng.integers(0, max(min(hi, n_samples) - lo - crop_samples, 0) + 1, size=n_crops)


class MultiCrop:
    """Random global and local crops of one ECG window (DINO views), with lead dropout.

    Global crops (``global_crop_seconds``) keep every lead except that each lead is dropped with
    probability ``global_lead_drop`` independently per crop, and at most ``global_max_leads`` (None: no cap)
    stay, always keeping ``global_min_leads`` (or all,
    if the record has fewer). Local crops (``local_crop_seconds``) each take a random subset of
    ``local_min_leads``..``local_max_leads`` leads. By default every crop has its own random time offset.

    ``global_shift_seconds`` (None: independent offsets) aligns the global crops in time: they share one random
    start, each moved by at most ± that much, and the local crops are cut inside the span the global crops
    cover. Views then hold the same beats, so the class token is not taught to ignore a beat (an ectopic one,
    say) that one view holds and the other does not; the invariance left is to leads, noise, gain and jitter.
    """

    def __init__(
        self,
        global_crop_seconds: float = 6.0,
        local_crop_seconds: float = 2.0,
        n_global_crops: int = 2,
        n_local_crops: int = 8,
        global_lead_drop: float = 0.25,
        global_min_leads: int = 1,
        global_max_leads: int | None = None,
        local_min_leads: int = 1,
        local_max_leads: int = 4,
        global_shift_seconds: float | None = None,
    ) -> None:
        if not 0.0 <= global_lead_drop < 1.0:
            raise ValueError(f"global_lead_drop must be in [0, 1), got {global_lead_drop}")
        if not 1 <= local_min_leads <= local_max_leads:
            raise ValueError(f"need 1 <= local_min_leads <= local_max_leads, got {local_min_leads}, {local_max_leads}")
        if global_min_leads < 1 or n_global_crops < 1 or n_local_crops < 0:
            raise ValueError("need global_min_leads >= 1, n_global_crops >= 1 and n_local_crops >= 0")
        if global_shift_seconds is not None and global_shift_seconds < 0:
            raise ValueError(f"global_shift_seconds must be >= 0 or None, got {global_shift_seconds}")
        self.global_crop_seconds = global_crop_seconds
        self.local_crop_seconds = local_crop_seconds
        self.n_global_crops = n_global_crops
        self.n_local_crops = n_local_crops
        self.global_lead_drop = global_lead_drop
        self.global_min_leads = global_min_leads
        self.global_max_leads = global_max_leads
        self.local_min_leads = local_min_leads
        self.local_max_leads = local_max_leads
        self.global_shift_seconds = global_shift_seconds

    def crop_samples(self, sample_rate_hz: float) -> tuple[int, int]:
        """(global, local) crop lengths in samples at ``sample_rate_hz``."""
        return round(self.global_crop_seconds * sample_rate_hz), round(self.local_crop_seconds * sample_rate_hz)

    def __call__(
        self, signal: np.ndarray, lead_ids: np.ndarray, sample_rate_hz: float, rng: np.random.Generator
    ) -> dict[str, Any]:
        """``signal`` float32 [L, T] mV with ``lead_ids`` [L] -> one multi-crop sample (see module doc)."""
        n_leads = signal.shape[0]
        t_global, t_local = self.crop_samples(sample_rate_hz)

        # Global: drop leads at random, but the top-`keep_min` leads by a random score always stay.
        keep_min = min(self.global_min_leads, n_leads)
        score = rng.random((self.n_global_crops, n_leads))
        keep = score >= self.global_lead_drop
        forced = np.argsort(-(score + keep), axis=1)[:, :keep_min]
        np.put_along_axis(keep, forced, True, axis=1)
        width = n_leads
        if self.global_max_leads is not None and self.global_max_leads < n_leads:
            # Keep the `global_max_leads` best-scored of the kept leads: a narrower crop pads less in a batch.
            width = max(self.global_max_leads, keep_min)
            top = np.argsort(-(keep * (1.0 + score)), axis=1)[:, :width]  # kept leads rank above dropped ones
            in_top = np.zeros_like(keep)
            np.put_along_axis(in_top, top, True, axis=1)
            keep &= in_top
        global_idx = np.argsort(~keep, axis=1, kind="stable")[:, :width]  # present leads first, record order
        global_mask = np.take_along_axis(keep, global_idx, axis=1)

        # Local: a random permutation of the leads, of which the first k (drawn per crop) are present.
        max_leads = min(self.local_max_leads, n_leads)
        n_present = rng.integers(min(self.local_min_leads, max_leads), max_leads + 1, size=self.n_local_crops)
        local_idx = np.argsort(rng.random((self.n_local_crops, n_leads)), axis=1)[:, :max_leads]
        local_mask = np.arange(max_leads)[None, :] < n_present[:, None]

        global_starts, local_span = self._global_starts(signal.shape[1], t_global, sample_rate_hz, rng)
        local_starts = crop_starts(signal.shape[1], t_local, self.n_local_crops, rng, local_span)
        return {
            "global": _crops(signal, lead_ids, global_idx, global_mask, t_global, global_starts),
            "local": _crops(signal, lead_ids, local_idx, local_mask, t_local, local_starts),
            "sample_rate_hz": float(sample_rate_hz),
        }

    def _global_starts(
        self, n_samples: int, t_global: int, sample_rate_hz: float, rng: np.random.Generator
    ) -> tuple[np.ndarray, tuple[int, int] | None]:
        """Global crop starts and the span the local crops are cut from (None: anywhere)."""
        if self.global_shift_seconds is None:
            return crop_starts(n_samples, t_global, self.n_global_crops, rng), None
        shift = round(self.global_shift_seconds * sample_rate_hz)
        last = max(n_samples - t_global, 0)
        shared = int(crop_starts(n_samples, t_global, 1, rng)[0])
        starts = np.clip(shared + rng.integers(-shift, shift + 1, size=self.n_global_crops), 0, last)
        return starts, (int(starts.min()), int(starts.max()) + t_global)


def _collate_group(crops: Sequence[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    """Stack one crop group of B samples crop-major (row c*B + b), padding leads to the batch maximum."""
    B = len(crops)
    C, _, T = crops[0]["signal"].shape
    L = max(c["signal"].shape[1] for c in crops)
    signals = {key: np.zeros((C, B, L, T), dtype=np.float32) for key in SIGNAL_KEYS if key in crops[0]}
    lead_ids = np.zeros((C, B, L), dtype=np.int64)
    lead_mask = np.zeros((C, B, L), dtype=bool)
    valid = np.empty((C, B), dtype=np.int64)
    for b, c in enumerate(crops):
        n = c["signal"].shape[1]
        for key, signal in signals.items():
            signal[:, b, :n] = c[key]
        lead_ids[:, b, :n] = c["lead_ids"]
        lead_mask[:, b, :n] = c["lead_mask"]
        valid[:, b] = c["valid_samples"]
    return {
        **{key: torch.from_numpy(signal.reshape(C * B, L, T)) for key, signal in signals.items()},  # [N, L, T]
        "lead_ids": torch.from_numpy(lead_ids.reshape(C * B, L)),
        "lead_mask": torch.from_numpy(lead_mask.reshape(C * B, L)),
        "valid_samples": torch.from_numpy(valid.reshape(C * B)),
    }


def collate_multicrop(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Multi-crop samples -> the pretraining batch of docs/INTERFACES.md."""
    rates = {s["sample_rate_hz"] for s in samples}
    if len(rates) != 1:
        raise ValueError(f"samples in one batch have different sample rates: {sorted(rates)}")
    batch: dict[str, Any] = {group: _collate_group([s[group] for s in samples]) for group in GROUPS}
    batch["sample_rate_hz"] = rates.pop()
    batch["n_global_crops"] = samples[0]["global"]["signal"].shape[0]
    batch["n_local_crops"] = samples[0]["local"]["signal"].shape[0]
    return batch
