"""The DINOv3 objective: DINO class-token, iBOT masked-patch, KoLeo and Gram anchoring losses."""

from ecg_dino.loss.dino_clstoken_loss import DINOLoss
from ecg_dino.loss.gram_loss import GramLoss
from ecg_dino.loss.ibot_patch_loss import iBOTPatchLoss
from ecg_dino.loss.koleo_loss import KoLeoLoss
from ecg_dino.loss.sinkhorn_knopp import sinkhorn_knopp

__all__ = ["DINOLoss", "GramLoss", "KoLeoLoss", "iBOTPatchLoss", "sinkhorn_knopp"]
