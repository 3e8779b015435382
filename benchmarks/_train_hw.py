"""Training throughput against the machine's measured matrix-multiply peak.

Used by ``bench_train.py``. Training FLOPs per window are counted as
2 x 3 x the forward multiply-adds (a multiply-add is 2 FLOPs; the backward pass
costs about twice the forward), the issue's convention; the multiply-adds are
counted by torch's own ``FlopCounterMode`` on one window.

Every figure is measured in fresh worker processes (spawned), so the torch thread
count is exactly the one asked for and several workers run truly in parallel,
as fold tasks do under ``--jobs 2``.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Mapping, Sequence

PEAK_N = 1024  # float32 square matmul; large enough to reach the BLAS peak


def _peak_worker(threads: int, seconds: float) -> float:
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(PEAK_N, PEAK_N), torch.randn(PEAK_N, PEAK_N)
    a @ b
    best = 0.0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        for _ in range(5):
            a @ b
        best = max(best, 5 * 2 * PEAK_N**3 / (time.perf_counter() - t))
    return best / 1e9


def _throughput_worker(
    model: str,
    input_shape: tuple[int, ...],
    tasks: dict[str, int],
    threads: int,
    batch: int,
    seconds: float,
) -> tuple[float, float]:
    """(windows per second of training steps, forward multiply-adds per window)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from emomon.models import build_model, multitask_loss

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = build_model(model, input_shape=input_shape, tasks=tasks)
    x = torch.randn(batch, *input_shape)
    y = {t: torch.randint(0, k, (batch,)) for t, k in tasks.items()}
    net.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(x[:1])
    macs = counter.get_total_flops() / 2
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net.train()

    def step() -> None:
        loss = multitask_loss(net(x), y, weights=net.loss_weights, class_weights=None)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or n < 5:
        step()
        n += 1
    return n * batch / (time.perf_counter() - t0), macs


def _parallel(fn, args: Sequence[tuple], processes: int) -> list:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(processes) as pool:
        return pool.starmap(fn, args)


def matmul_peak(threads: int, *, processes: int = 1, seconds: float = 4.0) -> float:
    """Measured float32 matmul GFLOP/s: ``processes`` workers of ``threads`` each."""
    return sum(_parallel(_peak_worker, [(threads, seconds)] * processes, processes))


def training_throughput(
    model: str,
    input_shape: Sequence[int],
    tasks: Mapping[str, int],
    *,
    threads: int,
    processes: int = 1,
    batch: int = 64,
    seconds: float = 12.0,
) -> dict[str, float]:
    """Training windows/s of ``processes`` parallel workers of ``threads`` each.

    Returns the summed windows per second, the forward multiply-adds per
    window and the achieved training GFLOP/s (6 x multiply-adds x windows/s).
    """
    args = (model, tuple(input_shape), dict(tasks), threads, batch, seconds)
    out = _parallel(_throughput_worker, [args] * processes, processes)
    wps = sum(o[0] for o in out)
    macs = out[0][1]
    return {
        "windows_per_s": round(wps, 1),
        "forward_macs_per_window": int(macs),
        "train_gflops": round(6 * macs * wps / 1e9, 2),
    }
