"""iBOT block masks over the (lead × time) patch grid."""

from __future__ import annotations

import torch

from ecg_dino.masking import BlockMaskGenerator


def ecg_patch_mask(n_img: int = 64, L: int = 12, P: int = 50) -> torch.Tensor:
    """Real patches [n_img, L, P]: some crops miss leads, some are padded in time, one is empty."""
    present = torch.ones(n_img, L, P, dtype=torch.bool)
    present[::3, 6:] = False  # limb leads only
    present[1::4, :, 40:] = False  # short record, padded in time
    present[2::5, :, :] = False
    present[2::5, 1] = True  # single-lead (e.g. a Holter lead II)
    present[7] = False  # no real patch at all
    return present


def test_counts_are_exact_and_only_real_patches_are_masked() -> None:
    present = ecg_patch_mask()
    generator = BlockMaskGenerator(mask_sample_probability=0.5, mask_ratio_range=(0.1, 0.5))
    masks = generator(present, generator=torch.Generator().manual_seed(0))
    assert masks.shape == present.shape and masks.dtype == torch.bool
    assert not (masks & ~present).any()
    expected = generator.num_masked(present, torch.Generator().manual_seed(0))
    torch.testing.assert_close(masks.flatten(1).sum(dim=1), expected)


def test_ratios_and_fraction_of_masked_images() -> None:
    n_img, L, P = 8, 12, 50
    present = torch.ones(n_img, L, P, dtype=torch.bool)
    masks = BlockMaskGenerator(0.5, (0.1, 0.5))(present, generator=torch.Generator().manual_seed(1))
    counts = masks.flatten(1).sum(dim=1)
    assert int((counts > 0).sum()) == 4
    # r_k = linspace(0.1, 0.5, 5)[k] for k = 1..4, asked as int(N · r_k).
    expected = sorted([0] * 4 + [int(L * P * r) for r in torch.linspace(0.1, 0.5, 5)[1:]])
    assert sorted(counts.tolist()) == expected


def test_masks_are_mostly_blocks() -> None:
    present = torch.ones(16, 12, 50, dtype=torch.bool)
    masks = BlockMaskGenerator(1.0, (0.3, 0.5))(present, generator=torch.Generator().manual_seed(2))
    padded = torch.nn.functional.pad(masks.float(), (1, 1, 1, 1))
    neighbours = padded[:, :-2, 1:-1] + padded[:, 2:, 1:-1] + padded[:, 1:-1, :-2] + padded[:, 1:-1, 2:]
    with_masked_neighbour = (masks & (neighbours > 0)).sum() / masks.sum()
    assert with_masked_neighbour > 0.95


def test_reproducible_with_a_generator() -> None:
    present = ecg_patch_mask(16)
    generator = BlockMaskGenerator()
    first = generator(present, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(generator(present, generator=torch.Generator().manual_seed(3)), first)
    assert not torch.equal(generator(present, generator=torch.Generator().manual_seed(4)), first)
