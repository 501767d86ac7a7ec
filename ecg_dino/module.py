"""DINOv3 pretraining of the ECG ViT as a LightningModule: student, EMA teacher, Gram teacher and losses.

The step is laid out as DINOv3's ``SSLMetaArch``: the batch's views, teacher targets (Sinkhorn-Knopp), Gram
teacher targets, the student's outputs, one method per loss, the diagnostics, and ``compute_losses`` assembling them.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import Any, NamedTuple

import lightning as L
import torch
from torch import nn

from callbacks.ema_teacher import EMATeacher, local_tensor
from callbacks.nonfinite_guard import NonFiniteGuard
from callbacks.rng_state import RNGState
from ecg_dino import parallel
from ecg_dino.hparams import (
    GROUPS,
    DinoArgs,
    GramArgs,
    HeadArgs,
    IBOTArgs,
    KoLeoArgs,
    OptimArgs,
    PretrainConfig,
    TeacherArgs,
    grouped,
)
from ecg_dino.loss import DINOLoss, GramLoss, KoLeoLoss, iBOTPatchLoss
from ecg_dino.masking import BlockMaskGenerator
from ecg_dino.model.heads import DINOHead
from ecg_dino.model.vit import ECGViT, build_vit
from ecg_dino.optim import param_groups
from ecg_dino.schedules import at, cosine_schedule, linear_warmup_constant

Crops = dict[str, torch.Tensor]


class Views(NamedTuple):
    """One batch as the step reads it (crop-major: row c*B + b is crop c of sample b)."""

    student_global: Crops
    teacher_global: Crops  # the global crops before noise when the data module keeps them (clean_teacher_view)
    local: Crops
    patch_mask: torch.Tensor  # bool [G*B, L, P]: the global crops' patches of real signal
    n_global: int
    n_local: int
    B: int


class DinoPretrainModule(L.LightningModule):
    """Self-distillation on ECG multi-crops: DINO class-token loss (Sinkhorn-Knopp teacher), iBOT masked
    patches, KoLeo on student class tokens and, from ``gram.start_step``, Gram anchoring of patch similarities.

    The teacher is updated by the ``callbacks.EMATeacher`` callback, never by the optimizer. Teacher and Gram
    teacher are built without drop-path and kept in eval mode for every step, so their targets are deterministic.
    """

    def __init__(
        self,
        backbone: dict[str, Any] | None = None,
        head: HeadArgs = HeadArgs(),
        dino: DinoArgs = DinoArgs(),
        ibot: IBOTArgs = IBOTArgs(),
        koleo: KoLeoArgs = KoLeoArgs(),
        gram: GramArgs = GramArgs(),
        teacher: TeacherArgs = TeacherArgs(),
        optim: OptimArgs = OptimArgs(),
        student_temp: float = 0.1,
        seed: int = 0,
        activation_checkpointing: bool = False,
        max_nonfinite_steps: int = 10,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()  # every argument; under LightningCLI also its class path (load_from_checkpoint)
        self.cfg = PretrainConfig.of(
            head=head, dino=dino, ibot=ibot, koleo=koleo, gram=gram, teacher=teacher, optim=optim
        )
        self.save_hyperparameters(asdict(self.cfg))  # the groups as plain dicts: checkpoints load weights-only
        self.backbone_config = {"size": "tiny", **(backbone or {})}
        self.student = self._build_branch()
        self.teacher = self._build_branch(drop_path_rate=0.0)
        self.gram_teacher = (
            nn.ModuleDict({"backbone": self._build_backbone(drop_path_rate=0.0)})
            if self.cfg.gram.loss_weight > 0
            else None
        )
        for branch in self._teachers():
            branch.requires_grad_(False)
        self.init_weights()
        self.dino_loss = DINOLoss(student_temp)
        self.ibot_loss = iBOTPatchLoss(student_temp)
        self.koleo_loss = KoLeoLoss(across_ranks=self.cfg.koleo.across_ranks)
        self.gram_loss = GramLoss(apply_norm=True)
        self.mask_generator = BlockMaskGenerator(self.cfg.ibot.mask_sample_probability, self.cfg.ibot.mask_ratio_range)
        self.schedules: dict[str, Any] = {}

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path: str | Path, *args: Any, **kwargs: Any) -> DinoPretrainModule:
        """Lightning's, for checkpoints from before the grouping too: their flat hyperparameters go into groups."""
        hparams = torch.load(checkpoint_path, map_location="cpu", weights_only=True).get("hyper_parameters", {})
        groups = {k: v for k, v in grouped(hparams).items() if k in GROUPS}
        return super().load_from_checkpoint(checkpoint_path, *args, **groups | kwargs)

    # ----------------------------------------------------------------------------------------- build
    def _build_backbone(self, **overrides: Any) -> ECGViT:
        return build_vit(**(self.backbone_config | overrides))

    def _build_branch(self, **backbone_overrides: Any) -> nn.ModuleDict:
        h = self.cfg.head
        backbone = self._build_backbone(**backbone_overrides)
        head = dict(
            hidden_dim=h.hidden_dim,
            bottleneck_dim=h.bottleneck_dim,
            nlayers=h.layers,
            normalized_prototypes=h.normalized_prototypes,
        )
        return nn.ModuleDict(
            {
                "backbone": backbone,
                "dino_head": DINOHead(backbone.embed_dim, self.cfg.dino.num_prototypes, **head),
                "ibot_head": DINOHead(backbone.embed_dim, self.cfg.ibot.num_prototypes, **head),
            }
        )

    def init_weights(self) -> None:
        """Initialise the student under the seed, then start teacher and Gram teacher as exact copies."""
        with torch.random.fork_rng():
            torch.manual_seed(self.hparams.seed)
            for m in self.student.values():
                m.init_weights()
        self.teacher.load_state_dict(self.student.state_dict())
        if self.gram_teacher is not None:
            self.gram_teacher.backbone.load_state_dict(self.student.backbone.state_dict())

    def _teachers(self) -> list[nn.Module]:
        return [b for b in (self.teacher, self.gram_teacher) if b is not None]

    def _teachers_to_eval(self) -> None:
        for branch in self._teachers():
            branch.eval()

    def train(self, mode: bool = True) -> DinoPretrainModule:
        """The teachers always run in eval mode; only the student trains."""
        super().train(mode)
        self._teachers_to_eval()
        return self

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        """Lightning 2.6 never calls ``train()`` during fit and restores saved submodule modes after validation,
        so the teachers' mode is set before every step, whatever path (fit, resume, validation) led here."""
        self._teachers_to_eval()

    # ------------------------------------------------------------------------------------- schedules
    def on_fit_start(self) -> None:
        total = self.trainer.max_steps
        if total is None or total <= 0:
            raise ValueError("DinoPretrainModule needs trainer.max_steps > 0 to lay out its schedules")
        optim, teacher, gram = self.cfg.optim, self.cfg.teacher, self.cfg.gram
        self.schedules = {
            "lr": cosine_schedule(optim.lr, optim.min_lr, total, warmup_steps=optim.warmup_steps),
            "weight_decay": cosine_schedule(optim.weight_decay, optim.weight_decay_end, total),
            "teacher_temp": linear_warmup_constant(
                teacher.temp, total, teacher.temp_warmup_steps, teacher.temp_warmup_start
            ),
            # DINOv3 raises the Gram weight from 0: zero before gram.start_step, then a linear ramp, then constant.
            "gram_weight": cosine_schedule(
                gram.loss_weight, gram.loss_weight, total, gram.warmup_steps, freeze_steps=gram.start_step
            ),
        }

    def _apply_optimizer_schedules(self, step: int) -> None:
        lr, wd = at(self.schedules["lr"], step), at(self.schedules["weight_decay"], step)
        for group in self.optimizers().optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"]
            group["weight_decay"] = wd * group["wd_scale"]
        self.log_dict({"sched/lr": lr, "sched/weight_decay": wd}, on_step=True, on_epoch=False)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        optim = self.cfg.optim
        groups = param_groups(self.student, optim.layer_decay)
        # The fused kernel updates all parameters in one pass: 3-4x faster than the per-tensor loop on CPU. fp16's
        # loss scaler needs the gradients unscaled before clipping, which a fused step does only inside itself.
        fused = self._trainer is None or str(self.trainer.precision) != "16-mixed"
        return torch.optim.AdamW(groups, lr=optim.lr, betas=optim.betas, fused=fused)

    def configure_callbacks(self) -> list[L.Callback]:
        """The EMA teacher, the non-finite-loss guard and the RNG state for exact resume are part of the method,
        so the module brings them rather than every YAML."""
        teacher = self.cfg.teacher
        return [
            EMATeacher(teacher.momentum_start, teacher.momentum_end),
            NonFiniteGuard(self.hparams.max_nonfinite_steps),
            RNGState(),
        ]

    def configure_model(self) -> None:
        """Activation checkpointing and, under ``ModelParallelStrategy``, FSDP2 sharding (``ecg_dino.parallel``);
        outside a Trainer (``load_from_checkpoint``) there is no mesh and nothing is sharded."""
        precision = str(self.trainer.precision) if self._trainer is not None else "32-true"
        parallel.configure_model(self, self.device_mesh, precision, self.hparams.activation_checkpointing)

    def configure_gradient_clipping(
        self,
        optimizer: torch.optim.Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        parallel.clip_gradients(self, optimizer, gradient_clip_val, gradient_clip_algorithm)

    # ---------------------------------------------------------------------------- the step, in pieces
    def views(self, batch: dict[str, Any]) -> Views:
        """The batch's crops for student and teacher, checked against the crop-major contract, and the
        global crops' patch validity (lead presence and valid length: known before any forward)."""
        g, loc, rate = batch["global"], batch["local"], batch["sample_rate_hz"]
        n_global, n_local = batch["n_global_crops"], batch["n_local_crops"]
        B = g["signal"].shape[0] // n_global
        if n_global < 2 or g["signal"].shape[0] != n_global * B or loc["signal"].shape[0] != n_local * B:
            raise ValueError(
                f"batch holds {g['signal'].shape[0]} global and {loc['signal'].shape[0]} local crop rows, not"
                f" crop-major {n_global}×B and {n_local}×B (the DINO pairing needs at least 2 global crops)"
            )
        g_crops = {k: v for k, v in g.items() if k != "teacher_signal"} | {"sample_rate_hz": rate}
        patch_samples = self.student.backbone.patch_samples
        P = g["signal"].shape[-1] // patch_samples
        in_time = torch.arange(P, device=self.device)[None, :] < (g["valid_samples"] // patch_samples)[:, None]
        return Views(
            student_global=g_crops,
            teacher_global=g_crops | {"signal": g.get("teacher_signal", g["signal"])},
            local=loc | {"sample_rate_hz": rate},
            patch_mask=g["lead_mask"][:, :, None] & in_time[:, None, :],
            n_global=n_global,
            n_local=n_local,
            B=B,
        )

    def _ibot_masks(self, patch_mask: torch.Tensor, step: int) -> torch.Tensor:
        """Block masks over (lead × time) for the global crops; seeded by step and rank so a resumed run
        draws the same masks."""
        gen = torch.Generator().manual_seed(self.hparams.seed * 1_000_003 + step * 7919 + self.global_rank)
        return self.mask_generator(patch_mask.cpu(), generator=gen).to(patch_mask.device)

    @torch.no_grad()
    def teacher_targets(self, crops: Crops, masks: torch.Tensor, teacher_temp: float, n_global: int) -> dict:
        """Teacher targets from the global crops: Sinkhorn-Knopp class-token and masked-patch distributions."""
        out = self.teacher.backbone.forward_features(**crops)
        cls_logits = self.teacher.dino_head(out["cls"])  # [G*B, K]
        cls_probs = self.dino_loss.sinkhorn_knopp_teacher(cls_logits, teacher_temp)
        patch_logits = self.teacher.ibot_head(out["patches"][masks])  # [M, K]
        n_masked = torch.tensor([patch_logits.shape[0]], device=patch_logits.device)
        patch_probs = self.ibot_loss.sinkhorn_knopp_teacher(patch_logits, teacher_temp, n_masked)
        return {
            "cls": out["cls"],
            "cls_logits": cls_logits,
            "cls_probs": cls_probs.view(n_global, -1, cls_probs.shape[-1]),  # [G, B, K]
            "patch_probs": patch_probs,
        }

    @torch.no_grad()
    def gram_targets(self, crops: Crops) -> torch.Tensor:
        """The Gram teacher's patch tokens of the (teacher's) global crops, [G*B, L, P, D]."""
        return self.gram_teacher.backbone.forward_features(**crops)["patches"]

    def student_outputs(self, views: Views, masks: torch.Tensor) -> dict[str, dict]:
        """The student backbone on the global crops (iBOT-masked patches) and then on the local crops."""
        return {
            "global": self.student.backbone.forward_features(**views.student_global, ibot_mask=masks),
            "local": self.student.backbone.forward_features(**views.local),
        }

    def compute_dino_loss(self, student: dict, teacher: dict, views: Views) -> dict[str, torch.Tensor]:
        """DINO class-token loss: local and global student crops against the teacher's global crops, weighted
        by their pair counts (a global crop is never paired with itself)."""
        G, Lc, B = views.n_global, views.n_local, views.B
        s_global_logits = self.student.dino_head(student["global"]["cls"]).view(G, B, -1)  # [G, B, K]
        s_local_logits = self.student.dino_head(student["local"]["cls"]).view(Lc, B, -1)  # [Lc, B, K]
        local_loss = self.dino_loss(s_local_logits, teacher["cls_probs"], ignore_diagonal=False)
        global_loss = self.dino_loss(s_global_logits, teacher["cls_probs"], ignore_diagonal=True)
        n_pairs_g, n_pairs_l = G * (G - 1), G * Lc
        dino_loss = (n_pairs_l * local_loss + n_pairs_g * global_loss) / (n_pairs_g + n_pairs_l)
        return {"dino_local_loss": local_loss, "dino_global_loss": global_loss, "dino_loss": dino_loss}

    def compute_ibot_loss(self, student: dict, teacher: dict, masks: torch.Tensor) -> torch.Tensor:
        """iBOT loss: the student's masked global-crop patches against the teacher's targets for them."""
        s_masked_logits = self.student.ibot_head(student["global"]["patches"][masks])  # [M, K]
        return self.ibot_loss.forward_masked(s_masked_logits, teacher["patch_probs"], masks.flatten(1))

    def compute_koleo_loss(self, student: dict, views: Views) -> torch.Tensor:
        """KoLeo on the student's pre-head class tokens, per global crop, averaged over the global crops."""
        s_cls = student["global"]["cls"].view(views.n_global, views.B, -1)
        return sum(self.koleo_loss(s_cls[c].float()) for c in range(views.n_global)) / views.n_global

    def compute_gram_loss(self, student: dict, target: torch.Tensor, patch_mask: torch.Tensor) -> torch.Tensor:
        """Gram anchoring: the student's global-crop patch similarities against the Gram teacher's."""
        patches = student["global"]["patches"].flatten(1, 2)
        return self.gram_loss(patches, target.flatten(1, 2), token_mask=patch_mask.flatten(1))

    def compute_losses(self, batch: dict[str, Any], step: int, teacher_temp: float) -> dict[str, torch.Tensor]:
        """Every loss term of one step, plus collapse diagnostics; ``loss`` is the weighted total."""
        cfg = self.cfg
        views = self.views(batch)
        masks = self._ibot_masks(views.patch_mask, step)
        teacher = self.teacher_targets(views.teacher_global, masks, teacher_temp, views.n_global)
        anchored = self.gram_teacher is not None and step >= cfg.gram.start_step
        gram_target = self.gram_targets(views.teacher_global) if anchored else None
        student = self.student_outputs(views, masks)  # drop-path draws: global crops, then local crops

        out = self.compute_dino_loss(student, teacher, views)
        out["ibot_loss"] = self.compute_ibot_loss(student, teacher, masks)
        out["koleo_loss"] = self.compute_koleo_loss(student, views)
        loss = (
            cfg.dino.loss_weight * out["dino_loss"]
            + cfg.ibot.loss_weight * out["ibot_loss"]
            + cfg.koleo.loss_weight * views.n_global * out["koleo_loss"]
        )
        if gram_target is not None:
            out["gram_loss"] = self.compute_gram_loss(student, gram_target, views.patch_mask)
            loss = loss + self._gram_weight(step) * out["gram_loss"]
        out["loss"] = loss
        out.update(self.diagnostics(teacher, teacher_temp, masks))
        return out

    def _gram_weight(self, step: int) -> float:
        """The scheduled Gram weight; a hand call outside fit (no schedules yet) gets the full weight."""
        return at(self.schedules["gram_weight"], step) if "gram_weight" in self.schedules else self.cfg.gram.loss_weight

    @torch.no_grad()
    def diagnostics(self, teacher: dict, teacher_temp: float, masks: torch.Tensor) -> dict:
        """Signs of collapse: teacher class tokens that stop varying across ECGs, and prototypes that go unused.

        ``diag/teacher_cls_std`` is the per-feature std across the batch of the L2-normalised class token,
        averaged over features; a collapsed teacher gives 0, spread-out embeddings about 1/sqrt(D).
        ``diag/teacher_target_entropy`` is the mean entropy of one row of the Sinkhorn-Knopp targets: near
        ``ln K`` the targets are uniform and the DINO loss carries no signal (the other collapse mode).
        """
        cls = nn.functional.normalize(teacher["cls"].float(), dim=-1)
        probs = torch.softmax(teacher["cls_logits"].float() / teacher_temp, dim=-1)  # before Sinkhorn-Knopp
        mean_probs = probs.mean(0)
        entropy = -(mean_probs * mean_probs.clamp_min(1e-12).log()).sum()
        targets = teacher["cls_probs"].flatten(0, 1).float()
        target_entropy = -(targets * targets.clamp_min(1e-12).log()).sum(-1).mean()
        used = torch.unique(targets.argmax(-1)).numel()
        return {
            "diag/teacher_cls_std": cls.std(0).mean(),
            "diag/teacher_cls_std_ref": 1 / math.sqrt(cls.shape[-1]),
            "diag/teacher_mean_entropy": entropy,
            "diag/teacher_mean_entropy_max": math.log(mean_probs.numel()),
            "diag/teacher_target_entropy": target_entropy,
            "diag/prototypes_used": float(used),
            "diag/masked_patch_fraction": masks.float().mean(),
        }

    # -------------------------------------------------------------------------------------- training
    def _maybe_refresh_gram_teacher(self, step: int) -> None:
        gram = self.cfg.gram
        if self.gram_teacher is None or step < gram.start_step:
            return
        if (step - gram.start_step) % gram.refresh_every == 0:
            src = [local_tensor(p) for p in self.teacher.backbone.parameters()]
            dst = [local_tensor(p) for p in self.gram_teacher.backbone.parameters()]
            with torch.no_grad():
                torch._foreach_copy_(dst, src)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        step = self.global_step
        self._apply_optimizer_schedules(step)
        self._maybe_refresh_gram_teacher(step)
        teacher_temp = at(self.schedules["teacher_temp"], step)
        out = self.compute_losses(batch, step, teacher_temp)
        B = batch["global"]["signal"].shape[0] // batch["n_global_crops"]
        logs = {k if k.startswith("diag/") else f"train/{k}": v for k, v in out.items()}
        logs["sched/teacher_temp"] = teacher_temp
        if self.gram_teacher is not None:
            logs["sched/gram_weight"] = self._gram_weight(step)
        self.log_dict(logs, on_step=True, on_epoch=False, batch_size=B)
        self.log("loss", out["loss"], prog_bar=True, on_step=True, on_epoch=False, logger=False, batch_size=B)
        return out["loss"]

    def on_after_backward(self) -> None:
        if self.global_step < self.cfg.optim.freeze_prototypes_steps:
            for head in (self.student.dino_head, self.student.ibot_head):
                for p in head.last_layer.parameters():
                    p.grad = None
