"""Attention forward+backward on this CPU: the fused ``scaled_dot_product_attention`` kernel against explicit
matmul + softmax, fp32 and bf16, at the token counts of ECG crops (tiny ViT: 3 heads of 64). The figures behind
``ecg_dino.model.vit.attention``'s choice of matmul + softmax for bf16 on CPU. Not a test.

    python benchmarks/attention.py [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ecg_dino.model.vit import attention


def median_ms(fn: Callable[[], None], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def fused(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    F.scaled_dot_product_attention(q, k, v).float().sum().backward()


def explicit(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    attention(q, k, v, None).float().sum().backward()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    p.add_argument("--tokens", type=int, nargs="+", default=[15, 45, 85, 165, 305, 605])
    p.add_argument("--batch-tokens", type=int, default=5440, help="rows × tokens per call (a step's global crops)")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; 3 heads of 64; median ms of fwd+bwd")
    print(f"{'dtype':9s} {'tokens':>6s} {'rows':>5s} {'fused':>8s} {'matmul':>8s} {'fused/matmul':>12s}")
    for dtype in (torch.float32, torch.bfloat16):
        for n in args.tokens:
            rows = max(1, args.batch_tokens // n)
            q, k, v = (torch.randn(rows, 3, n, 64, dtype=dtype, requires_grad=True) for _ in range(3))
            a = median_ms(lambda: fused(q, k, v), args.repeats)  # noqa: B023
            b = median_ms(lambda: explicit(q, k, v), args.repeats)  # noqa: B023
            print(f"{str(dtype)[6:]:9s} {n:6d} {rows:5d} {a:8.1f} {b:8.1f} {a / b:12.2f}")


if __name__ == "__main__":
    main()
