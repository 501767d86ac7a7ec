"""The training step in named pieces computes what the monolithic step computed: a frozen copy of the old
``compute_losses`` gives the same losses, gradients and random draws on a fixed batch."""

from __future__ import annotations

import torch
from conftest import TINY_MODULE, random_batch

from ecg_dino.hparams import DinoArgs, GramArgs, IBOTArgs, KoLeoArgs
from ecg_dino.module import DinoPretrainModule

WEIGHTS = {"dino": 1.0, "ibot": 0.7, "koleo": 0.3, "gram": 1.5}


def frozen_compute_losses(module: DinoPretrainModule, batch: dict, step: int, teacher_temp: float) -> dict:
    """``compute_losses`` as it was before the step was split (every formula inline), for this comparison only."""
    g, loc, rate = batch["global"], batch["local"], batch["sample_rate_hz"]
    n_global, n_local = batch["n_global_crops"], batch["n_local_crops"]
    B = g["signal"].shape[0] // n_global
    g_crops = {k: v for k, v in g.items() if k != "teacher_signal"} | {"sample_rate_hz": rate}
    t_crops = g_crops | {"signal": g.get("teacher_signal", g["signal"])}
    patch_samples = module.student.backbone.patch_samples
    P = g["signal"].shape[-1] // patch_samples
    in_time = torch.arange(P)[None, :] < (g["valid_samples"] // patch_samples)[:, None]
    patch_mask = g["lead_mask"][:, :, None] & in_time[:, None, :]
    gen = torch.Generator().manual_seed(0 * 1_000_003 + step * 7919 + 0)
    masks = module.mask_generator(patch_mask, generator=gen)
    with torch.no_grad():
        t_out = module.teacher.backbone.forward_features(**t_crops)
        cls_probs = module.dino_loss.sinkhorn_knopp_teacher(module.teacher.dino_head(t_out["cls"]), teacher_temp)
        patch_logits = module.teacher.ibot_head(t_out["patches"][masks])
        n_masked = torch.tensor([patch_logits.shape[0]])
        patch_probs = module.ibot_loss.sinkhorn_knopp_teacher(patch_logits, teacher_temp, n_masked)
        cls_probs = cls_probs.view(n_global, -1, cls_probs.shape[-1])
    s_global = module.student.backbone.forward_features(**g_crops, ibot_mask=masks)
    s_local = module.student.backbone.forward_features(**loc, sample_rate_hz=rate)
    s_global_logits = module.student.dino_head(s_global["cls"]).view(n_global, B, -1)
    s_local_logits = module.student.dino_head(s_local["cls"]).view(n_local, B, -1)
    local_loss = module.dino_loss(s_local_logits, cls_probs, ignore_diagonal=False)
    global_loss = module.dino_loss(s_global_logits, cls_probs, ignore_diagonal=True)
    n_pairs_g, n_pairs_l = n_global * (n_global - 1), n_global * n_local
    dino_loss = (n_pairs_l * local_loss + n_pairs_g * global_loss) / (n_pairs_g + n_pairs_l)
    s_masked_logits = module.student.ibot_head(s_global["patches"][masks])
    ibot_loss = module.ibot_loss.forward_masked(s_masked_logits, patch_probs, masks.flatten(1))
    s_cls = s_global["cls"].view(n_global, B, -1)
    koleo_loss = sum(module.koleo_loss(s_cls[c].float()) for c in range(n_global)) / n_global
    loss = WEIGHTS["dino"] * dino_loss + WEIGHTS["ibot"] * ibot_loss + WEIGHTS["koleo"] * n_global * koleo_loss
    with torch.no_grad():
        target = module.gram_teacher.backbone.forward_features(**t_crops)["patches"]
    gram_loss = module.gram_loss(
        s_global["patches"].flatten(1, 2), target.flatten(1, 2), token_mask=patch_mask.flatten(1)
    )
    loss = loss + WEIGHTS["gram"] * gram_loss
    return {
        "dino_local_loss": local_loss,
        "dino_global_loss": global_loss,
        "dino_loss": dino_loss,
        "ibot_loss": ibot_loss,
        "koleo_loss": koleo_loss,
        "gram_loss": gram_loss,
        "loss": loss,
    }


def test_step_pieces_compute_the_losses_gradients_and_draws_of_the_monolithic_step() -> None:
    """Same numbers, bit for bit, and the same global random draws (drop-path), on a batch with a clean teacher view
    and a teacher that is not a copy of the student."""
    runs = []
    for compute in (DinoPretrainModule.compute_losses, frozen_compute_losses):
        backbone = TINY_MODULE["backbone"] | {"drop_path_rate": 0.2, "layerscale_init": 1.0}
        groups = {
            "dino": DinoArgs(num_prototypes=64, loss_weight=WEIGHTS["dino"]),
            "ibot": IBOTArgs(num_prototypes=64, loss_weight=WEIGHTS["ibot"]),
            "koleo": KoLeoArgs(loss_weight=WEIGHTS["koleo"]),
            "gram": GramArgs(loss_weight=WEIGHTS["gram"], start_step=3),
        }
        module = DinoPretrainModule(**TINY_MODULE | {"backbone": backbone} | groups).train()
        g = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for p in module.teacher.parameters():
                p.add_(0.05 * torch.randn(p.shape, generator=g))
        batch = random_batch(seed=3)
        batch["global"]["teacher_signal"] = batch["global"]["signal"] * 0.5
        torch.manual_seed(5)
        out = compute(module, batch, 4, 0.05)
        out["loss"].backward()
        runs.append((out, [p.grad for p in module.student.parameters()], torch.rand(3)))
    (new, new_grads, new_draw), (old, old_grads, old_draw) = runs
    for key in old:
        assert torch.equal(new[key], old[key]), key
    assert all(torch.equal(a, b) for a, b in zip(new_grads, old_grads))
    assert torch.equal(new_draw, old_draw), "the step drew a different number of global random numbers"
    assert not torch.equal(old["dino_local_loss"], old["dino_global_loss"])  # the teacher targets are not uniform
