"""Benchmark of ``theory.telescope`` against its GEMM floor (Jeffares, Curth & van der Schaar 2024 setting).

3-layer ReLU MLP 40-200-200-1 on MNIST-1D classes 0 vs 1 (n train, m test, targets 0/1), squared loss,
full-batch GD for T steps recording p_train/p_test every step, in float32. Exact telescoping needs per step
the (n+m)×|B| eNTK (structured: Σ_l 2(n+m)|B|(d_in + d_out) flops for the activation and δ Grams) and the
smoother update, a (n+m)×|B| by |B|×(n+1) GEMM: O((n+m)·n²) for full batch. The floor is those FLOPs at the
machine's fp32 GEMM rate measured in the same run. Times are CPU seconds of this (single-threaded by
default) process, so that other jobs on a shared machine do not count; the wall time is printed beside.
The ratios are more robust than the raw times. Run ``python benchmarks/telescoping.py --steps 50`` for a smoke run.
"""

from __future__ import annotations

import argparse
import copy
import time

import mnist1d.data
import numpy as np
import torch

from theory.telescoping import OptimizerSpec, telescope


def load(n: int, m: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """MNIST-1D, classes 0 and 1, generated offline (``make_dataset``, never ``get_dataset``)."""
    args = mnist1d.data.get_dataset_args()
    args.num_samples = int(6 * (n + m))  # ~20% of samples are class 0 or 1
    args.seed = seed
    data = mnist1d.data.make_dataset(args)
    x = np.concatenate([data["x"], data["x_test"]])
    y = np.concatenate([data["y"], data["y_test"]])
    keep = np.flatnonzero(y < 2)
    if keep.size < n + m:
        raise RuntimeError(f"only {keep.size} samples of classes 0/1; need {n + m}")
    x, y = torch.tensor(x[keep], dtype=torch.float32), torch.tensor(y[keep], dtype=torch.float32)
    return x[:n], y[:n], x[n : n + m]


def mlp(width: int, seed: int) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    lin = torch.nn.Linear
    return torch.nn.Sequential(lin(40, width), torch.nn.ReLU(), lin(width, width), torch.nn.ReLU(), lin(width, 1))


def gemm_rate(n_eval: int, n: int, repeats: int = 5) -> float:
    """Measured fp32 GEMM rate (flop/s) on the smoother-update shape (n_eval × n)(n × n), best of repeats."""
    a, b = torch.randn(n_eval, n), torch.randn(n, n + 1)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        a @ b
        best = min(best, time.process_time() - start)
    return 2 * n_eval * n * (n + 1) / best


def step_flops(model: torch.nn.Sequential, n_eval: int, batch: int, n: int) -> tuple[float, float]:
    """(kernel, smoother) flops of one step.

    Kernel: the feature pass (forward and δ backpropagation, ≈ 3 forward GEMMs of 2·d_in·d_out per sample and
    layer) of the n_eval + batch inputs, then per dense layer the activation and δ Grams, 2·n_eval·batch·(d_in +
    d_out). Smoother: the (n_eval × batch)(batch × (n + 1)) GEMM.
    """
    layers = [mod for mod in model if isinstance(mod, torch.nn.Linear)]
    feature_pass = sum(6 * (n_eval + batch) * lay.in_features * lay.out_features for lay in layers)
    grams = sum(2 * n_eval * batch * (lay.in_features + lay.out_features) for lay in layers)
    return float(feature_pass + grams), float(2 * n_eval * batch * (n + 1))


def train_only(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, lr: float, steps: int, batch: int) -> float:
    net = copy.deepcopy(model)
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(0)
    start = time.process_time()
    for _ in range(steps):
        idx = torch.randperm(x.shape[0], generator=gen)[:batch] if batch < x.shape[0] else slice(None)
        opt.zero_grad()
        loss = 0.5 * ((net(x[idx]).squeeze(1) - y[idx]) ** 2).mean()
        loss.backward()
        opt.step()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--m", type=int, default=1000)
    parser.add_argument("--width", type=int, default=200)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--batch", type=int, default=100, help="minibatch size of the SGD comparison")
    parser.add_argument("--threads", type=int, default=1, help="1 avoids OpenMP stalls on a shared machine")
    parser.add_argument("--seed", type=int, default=0)
    opts = parser.parse_args()
    torch.set_num_threads(opts.threads)
    torch.set_flush_denormal(True)
    x, y, x_test = load(opts.n, opts.m, opts.seed)
    model = mlp(opts.width, opts.seed)
    n_eval, spec = opts.n + opts.m, OptimizerSpec("sgd", lr=opts.lr)
    telescope(model, (x, y), x_test, spec, 2, seed=opts.seed, dtype=torch.float32)  # warm-up (lazy imports)
    rows = []
    for batch in (opts.n, opts.batch):
        rate_before = gemm_rate(n_eval, opts.n)
        t_train = train_only(model, x, y, opts.lr, opts.steps, batch)
        start, wall = time.process_time(), time.perf_counter()
        res = telescope(model, (x, y), x_test, spec, opts.steps, seed=opts.seed, batch_size=batch, dtype=torch.float32)
        t_tel, wall = time.process_time() - start, time.perf_counter() - wall
        rate = (rate_before + gemm_rate(n_eval, opts.n)) / 2  # the load on a shared machine drifts
        kernel, smoother = step_flops(model, n_eval, batch, opts.n)
        floor = opts.steps * (kernel + smoother) / rate
        rows.append((batch, rate, t_train, t_tel, wall, kernel, smoother, floor, res))
    print(
        f"MNIST-1D 0 vs 1, MLP 40-{opts.width}-{opts.width}-1 ReLU, n={opts.n}, m={opts.m}, T={opts.steps}, "
        f"GD/SGD lr={opts.lr}, fp32, {opts.threads} thread(s); p and gap at step T"
    )
    print(
        f"{'batch':>6} {'GEMM GF/s':>9} {'train s':>8} {'telesc. s':>10} {'(wall s)':>9} {'kernel GF/step':>15} "
        f"{'smoother GF/step':>17} {'floor s':>8} {'telesc./floor':>14} {'p_train':>8} {'p_test':>8} {'max|gap|':>9}"
    )
    for batch, rate, t_train, t_tel, wall, kernel, smoother, floor, res in rows:
        print(
            f"{batch:>6} {rate / 1e9:>9.1f} {t_train:>8.2f} {t_tel:>10.2f} {wall:>9.1f} {kernel / 1e9:>15.3f} "
            f"{smoother / 1e9:>17.3f} {floor:>8.2f} {t_tel / floor:>14.2f} {res.p_train[-1, 0]:>8.1f} "
            f"{res.p_test[-1, 0]:>8.1f} {np.abs(res.gap[-1]).max():>9.2e}"
        )
    full, mini = rows
    print(
        f"minibatch B={opts.batch} vs full batch: time ratio {mini[3] / full[3]:.3f}, "
        f"flop ratio {(mini[5] + mini[6]) / (full[5] + full[6]):.3f} (CPU seconds)"
    )


if __name__ == "__main__":
    main()
