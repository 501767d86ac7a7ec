"""Memory held per rank by the pretraining state, unsharded on 1 process vs FSDP2 on N CPU processes (gloo).

For each rank: bytes of student and teacher parameters and of AdamW state actually held by that rank (sum of
local shard sizes, exact), and the process's peak RSS after one full training step (forward, backward,
optimizer step), which also counts activations (the same per rank: the batch is per rank), gradients,
gathered parameters, the full model each rank builds before sharding it, and the runtime (``start RSS``,
the peak before the model is built):

    python benchmarks/memory_per_rank.py                  # small model, 1 vs 2 ranks
    python benchmarks/memory_per_rank.py --size base --ranks 1 2 4
"""

from __future__ import annotations

import argparse
import resource
import tempfile
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.distributed.device_mesh import init_device_mesh
from train_step import make_batch

from callbacks.ema_teacher import local_tensor
from ecg_dino.hparams import DinoArgs, HeadArgs, IBOTArgs
from ecg_dino.module import DinoPretrainModule
from ecg_dino.parallel import shard_module

MiB = 2**20


def tensor_bytes(tensors: list[torch.Tensor]) -> int:
    """Bytes of the local shards of ``tensors``."""
    return sum(local_tensor(t).numel() * t.element_size() for t in tensors)


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def measure(rank: int, world: int, init_file: str, args: argparse.Namespace, results: dict) -> None:
    """One training step on this rank, then its memory figures into ``results[rank]``."""
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    start_rss = peak_rss_bytes()
    try:
        torch.manual_seed(rank)
        module = DinoPretrainModule(
            backbone={"size": args.size},
            head=HeadArgs(hidden_dim=args.head_hidden),
            dino=DinoArgs(num_prototypes=args.prototypes),
            ibot=IBOTArgs(num_prototypes=args.prototypes),
        ).train()
        if world > 1:
            shard_module(module, init_device_mesh("cpu", (world,), mesh_dim_names=("data_parallel",)), "32-true")
        optimizer = module.configure_optimizers()
        batch = make_batch(args.batch, 5.0, 2.0, 4, 250.0, torch.device("cpu"))
        module.compute_losses(batch, step=0, teacher_temp=0.04)["loss"].backward()
        optimizer.step()
        optimizer_state = [v for state in optimizer.state.values() for v in state.values() if torch.is_tensor(v)]
        results[rank] = {
            "student": tensor_bytes(list(module.student.parameters())),
            "teacher": tensor_bytes(list(module.teacher.parameters())),
            "optimizer": tensor_bytes(optimizer_state),
            "start_rss": start_rss,
            "peak_rss": peak_rss_bytes(),
        }
    finally:
        dist.destroy_process_group()


def run(world: int, args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as tmp, mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(measure, args=(world, str(Path(tmp) / "init"), args, results), nprocs=world, join=True)
        return dict(results)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="small")
    p.add_argument("--ranks", nargs="+", type=int, default=[1, 2])
    p.add_argument("--batch", type=int, default=4, help="samples per rank")
    p.add_argument("--prototypes", type=int, default=4096)
    p.add_argument("--head-hidden", type=int, default=1024)
    args = p.parse_args()
    print(
        f"ViT-{args.size}, {args.prototypes} prototypes, head hidden {args.head_hidden}, {args.batch} samples/rank,"
        f" CPU, torch {torch.__version__}; MiB held by each rank (FSDP2 when ranks > 1)"
    )
    print(
        f"{'ranks':>5} {'rank':>4} {'student':>9} {'teacher':>9} {'AdamW':>9} {'params+opt':>11} "
        f"{'start RSS':>10} {'peak RSS':>9}"
    )
    for world in args.ranks:
        for rank, r in sorted(run(world, args).items()):
            total = r["student"] + r["teacher"] + r["optimizer"]
            print(
                f"{world:>5} {rank:>4} {r['student'] / MiB:9.1f} {r['teacher'] / MiB:9.1f} "
                f"{r['optimizer'] / MiB:9.1f} {total / MiB:11.1f} {r['start_rss'] / MiB:10.0f} "
                f"{r['peak_rss'] / MiB:9.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
