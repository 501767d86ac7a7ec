"""Sinkhorn-Knopp teachers and KoLeo on 2 gloo ranks equal the single-process computation on all rows."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ecg_dino.loss import DINOLoss, KoLeoLoss, iBOTPatchLoss

WORLD_SIZE = 2
TEMP = 0.1


def make_inputs() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "cls_logits": torch.randn(2 * 6, 16, generator=g),  # 6 rows per rank
        "patch_logits": torch.randn(5 + 9, 16, generator=g),  # 5 masked tokens on rank 0, 9 on rank 1
        "features": torch.randn(2 * 8, 12, generator=g),  # 8 samples per rank
    }


def worker(rank: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD_SIZE)
    try:
        inputs = make_inputs()
        cls_rows = inputs["cls_logits"].chunk(WORLD_SIZE)[rank]
        patch_rows = inputs["patch_logits"].split([5, 9])[rank]
        features = inputs["features"].chunk(WORLD_SIZE)[rank].requires_grad_(True)
        n_masked = torch.tensor([patch_rows.shape[0]])
        koleo = KoLeoLoss(across_ranks=True)(features)
        koleo.backward()
        koleo_local = KoLeoLoss()(features.detach())
        result = {
            "cls_probs": DINOLoss().sinkhorn_knopp_teacher(cls_rows, TEMP),
            "patch_probs": iBOTPatchLoss().sinkhorn_knopp_teacher(patch_rows, TEMP, n_masked),
            "n_masked_after": n_masked,
            "koleo": koleo.detach(),
            "koleo_grad_finite": torch.isfinite(features.grad).all(),
            "koleo_local": koleo_local,
        }
        torch.save(result, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_ranks_equal_single_process(tmp_path: Path) -> None:
    mp.spawn(worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD_SIZE, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD_SIZE)]
    inputs = make_inputs()

    expected_cls = DINOLoss().sinkhorn_knopp_teacher(inputs["cls_logits"], TEMP)
    torch.testing.assert_close(torch.cat([r["cls_probs"] for r in ranks]), expected_cls)
    expected_patch = iBOTPatchLoss().sinkhorn_knopp_teacher(inputs["patch_logits"], TEMP)
    torch.testing.assert_close(torch.cat([r["patch_probs"] for r in ranks]), expected_patch)
    assert [r["n_masked_after"].item() for r in ranks] == [5, 9]  # the caller's tensor is left alone

    expected_koleo = KoLeoLoss()(inputs["features"])
    torch.testing.assert_close(torch.stack([r["koleo"] for r in ranks]).mean(), expected_koleo)
    assert all(r["koleo_grad_finite"] for r in ranks)
    # The default uses each rank's own batch (DINOv3's configs): the value does not depend on the world size.
    for rank, features in zip(ranks, inputs["features"].chunk(WORLD_SIZE)):
        torch.testing.assert_close(rank["koleo_local"], KoLeoLoss()(features))
