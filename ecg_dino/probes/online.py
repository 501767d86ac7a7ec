"""Online probe: the learning curve during pretraining, as DINO-family code evaluates its teacher while training.

Every ``every_n_steps`` (and at the first step, so the curve starts at the random-init twin) the teacher backbone
embeds fixed small labelled sets, a linear head is fitted by 2-fold cross-fitting (each half fits a head that
scores the other half; folds by record or patient), and the macro one-vs-rest AUROC over the pooled held-out
scores is logged as ``online_probe/<set>/auroc``:

- ``cinc2017``: the 500 CinC-2017 validation records (A04501–A05000), 4 classes (N, A, O, ~), optionally with
  a fixed class-stratified draw of training records added to both fits (``cinc2017_train_records``);
- ``ptbxl``: PTB-XL fold 9 records, the 5 diagnostic superclasses (multi-label);
- ``mitbih``: at most ``beats_per_class`` beats of each of N, S, V from the MIT-BIH DS1 records, patient-wise
  folds (DS1's beats are unlabelled pretraining data; DS2 is never read). F is left out: one DS1 patient (208)
  holds 373 of its 415 beats, so no patient-wise fold pair holds it on both sides.

Records are cut into non-overlapping crops of the pretraining's global crop length; a record's feature is its
crops' mean of class token ‖ mean patch token. A beat's is the class token ‖ the lead-averaged tokens of the
R patch ± 1 of a beat-centred window (as ``probe-mitbih``). The head is ``probes.linear.fit_head`` with a fixed L2
(no selection on the scored half). Under FSDP2 every rank runs the same forwards (the sharded teacher needs all
ranks for its all-gathers); rank 0 fits the heads and logs. ``online_probe/cost_fraction`` is the share of wall
time spent here since the fit began.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch

from datamodules.readers import make_reader
from datamodules.readers.cinc2017 import CLASSES as CINC2017_CLASSES
from ecg_dino.features.beats import beat_table, beat_window_starts
from ecg_dino.leads import lead_indices
from ecg_dino.model.pooling import pool
from ecg_dino.model.vit import ECGViT
from ecg_dino.probes import mitbih, ptbxl
from ecg_dino.probes.cinc2017 import stratified_subset
from ecg_dino.probes.linear import balanced_class_weights, fit_head, standardiser
from ecg_dino.probes.metrics import masked_macro_auroc, one_hot
from ecg_dino.signal import resample
from ecg_dino.splits import MITDB_DS1

log = logging.getLogger(__name__)


@dataclass
class ProbeSet:
    """Fixed crops of one labelled set at the model's rate, and what each crop belongs to."""

    name: str
    signal: np.ndarray  # float32 [C, L, T]
    lead_ids: np.ndarray  # int64 [C, L]
    lead_mask: np.ndarray  # bool [C, L]
    valid_samples: np.ndarray  # int64 [C]
    item: np.ndarray  # int64 [C]: the record or beat each crop belongs to
    labels: np.ndarray  # [N] class indices, or [N, K] multi-hot
    folds: np.ndarray  # int64 [N] in {0, 1}
    multilabel: bool
    centre_patch: np.ndarray | None = None  # int64 [C]: beat sets pool the R patch ± 1 instead of all patches

    @property
    def num_items(self) -> int:
        return len(self.labels)


