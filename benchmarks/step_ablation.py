"""What each speed-up of the pretraining step buys: the step timed with all of them, with each one undone alone,
and with all undone (the step before issue 17), in one process on the same batches. Not a test.

The speed-ups, each undone here by swapping one function back to what it was:
- ``lead groups``: ``ECGViT.forward_features`` encodes rows in groups of equal lead width instead of padding
  every row to the batch's widest;
- ``matmul attention``: attention on CPU in bf16 as matmul + softmax instead of the fused SDPA kernel;
- ``RoPE on all tokens, in halves``: rotary embedding on every token (identity at time 0), computed on the two
  halves of each head with fused multiply-adds and kept in fp32 for the scores, instead of on the patch tokens only
  (the prefix sliced off and concatenated back) through ``rotate_half`` and cast back to bf16;
- ``LayerScale folded``: ``gamma`` folded into the branch's last linear weight instead of scaling its output;
- ``fused AdamW``: one fused kernel for all parameters instead of the per-tensor loop.

    python benchmarks/step_ablation.py --config experiments/pretrain_cpu_many.yaml --threads 1
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from train_step import DTYPES, batch_arguments, first_step, lead_seconds, setup

import ecg_dino.model.vit as vit


def padded_forward_features(self, signal, lead_ids, lead_mask=None, valid_samples=None, ibot_mask=None, **kw):
    """Every row padded to the batch's widest lead set."""
    B, L, T = signal.shape
    lead_mask = torch.ones(B, L, dtype=torch.bool) if lead_mask is None else lead_mask
    valid_samples = torch.full((B,), T) if valid_samples is None else valid_samples
    return self._encode(signal, lead_ids, lead_mask, valid_samples, ibot_mask)


def fp32_rope(x: torch.Tensor, sin: torch.Tensor, cos: torch.Tensor) -> torch.Tensor:
    """RoPE in fp32 on the patch tokens only (the prefix, at time 0, sliced off and concatenated back), cast back."""
    n = int((sin == 0).all(-1).cumprod(0).sum())
    sin, cos = torch.cat([sin, sin], -1)[n:], torch.cat([cos, cos], -1)[n:]
    prefix, patches = x[..., :n, :], x[..., n:, :].float()
    half1, half2 = patches.chunk(2, dim=-1)
    rotated = patches * cos + torch.cat([-half2, half1], dim=-1) * sin
    return torch.cat([prefix, rotated.to(x.dtype)], dim=-2)


def unfolded_layerscale(self, x: torch.Tensor, layer: torch.nn.Linear) -> torch.Tensor:
    return layer(x) * self.gamma


UNDO: dict[str, tuple[object, str, object]] = {
    "lead groups": (vit.ECGViT, "forward_features", padded_forward_features),
    "matmul attention": (vit, "attention", lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m)),
    "RoPE on all tokens, in halves": (vit, "apply_rope", fp32_rope),
    "LayerScale folded": (vit.LayerScale, "linear", unfolded_layerscale),
}


@contextlib.contextmanager
def undone(names: tuple[str, ...]) -> Iterator[None]:
    saved = [(owner, attr, getattr(owner, attr)) for owner, attr, _ in (UNDO[n] for n in names)]
    try:
        for name in names:
            owner, attr, old = UNDO[name]
            setattr(owner, attr, old)
        yield
    finally:
        for owner, attr, value in saved:
            setattr(owner, attr, value)


def time_step(args: argparse.Namespace, names: tuple[str, ...], fused_adamw: bool) -> float:
    """Mean seconds per step over ``args.steps`` after ``args.warmup``, with ``names`` undone."""
    module, opt, batches = setup("tiny", args, torch.device("cpu"))
    if not fused_adamw:
        opt = torch.optim.AdamW(opt.param_groups, fused=False, foreach=False)
    step0 = first_step(module)

    def step(i: int) -> None:
        with torch.autocast("cpu", dtype=DTYPES["bf16"]):
            loss = module.compute_losses(batches[i % len(batches)], step0 + i, 0.04)["loss"]
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    with undone(names):
        for i in range(args.warmup):
            step(i)
        t = time.perf_counter()
        for i in range(args.warmup, args.warmup + args.steps):
            step(i)
        return (time.perf_counter() - t) / args.steps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    batch_arguments(p)
    p.add_argument("--rounds", type=int, default=1, help="time every variant this many times, in turn; the median")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    _, _, batches = setup("tiny", args, torch.device("cpu"))
    timed = range(args.warmup, args.warmup + args.steps)
    seconds = sum(lead_seconds(batches[i % len(batches)]) for i in timed) / args.steps
    rows: list[tuple[str, Callable[[], float]]] = [("all speed-ups", lambda: time_step(args, (), True))]
    rows += [(f"undo {n}", lambda n=n: time_step(args, (n,), True)) for n in UNDO]
    rows += [("undo fused AdamW", lambda: time_step(args, (), False))]
    rows += [("undo all (before)", lambda: time_step(args, tuple(UNDO), False))]
    time_step(args, (), True)  # the process's first steps run slower (allocator, caches): not in the table
    # Rounds go through every variant in turn, so a slow spell of the machine lands on all of them alike.
    times: dict[str, list[float]] = {name: [] for name, _ in rows}
    for _ in range(args.rounds):
        for name, run in rows:
            times[name].append(run())
    print(f"{args.config or 'synthetic batch'}, bf16, {torch.get_num_threads()} threads, {args.steps} steps each,")
    print(f"median of {args.rounds} rounds")
    print(f"{'variant':34s} {'ms/step':>8s} {'lead-s/s':>9s} {'x all':>6s}")
    best = statistics.median(times[rows[0][0]])
    for name, _ in rows:
        dt = statistics.median(times[name])
        print(f"{name:34s} {dt * 1e3:8.0f} {seconds / dt:9.1f} {dt / best:6.2f}", flush=True)


if __name__ == "__main__":
    main()
