"""Global pooling beside the backbone: padded leads and time never count, the class token is passed through."""

from __future__ import annotations

import pytest
import torch

from ecg_dino.model.pooling import pool


def test_masked_means_ignore_padding() -> None:
    patches = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)  # [B, L, P, D]
    mask = torch.ones(2, 3, 4, dtype=torch.bool)
    mask[0, 2] = False  # an absent lead
    mask[1, :, 3] = False  # padded time
    out = {"cls": torch.randn(2, 5).to(torch.bfloat16), "patches": patches, "patch_mask": mask}
    mean = pool(out, "mean")  # [B, D]
    torch.testing.assert_close(mean[0], patches[0, :2].reshape(-1, 5).mean(0))
    torch.testing.assert_close(mean[1], patches[1, :, :3].reshape(-1, 5).mean(0))
    lead_mean = pool(out, "lead_mean")  # [B, P, D]
    torch.testing.assert_close(lead_mean[0], patches[0, :2].mean(0))
    assert torch.equal(lead_mean[1, 3], torch.zeros(5))  # no valid lead: zero, not NaN
    assert pool(out).dtype == torch.float32 and torch.equal(pool(out), out["cls"].float())
    with pytest.raises(ValueError, match="unknown pooling 'max'"):
        pool(out, "max")
