"""iBOT block masks over the (lead × time) patch grid of the global crops.

Following DINOv3's collate step, for a batch of n_img images (n_global·B crops) with patch_mask [n_img, L, P]
(True = a patch of real signal; absent leads and time padding are False), N_i real patches in image i:

- n = int(n_img · mask_sample_probability) images get a mask, the others none; which ones is random.
- The k-th of them (k = 1..n) asks for int(N_i · r_k) patches, r_k = linspace(min_ratio, max_ratio, n + 1)[k].
- Masked patches are grown as blocks (BEiT's generator, vectorised over images): a rectangle of a random
  area in [min_block_patches, min(remaining, max_block_fraction · N_i)] and log-uniform aspect ratio
  (leads : time patches), placed uniformly inside the bounding box of the image's real patches, is kept if
  it masks between 1 and that upper bound of new real patches. An image stops growing blocks after
  ``max_failures`` rejected rectangles in a row or after ``max_rounds`` rounds; the rest of its count is
  then drawn as random single real patches, so every count is exact and only real patches are masked.
"""

from __future__ import annotations

import math

import numpy as np
import torch


class BlockMaskGenerator:
    def __init__(
        self,
        mask_sample_probability: float = 0.5,
        mask_ratio_range: tuple[float, float] = (0.1, 0.5),
        min_block_patches: int = 4,
        max_block_fraction: float = 0.5,
        aspect_ratio_range: tuple[float, float] = (0.3, 1 / 0.3),
        max_failures: int = 10,
        max_rounds: int = 40,
    ) -> None:
        self.mask_sample_probability = mask_sample_probability
        self.mask_ratio_range = mask_ratio_range
        self.min_block_patches = min_block_patches
        self.max_block_fraction = max_block_fraction
        self.log_aspect_range = (math.log(aspect_ratio_range[0]), math.log(aspect_ratio_range[1]))
        self.max_failures = max_failures
        self.max_rounds = max_rounds

    def num_masked(self, patch_mask: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Patches to mask per image [n_img]: int(N_i · r_i) for a random subset of images, 0 elsewhere."""
        n_img = patch_mask.shape[0]
        n_masked_img = int(n_img * self.mask_sample_probability)
        ratios = torch.zeros(n_img)
        ratios[:n_masked_img] = torch.linspace(*self.mask_ratio_range, n_masked_img + 1)[1:]
        ratios = ratios[torch.randperm(n_img, generator=generator)]
        n_real = patch_mask.flatten(1).sum(dim=1)  # [n_img]
        return (n_real * ratios).long()

    def __call__(self, patch_mask: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Bool masks [n_img, L, P] (True = masked) for the real patches patch_mask [n_img, L, P] (on CPU)."""
        n_img, L, P = patch_mask.shape
        target = self.num_masked(patch_mask.bool(), generator).numpy()  # [n_img]
        # All random draws up front from the torch generator; the loop runs in numpy (small-op overhead).
        u = torch.rand(self.max_rounds, 4, n_img, generator=generator, dtype=torch.float64).numpy()
        scores = torch.rand(n_img, L * P, generator=generator).numpy()  # order of the single-patch top-up
        present = patch_mask.bool().numpy()  # [n_img, L, P]
        max_block = np.floor(present.sum(axis=(1, 2)) * self.max_block_fraction)  # [n_img]
        # Bounding box of the real patches: first row / column and extent.
        rows_real, cols_real = present.any(axis=2), present.any(axis=1)  # [n_img, L], [n_img, P]
        top0, left0 = rows_real.argmax(axis=1), cols_real.argmax(axis=1)
        height = L - rows_real[:, ::-1].argmax(axis=1) - top0  # [n_img]
        width = P - cols_real[:, ::-1].argmax(axis=1) - left0  # [n_img]
        row_idx, col_idx = np.arange(L), np.arange(P)
        log_lo, log_hi = self.log_aspect_range

        free = present.copy()  # real and not yet masked
        count = np.zeros(n_img, dtype=np.int64)
        failures = np.zeros(n_img, dtype=np.int64)
        for u_area, u_aspect, u_top, u_left in u:  # [n_img] each
            active = (count < target) & (failures < self.max_failures)  # [n_img]
            if not active.any():
                break
            upper = np.minimum(target - count, max_block)  # [n_img]
            area = self.min_block_patches + u_area * (upper - self.min_block_patches)
            aspect = np.exp(log_lo + u_aspect * (log_hi - log_lo))  # leads / time patches
            h = np.minimum(np.maximum(np.rint(np.sqrt(area * aspect)), 1).astype(np.int64), height)
            w = np.minimum(np.maximum(np.rint(np.sqrt(area / aspect)), 1).astype(np.int64), width)
            top = top0 + (u_top * (height - h + 1)).astype(np.int64)  # [n_img]
            left = left0 + (u_left * (width - w + 1)).astype(np.int64)  # [n_img]
            in_rows = (row_idx >= top[:, None]) & (row_idx < (top + h)[:, None])  # [n_img, L]
            in_cols = (col_idx >= left[:, None]) & (col_idx < (left + w)[:, None])  # [n_img, P]
            new = in_rows[:, :, None] & in_cols[:, None, :] & free  # [n_img, L, P]
            n_new = new.sum(axis=(1, 2))  # [n_img]
            accepted = active & (n_new > 0) & (n_new <= upper)  # [n_img]
            free &= ~(new & accepted[:, None, None])
            count += n_new * accepted
            failures = np.where(accepted, 0, failures + 1)

        # Top up with random single real patches: rank the free real patches randomly, take the first ones.
        scores[~free.reshape(n_img, -1)] = 2.0
        rank = scores.argsort(axis=1).argsort(axis=1).reshape(n_img, L, P)  # position of each patch
        mask = (present & ~free) | (rank < (target - count)[:, None, None])
        return torch.from_numpy(mask)