def record_crops(signals: list[np.ndarray], leads: list[tuple[str, ...]], crop_samples: int) -> tuple[np.ndarray, ...]:
    """Non-overlapping crops of each record [L_i, T_i] (the tail shorter than a crop dropped unless it is the only
    one, then zero-padded and marked by ``valid_samples``), leads padded to the widest record."""
    width = max(s.shape[0] for s in signals)
    crops, ids, mask, valid, item = [], [], [], [], []
    for i, (s, names) in enumerate(zip(signals, leads)):
        n = max(1, s.shape[1] // crop_samples)
        for k in range(n):
            window = s[:, k * crop_samples : (k + 1) * crop_samples]
            crop = np.zeros((width, crop_samples), np.float32)
            crop[: s.shape[0], : window.shape[1]] = window
            crops.append(crop)
            ids.append(np.pad(lead_indices(names), (0, width - len(names))))
            mask.append(np.arange(width) < len(names))
            valid.append(window.shape[1])
            item.append(i)
    return np.stack(crops), np.stack(ids), np.stack(mask), np.array(valid), np.array(item)


TRAIN_ONLY = 2  # the fold value of items that fit both heads and are never scored


def alternate_folds(labels: np.ndarray) -> np.ndarray:
    """Folds 0/1 alternating within each class (by first label for multi-hot rows), so both folds hold each."""
    key = labels.argmax(1) if labels.ndim == 2 else labels
    folds = np.zeros(len(key), np.int64)
    for k in np.unique(key):
        idx = np.flatnonzero(key == k)
        folds[idx[1::2]] = 1
    return folds


def cinc2017_set(
    root: Path, rate_hz: float, crop_samples: int, max_records: int | None = None, train_records: int = 0
) -> ProbeSet:
    """The CinC-2017 validation records (never the test split), scored by 2-fold cross-fitting; with
    ``train_records``, also that many training records (a class-stratified draw, fixed) in every fold's fit."""
    val_reader = make_reader("cinc2017", root, splits=["val"], window_seconds=0)
    refs = [r for r in val_reader.list_records() if not r.problem][:max_records]
    records = [val_reader.load(ref) for ref in refs]
    labels = np.array([CINC2017_CLASSES.index(ref.labels["rhythm"]) for ref in refs])
    folds = alternate_folds(labels)
    if train_records:
        train_reader = make_reader("cinc2017", root, splits=["train"], window_seconds=0)
        train = [r for r in train_reader.list_records() if not r.problem]
        train_labels = np.array([CINC2017_CLASSES.index(ref.labels["rhythm"]) for ref in train])
        keep = stratified_subset(train_labels, min(1.0, train_records / len(train)), seed=0)
        records += [train_reader.load(train[i]) for i in keep]
        labels = np.concatenate([labels, train_labels[keep]])
        folds = np.concatenate([folds, np.full(len(keep), TRAIN_ONLY)])
    signals = [resample(r.signal, r.sample_rate_hz, rate_hz) for r in records]
    crops = record_crops(signals, [r.leads for r in records], crop_samples)
    return ProbeSet("cinc2017", *crops, labels=labels, folds=folds, multilabel=False)


def ptbxl_set(root: Path, rate_hz: float, crop_samples: int, max_records: int | None = None) -> ProbeSet:
    """PTB-XL fold 9 (the benchmark's validation fold), diagnostic superclasses; records without one dropped."""
    split = ptbxl.PTBXLSplit.load(root)
    y, _ = ptbxl.label_matrix(split.codes, ptbxl.read_statements(root), "superdiagnostic")
    idx = [i for i in split.indices("val") if y[i].any()][:max_records]
    records = [split.reader.load(split.refs[i]) for i in idx]
    signals = [resample(r.signal, r.sample_rate_hz, rate_hz) for r in records]
    crops = record_crops(signals, [r.leads for r in records], crop_samples)
    folds = (np.arange(len(idx)) % 2).astype(np.int64)  # ptbxl_database.csv order: patients interleave
    return ProbeSet("ptbxl", *crops, labels=y[idx], folds=folds, multilabel=True)


def mitbih_set(root: Path, rate_hz: float, patch_samples: int, beats_per_class: int = 100, seed: int = 0) -> ProbeSet:
    """Beat-centred windows of at most ``beats_per_class`` DS1 beats of each of N, S, V; folds by patient."""
    records = mitbih.read_records(root, MITDB_DS1)
    beats = beat_table(records)
    keep = np.flatnonzero(np.isin(beats.label, [0, 1, 2]))
    beats = beats.take(keep[mitbih.stratified_subsample(beats.label[keep], beats_per_class, seed)])
    fold_one = mitbih.validation_records(beats, len(MITDB_DS1) // 2, seed, required=(0, 1, 2))
    window = 7 * patch_samples
    crops, ids, centre, order = [], [], [], []
    for record in records:
        rows = np.flatnonzero(beats.record_id == record.record_id)
        if not len(rows):
            continue
        signal = resample(record.signal, record.sample_rate_hz, rate_hz)
        r_model = np.round(beats.sample[rows] * rate_hz / record.sample_rate_hz).astype(np.int64)
        starts, c = beat_window_starts(r_model, signal.shape[1], window, patch_samples)
        crops.append(signal[:, starts[:, None] + np.arange(window)].transpose(1, 0, 2))  # [n, L, window]
        ids.append(np.tile(lead_indices(record.leads), (len(rows), 1)))
        centre.append(c)
        order.append(rows)
    signal, lead_ids, order = np.concatenate(crops), np.concatenate(ids), np.concatenate(order)
    return ProbeSet(
        "mitbih",
        signal=signal.astype(np.float32),
        lead_ids=lead_ids,
        lead_mask=np.ones(lead_ids.shape, bool),
        valid_samples=np.full(len(signal), window),
        item=np.arange(len(signal)),
        labels=beats.label[order],
        folds=np.isin(beats.record_id[order], fold_one).astype(np.int64),
        multilabel=False,
        centre_patch=np.concatenate(centre),
    )


@torch.no_grad()
def embed_set(
    backbone: ECGViT, probe_set: ProbeSet, batch_size: int, forward_context: Callable[[], AbstractContextManager]
) -> np.ndarray:
    """Item features [N, F]: per-crop class token ‖ pooled patch tokens, averaged over each item's crops.

    ``forward_context`` makes the precision context of each forward (the trainer's, e.g. bf16 autocast)."""
    device = next(backbone.parameters()).device
    feats = []
    for i in range(0, len(probe_set.signal), batch_size):
        s = slice(i, i + batch_size)
        with forward_context():
            out = backbone.forward_features(
                torch.from_numpy(probe_set.signal[s]).to(device),
                torch.from_numpy(probe_set.lead_ids[s]).to(device),
                torch.from_numpy(probe_set.lead_mask[s]).to(device),
                torch.from_numpy(probe_set.valid_samples[s]).to(device),
            )
        if probe_set.centre_patch is None:
            pooled = pool(out, "mean")  # [B, D]
        else:
            tokens = pool(out, "lead_mean")  # [B, P, D]
            near = torch.from_numpy(probe_set.centre_patch[s]).to(device)[:, None] + torch.arange(-1, 2, device=device)
            pooled = tokens.gather(1, near[..., None].expand(-1, -1, tokens.shape[-1])).flatten(1)  # [B, 3D]
        feats.append(torch.cat([pool(out, "cls"), pooled], dim=1).cpu().numpy())
    crop_feats = np.concatenate(feats)
    sums = np.zeros((probe_set.num_items, crop_feats.shape[1]))
    np.add.at(sums, probe_set.item, crop_feats)
    return sums / np.bincount(probe_set.item, minlength=probe_set.num_items)[:, None]


def cross_fitted_auroc(x: np.ndarray, probe_set: ProbeSet, l2: float) -> float:
    """Macro AUROC of 2-fold cross-fitted linear heads over the items of folds 0 and 1 (labels with both
    classes); ``TRAIN_ONLY`` items join both fits and are never scored."""
    K = probe_set.labels.shape[1] if probe_set.multilabel else int(probe_set.labels.max()) + 1
    scores = np.zeros((probe_set.num_items, K))
    for fold in (0, 1):
        train, test = probe_set.folds != fold, probe_set.folds == fold
        mean, std = standardiser(x[train])
        y = probe_set.labels[train]
        weights = None if probe_set.multilabel else balanced_class_weights(y, K)
        w, b = fit_head((x[train] - mean) / std, y, probe_set.multilabel, l2, weights, max_iter=100)
        scores[test] = ((x[test] - mean) / std) @ w + b
    target = probe_set.labels if probe_set.multilabel else one_hot(probe_set.labels, K)
    scored = probe_set.folds != TRAIN_ONLY
    return masked_macro_auroc(target[scored], scores[scored])[0]


class OnlineProbe(L.Callback):
    """Log ``online_probe/<set>/auroc`` of the teacher at step 0 and every ``every_n_steps`` steps.

    Each data folder is optional (None skips that set); ``crop_seconds`` None reads the data module's
    ``multicrop.global_crop_seconds``. ``cinc2017_train_records`` adds that many CinC-2017 training records to
    both heads' fits (the 500 validation records alone give 250 per fit, 15 of them AF: too few to see a change
    that the 4,500-record test probe sees).
    """

    def __init__(
        self,
        every_n_steps: int = 200,
        cinc2017: str | None = None,
        ptbxl: str | None = None,
        mitdb: str | None = None,
        crop_seconds: float | None = None,
        max_records: int | None = None,
        cinc2017_train_records: int = 0,
        beats_per_class: int = 100,
        l2: float = 0.1,
        batch_size: int = 256,
    ) -> None:
        super().__init__()
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps must be positive, got {every_n_steps}")
        self.every_n_steps = every_n_steps
        self.folders = {"cinc2017": cinc2017, "ptbxl": ptbxl, "mitbih": mitdb}
        self.crop_seconds = crop_seconds
        self.max_records = max_records
        self.cinc2017_train_records = cinc2017_train_records
        self.beats_per_class = beats_per_class
        self.l2 = l2
        self.batch_size = batch_size
        self.sets: list[ProbeSet] = []
        self.history: list[dict[str, float]] = []
        self._probe_seconds = 0.0
        self._fit_start = 0.0

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.sets:
            return
        backbone = pl_module.teacher.backbone
        rate, patch = backbone.sample_rate_hz, backbone.patch_samples
        crop_seconds = self.crop_seconds or trainer.datamodule.multicrop.global_crop_seconds
        crop = max(patch, round(crop_seconds * rate) // patch * patch)
        builders = {
            "cinc2017": lambda root: cinc2017_set(root, rate, crop, self.max_records, self.cinc2017_train_records),
            "ptbxl": lambda root: ptbxl_set(root, rate, crop, self.max_records),
            "mitbih": lambda root: mitbih_set(root, rate, patch, self.beats_per_class),
        }
        for name, folder in self.folders.items():
            if folder is not None:
                self.sets.append(builders[name](Path(folder)))
                log.info("online probe %s: %d items, %d crops", name, self.sets[-1].num_items, len(self.sets[-1].item))

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._fit_start = time.perf_counter()
        self._probe_seconds = 0.0
        if trainer.global_step % self.every_n_steps == 0:
            self.evaluate(trainer, pl_module)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: object) -> None:
        step = trainer.global_step
        if step % self.every_n_steps == 0 or step == trainer.max_steps:
            self.evaluate(trainer, pl_module)

    def evaluate(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, float]:
        """Embed every set with the teacher on every rank; rank 0 fits, logs and returns the AUROCs."""
        if self.history and self.history[-1]["step"] == trainer.global_step:
            return self.history[-1]
        t0 = time.perf_counter()
        backbone = pl_module.teacher.backbone
        forward_context = trainer.precision_plugin.forward_context
        features = [embed_set(backbone, s, self.batch_size, forward_context) for s in self.sets]
        metrics: dict[str, float] = {}
        if trainer.is_global_zero:
            for probe_set, x in zip(self.sets, features):
                metrics[f"online_probe/{probe_set.name}/auroc"] = cross_fitted_auroc(x, probe_set, self.l2)
        self._probe_seconds += time.perf_counter() - t0
        elapsed = max(time.perf_counter() - self._fit_start, 1e-9)
        metrics["online_probe/seconds"] = time.perf_counter() - t0
        metrics["online_probe/cost_fraction"] = self._probe_seconds / elapsed
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=trainer.global_step)
            log.info("online probe at step %d: %s", trainer.global_step, metrics)
        self.history.append({"step": trainer.global_step, **metrics})
        return self.history[-1]
