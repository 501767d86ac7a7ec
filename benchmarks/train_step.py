"""Training-step throughput of the full DINOv3 step (teacher + student + heads + losses + AdamW + EMA).

Prints samples/s, tokens/s and achieved FLOP/s as a fraction of the matmul peak measured in this same
process (MFU), for each model size and precision, on whatever device is present:

    python benchmarks/train_step.py                       # tiny and small, fp32 and bf16
    python benchmarks/train_step.py --sizes small --batch 64 --precisions bf16   # on a GPU
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch

from callbacks.ema_teacher import ema_update
from ecg_dino.flops import flop_counter
from ecg_dino.leads import STANDARD_12, lead_indices
from ecg_dino.module import DinoPretrainModule

DTYPES = {"fp32": None, "bf16": torch.bfloat16}


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int = 2048, reps: int = 10) -> float:
    """Best-of FLOP/s of an n×n matmul: the practical peak this process can reach."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(reps + 2):
        sync(device)
        t = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def make_batch(B: int, global_s: float, local_s: float, n_local: int, rate: float, device: torch.device) -> dict:
    """A pretraining batch in the documented layout: 12-lead global crops, 3-lead local crops."""

    def crops(n: int, leads: list[str], seconds: float) -> dict:
        T = int(seconds * rate)
        return {
            "signal": torch.randn(n * B, len(leads), T, device=device),
            "lead_ids": torch.tensor(lead_indices(leads), device=device).expand(n * B, -1).contiguous(),
            "lead_mask": torch.ones(n * B, len(leads), dtype=torch.bool, device=device),
            "valid_samples": torch.full((n * B,), T, device=device),
        }

    return {
        "global": crops(2, list(STANDARD_12), global_s),
        "local": crops(n_local, ["I", "II", "V2"], local_s),
        "sample_rate_hz": rate,
        "n_global_crops": 2,
        "n_local_crops": n_local,
    }


def tokens_per_step(module: DinoPretrainModule, batch: dict) -> int:
    """Tokens through a backbone per step: teacher and student on global crops, student on local crops."""
    ps = module.student.backbone.patch_samples

    def n(c: dict) -> int:
        return c["signal"].shape[0] * (c["signal"].shape[1] * (c["signal"].shape[2] // ps) + 5)

    return 2 * n(batch["global"]) + n(batch["local"])


def setup(
    size: str, args: argparse.Namespace, device: torch.device
) -> tuple[DinoPretrainModule, torch.optim.Optimizer, dict]:
    """The module in train mode, its AdamW and the benchmark batch, from ``batch_arguments``."""
    module = DinoPretrainModule(
        backbone={"size": size},
        num_prototypes=args.prototypes,
        ibot_num_prototypes=args.prototypes,
        head_hidden_dim=args.head_hidden,
        head_bottleneck_dim=256,
    ).to(device)
    module.train()
    batch = make_batch(args.batch, args.global_seconds, args.local_seconds, args.n_local, 250.0, device)
    return module, module.configure_optimizers(), batch


def batch_arguments(p: argparse.ArgumentParser) -> None:
    """Batch, crops and head sizes of the benchmark step (shared with ``step_breakdown.py``)."""
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--global-seconds", type=float, default=5.0)
    p.add_argument("--local-seconds", type=float, default=2.0)
    p.add_argument("--n-local", type=int, default=4)
    p.add_argument("--prototypes", type=int, default=4096)
    p.add_argument("--head-hidden", type=int, default=1024)


def bench(size: str, precision: str, args: argparse.Namespace, device: torch.device, peaks: dict) -> str:
    module, opt, batch = setup(size, args, device)
    student = [p.detach() for p in module.student.parameters()]
    teacher = [p.detach() for p in module.teacher.parameters()]
    dtype = DTYPES[precision]

    def step(i: int) -> None:
        with torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext():
            loss = module.compute_losses(batch, i, 0.04)["loss"]
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        ema_update(teacher, student, 0.996)

    with flop_counter() as counter:
        step(0)
    flops = counter.get_total_flops()
    for i in range(args.warmup):
        step(i)
    sync(device)
    t = time.perf_counter()
    for i in range(args.steps):
        step(i)
    sync(device)
    dt = (time.perf_counter() - t) / args.steps
    peak = peaks[precision]
    achieved = flops / dt
    return (
        f"{size:6s} {precision:5s} batch {args.batch:4d}  {dt * 1e3:8.1f} ms/step  "
        f"{args.batch / dt:8.1f} samples/s  {tokens_per_step(module, batch) / dt:10.0f} tokens/s  "
        f"{achieved / 1e9:8.1f} GFLOP/s  MFU {achieved / peak:5.1%} (peak {peak / 1e9:.0f} GFLOP/s)"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", nargs="+", default=["tiny", "small"])
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=list(DTYPES))
    batch_arguments(p)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    args = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    peaks = {name: matmul_peak(device, dt or torch.float32) for name, dt in DTYPES.items()}
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"{torch.get_num_threads()} threads"
    fp32, bf16 = peaks["fp32"] / 1e9, peaks["bf16"] / 1e9
    print(f"device {device} ({name}), torch {torch.__version__}; matmul peak fp32 {fp32:.0f}, bf16 {bf16:.0f} GFLOP/s")
    print(f"crops: 2 x 12-lead {args.global_seconds} s global, {args.n_local} x 3-lead {args.local_seconds} s local")
    for size in args.sizes:
        for precision in args.precisions:
            print(bench(size, precision, args, device, peaks), flush=True)


if __name__ == "__main__":
    main()
