"""Where a DINOv3 pretraining step goes on ECGs: time and FLOPs of each ingredient beside the whole step.

Each ingredient runs alone on the (first) batch of ``train_step.py`` (same crops, same model; ``--config`` for
an experiment's): the teacher forward with Sinkhorn-Knopp, the Gram teacher forward (when the model anchors),
the student backbone forward+backward on the global crops (with iBOT masks) and on the local crops, the DINO
head and the iBOT head forward+backward, the losses (DINO, iBOT, KoLeo, Gram), the AdamW step and the EMA
update. Medians of ``--steps`` repeats; the sum of the parts is printed beside the measured step, so what the
split misses (autograd bookkeeping, host work) shows.

    python benchmarks/step_breakdown.py                          # tiny, fp32 and bf16
    python benchmarks/step_breakdown.py --size small --precisions bf16
    python benchmarks/step_breakdown.py --config experiments/pretrain_cpu_many.yaml --precisions bf16 --threads 1
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable

import torch
from train_step import DTYPES, batch_arguments, first_step, setup, sync

from callbacks.ema_teacher import ema_update
from ecg_dino.flops import flop_counter
from ecg_dino.module import DinoPretrainModule


def timed(fn: Callable[[], object], device: torch.device, steps: int) -> float:
    """Median seconds of ``fn`` over ``steps`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(steps):
        sync(device)
        t = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def ingredients(module: DinoPretrainModule, batch: dict, opt: torch.optim.Optimizer) -> dict[str, Callable]:
    """One closure per ingredient of ``DinoPretrainModule.compute_losses`` plus the optimizer and EMA."""
    g, loc, rate = batch["global"], batch["local"], batch["sample_rate_hz"]
    G, Lc = batch["n_global_crops"], batch["n_local_crops"]
    B = g["signal"].shape[0] // G
    crops = {k: v for k, v in g.items() if k != "teacher_signal"} | {"sample_rate_hz": rate}
    student, teacher = module.student, module.teacher
    P = g["signal"].shape[-1] // student.backbone.patch_samples
    patch_mask = g["lead_mask"][:, :, None].expand(-1, -1, P).contiguous()
    masks = module._ibot_masks(patch_mask, 0)
    gram = module.gram_teacher
    with torch.no_grad():
        t_out = module.teacher_targets(crops, masks, 0.04, G)
        s_global = student.backbone.forward_features(**crops, ibot_mask=masks)
        gram_target = module.gram_targets(crops) if gram is not None else None
        s_local = student.backbone.forward_features(**loc, sample_rate_hz=rate)
        cls = torch.cat([s_global["cls"], s_local["cls"]])
        masked_patches = s_global["patches"][masks]
        logits = student.dino_head(cls)
        patch_logits = student.ibot_head(masked_patches)
    leaf = lambda t: t.detach().float().requires_grad_()  # noqa: E731
    student_params = [p.detach() for p in student.parameters()]
    teacher_params = [p.detach() for p in teacher.parameters()]

    def backbone_step(**kwargs: torch.Tensor) -> None:
        out = student.backbone.forward_features(**kwargs)
        (out["cls"].float().sum() + out["patches"].float().sum()).backward()

    def losses() -> None:
        lg, ll, lp, c = leaf(logits[: G * B]), leaf(logits[G * B :]), leaf(patch_logits), leaf(s_global["cls"])
        dino = module.dino_loss(ll.view(Lc, B, -1), t_out["cls_probs"], ignore_diagonal=False)
        dino = dino + module.dino_loss(lg.view(G, B, -1), t_out["cls_probs"], ignore_diagonal=True)
        ibot = module.ibot_loss.forward_masked(lp, t_out["patch_probs"], masks.flatten(1))
        koleo = sum(module.koleo_loss(c.view(G, B, -1)[k]) for k in range(G))
        total = dino + ibot + koleo
        if gram is not None:
            patches = leaf(s_global["patches"]).flatten(1, 2)
            total = total + module.gram_loss(patches, gram_target.flatten(1, 2), token_mask=patch_mask.flatten(1))
        total.backward()

    def no_grad(fn: Callable[[], object]) -> Callable[[], object]:
        return torch.no_grad()(fn)

    parts = {
        "teacher forward + Sinkhorn-Knopp": lambda: module.teacher_targets(crops, masks, 0.04, G),
        "Gram teacher forward": lambda: module.gram_targets(crops),
        "student global crops fwd+bwd": lambda: backbone_step(**crops, ibot_mask=masks),
        "student local crops fwd+bwd": lambda: backbone_step(**loc, sample_rate_hz=rate),
        "DINO head fwd+bwd": lambda: student.dino_head(leaf(cls)).float().sum().backward(),
        "iBOT head fwd+bwd": lambda: student.ibot_head(leaf(masked_patches)).float().sum().backward(),
        "losses (DINO, iBOT, KoLeo, Gram) fwd+bwd": losses,
        "AdamW step": opt.step,
        "EMA update": no_grad(lambda: ema_update(teacher_params, student_params, 0.996)),
    }
    if gram is None:
        del parts["Gram teacher forward"]
    return parts


def breakdown(size: str, precision: str, args: argparse.Namespace, device: torch.device) -> None:
    module, opt, batches = setup(size, args, device)
    batch, step_number = batches[0], first_step(module)
    dtype = DTYPES[precision]
    autocast = lambda: torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()  # noqa: E731

    def step() -> None:
        with autocast():
            loss = module.compute_losses(batch, step_number, 0.04)["loss"]
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()  # AdamW state exists before its step is timed alone
    with flop_counter() as counter:
        step()
    full_flops, full_time = counter.get_total_flops(), timed(step, device, args.steps)
    with autocast():
        parts = ingredients(module, batch, opt)
    rows = []
    for name, fn in parts.items():

        def run(fn: Callable = fn) -> None:
            with autocast():
                fn()

        with flop_counter() as counter:
            run()
        rows.append((name, timed(run, device, args.steps), counter.get_total_flops()))
    opt.zero_grad(set_to_none=True)
    B = batch["global"]["signal"].shape[0] // batch["n_global_crops"]
    print(
        f"\n{args.config or size} {precision}, batch {B}: "
        f"whole step {full_time * 1e3:.0f} ms, {full_flops / 1e9:.1f} GFLOP"
    )
    print(f"{'ingredient':38s} {'ms':>8s} {'% step':>7s} {'GFLOP':>8s} {'% FLOP':>7s} {'GFLOP/s':>8s}")
    for name, t, f in rows:
        print(f"{name:38s} {t * 1e3:8.1f} {t / full_time:7.1%} {f / 1e9:8.2f} {f / full_flops:7.1%} {f / t / 1e9:8.1f}")
    t_sum, f_sum = sum(r[1] for r in rows), sum(r[2] for r in rows)
    share = f"{t_sum / full_time:7.1%} {f_sum / 1e9:8.2f} {f_sum / full_flops:7.1%}"
    print(f"{'sum of the parts':38s} {t_sum * 1e3:8.1f} {share}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="tiny")
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=list(DTYPES))
    batch_arguments(p)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    for precision in args.precisions:
        breakdown(args.size, precision, args, device)


if __name__ == "__main__":
    main()
