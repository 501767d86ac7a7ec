"""Training-step throughput of the full DINOv3 step (teacher + student + heads + losses + AdamW + EMA).

Prints samples/s, lead-seconds/s (the real leads of one global crop per sample), tokens/s and achieved FLOP/s
as a fraction of the matmul peak measured in this same process (MFU), for each model size and precision, on
whatever device is present. By default the batch is synthetic (``make_batch``); ``--config`` takes the model
and real batches from an experiment YAML instead, so the figures are those of that run's step:

    python benchmarks/train_step.py                       # tiny and small, fp32 and bf16
    python benchmarks/train_step.py --sizes small --batch 64 --precisions bf16   # on a GPU
    python benchmarks/train_step.py --config experiments/pretrain_cpu_many.yaml --precisions bf16 --threads 1
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import sys
import time
import unittest.mock

import torch

from callbacks.ema_teacher import ema_update
from ecg_dino.cli import DEFAULTS, ECGDinoCLI
from ecg_dino.flops import flop_counter
from ecg_dino.hparams import DinoArgs, HeadArgs, IBOTArgs
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
    """Tokens through a backbone per step: teacher and student on global crops, student on local crops; a row
    costs the leads up to its last present one (``ECGViT.forward_features`` encodes no padded lead beyond)."""
    ps = module.student.backbone.patch_samples
    prefix = 1 + module.student.backbone.num_registers

    def n(c: dict) -> int:
        leads = c["lead_mask"]
        width = (leads * torch.arange(1, leads.shape[1] + 1, device=leads.device)).amax(1)
        return int((width * (c["signal"].shape[2] // ps) + prefix).sum())

    return 2 * n(batch["global"]) + n(batch["local"])


def lead_seconds(batch: dict) -> float:
    """ECG lead-seconds a step consumes: the present leads × valid seconds of each sample's first global crop."""
    g = batch["global"]
    B = g["signal"].shape[0] // batch["n_global_crops"]
    return float((g["lead_mask"][:B].sum(1) * g["valid_samples"][:B]).sum()) / batch["sample_rate_hz"]


def experiment_setup(config: str, n_batches: int) -> tuple[DinoPretrainModule, list[dict]]:
    """The experiment YAML's module and its first ``n_batches`` real batches (workerless loader, same data)."""
    args = ["--config", str(DEFAULTS), "--config", config, "--trainer.logger=false", "--trainer.callbacks=[]"]
    with unittest.mock.patch.object(sys, "argv", sys.argv[:1]):  # the benchmark's own flags are not the CLI's
        cli = ECGDinoCLI(args=args, run=False)
    cli.datamodule.num_workers = 0
    cli.datamodule.setup("fit")
    return cli.model, list(itertools.islice(cli.datamodule.train_dataloader(), n_batches))


def setup(
    size: str, args: argparse.Namespace, device: torch.device
) -> tuple[DinoPretrainModule, torch.optim.Optimizer, list[dict]]:
    """The module in train mode, its AdamW and the benchmark batches: the experiment's (``--config``) or one
    synthetic batch of ``batch_arguments``."""
    if args.config:
        module, batches = experiment_setup(args.config, args.warmup + args.steps)
    else:
        module = DinoPretrainModule(
            backbone={"size": size},
            head=HeadArgs(hidden_dim=args.head_hidden, bottleneck_dim=256),
            dino=DinoArgs(num_prototypes=args.prototypes),
            ibot=IBOTArgs(num_prototypes=args.prototypes),
        )
        batches = [make_batch(args.batch, args.global_seconds, args.local_seconds, args.n_local, 250.0, device)]
    module.to(device).train()
    return module, module.configure_optimizers(), [to_device(b, device) for b in batches]


def first_step(module: DinoPretrainModule) -> int:
    """The benchmark's first step number: where every loss is on (Gram anchoring starts at its own step)."""
    return module.cfg.gram.start_step if module.gram_teacher is not None else 0


def to_device(batch: dict, device: torch.device) -> dict:
    return {
        k: to_device(v, device) if isinstance(v, dict) else v.to(device) if torch.is_tensor(v) else v
        for k, v in batch.items()
    }


def batch_arguments(p: argparse.ArgumentParser) -> None:
    """Batch, crops and head sizes of the benchmark step (shared with ``step_breakdown.py``)."""
    p.add_argument("--config", help="experiment YAML: its model and real batches (ignores the options below)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--global-seconds", type=float, default=5.0)
    p.add_argument("--local-seconds", type=float, default=2.0)
    p.add_argument("--n-local", type=int, default=4)
    p.add_argument("--prototypes", type=int, default=4096)
    p.add_argument("--head-hidden", type=int, default=1024)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")


def bench(size: str, precision: str, args: argparse.Namespace, device: torch.device, peaks: dict) -> str:
    module, opt, batches = setup(size, args, device)
    student = [p.detach() for p in module.student.parameters()]
    teacher = [p.detach() for p in module.teacher.parameters()]
    dtype = DTYPES[precision]
    batch_at = lambda i: batches[i % len(batches)]  # noqa: E731

    def step(i: int) -> None:
        with torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext():
            loss = module.compute_losses(batch_at(i), first_step(module) + i, 0.04)["loss"]
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        ema_update(teacher, student, 0.996)

    timed = range(args.warmup, args.warmup + args.steps)
    flops = 0
    for i in timed:  # FLOPs of each timed batch (these steps also warm up)
        with flop_counter() as counter:
            step(i)
        flops += counter.get_total_flops() / args.steps
    for i in range(args.warmup):
        step(i)
    sync(device)
    t = time.perf_counter()
    for i in timed:
        step(i)
    sync(device)
    dt = (time.perf_counter() - t) / args.steps
    B = batch_at(0)["global"]["signal"].shape[0] // batch_at(0)["n_global_crops"]
    seconds = sum(lead_seconds(batch_at(i)) for i in timed) / args.steps
    tokens = sum(tokens_per_step(module, batch_at(i)) for i in timed) / args.steps
    peak = peaks[precision]
    achieved = flops / dt
    return (
        f"{size:6s} {precision:5s} batch {B:4d}  {dt * 1e3:8.1f} ms/step  {B / dt:7.1f} samples/s  "
        f"{seconds / dt:8.1f} lead-s/s  {tokens / dt:8.0f} tokens/s  {flops / B / 1e9:6.1f} GFLOP/sample  "
        f"{achieved / 1e9:7.1f} GFLOP/s  MFU {achieved / peak:5.1%} (peak {peak / 1e9:.0f} GFLOP/s)"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", nargs="+", default=["tiny", "small"])
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=list(DTYPES))
    batch_arguments(p)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.config:
        args.sizes = ["config"]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    peaks = {name: matmul_peak(device, dt or torch.float32) for name, dt in DTYPES.items()}
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"{torch.get_num_threads()} threads"
    fp32, bf16 = peaks["fp32"] / 1e9, peaks["bf16"] / 1e9
    print(f"device {device} ({name}), torch {torch.__version__}; matmul peak fp32 {fp32:.0f}, bf16 {bf16:.0f} GFLOP/s")
    if args.config:
        print(f"model and batches: {args.config}")
    else:
        print(
            f"crops: 2 x 12-lead {args.global_seconds} s global, {args.n_local} x 3-lead {args.local_seconds} s local"
        )
    for size in args.sizes:
        for precision in args.precisions:
            print(bench(size, precision, args, device, peaks), flush=True)


if __name__ == "__main__":
    main()
