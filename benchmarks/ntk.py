"""Benchmark of ``theory.empirical_ntk``: every implementation against the torch.func tutorial, side by side.

Run: ``python benchmarks/ntk.py`` (about 3-5 minutes on 2 cores). Prints one table: wall time of each
implementation, its speed-up over the tutorial method (vmap(jacrev) + einsum, from the torch.func "Neural
Tangent Kernels" tutorial) measured in the same run, and the largest relative deviation from it:
(a) MLP 40-512-512-10, N = 256, full (N, N, O, O) kernel, fp32, plus the GEMM floor (FLOPs of the
    structured contraction / the fp32 GEMM rate measured now on its dominant shape);
(b) the MNIST-1D 1-D conv net (3 Conv1d of 32 channels + linear head), N = 256, full kernel;
(c) an MLP 40-128-128-10 with a module that owns a parameter directly (no closed form: 'auto' falls back);
(d) peak RSS of an output-traced N = 20,000 kernel of an MLP 40-128-128-10, in a fresh subprocess.
Timings are the best of ``--repeats`` runs for auto/structured, else one run; ``--threads`` sets torch's threads.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time

import mnist1d.data
import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

from empirics.models import build_model
from theory import empirical_ntk, resolve_implementation


class Gain(nn.Module):
    """Per-unit gain owned directly by a custom module: the structured implementation has no closed form."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones(size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gain


def tutorial_ntk(net: nn.Module, x1: torch.Tensor, x2: torch.Tensor, trace: bool = False) -> torch.Tensor:
    """``empirical_ntk_jacobian_contraction`` of the torch.func NTK tutorial, verbatim in substance
    (traced: its einsum with the output axes contracted, 'Naf,Maf->NM', divided by O)."""
    params = {k: v.detach() for k, v in net.named_parameters()}

    def fnet_single(params, x):
        return functional_call(net, params, (x.unsqueeze(0),)).squeeze(0)

    jac1 = [j.flatten(2) for j in vmap(jacrev(fnet_single), (None, 0))(params, x1).values()]
    jac2 = [j.flatten(2) for j in vmap(jacrev(fnet_single), (None, 0))(params, x2).values()]
    expr = "Naf,Maf->NM" if trace else "Naf,Mbf->NMab"
    result = torch.stack([torch.einsum(expr, j1, j2) for j1, j2 in zip(jac1, jac2, strict=True)]).sum(0)
    return result / jac1[0].shape[1] if trace else result


def best_time(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def gemm_rate(m: int, k: int, n: int, repeats: int = 5) -> float:
    """Measured fp32 GEMM rate (FLOP/s) of an (m, k) @ (k, n) product."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    seconds, _ = best_time(lambda: a @ b, repeats)
    return 2 * m * k * n / seconds


def structured_mlp_flops(widths: list[int], n: int, n_out: int) -> float:
    """FLOPs of the structured full kernel: per layer 2(N·O)²·d_out (δ Gram) + 2N²·(d_in + 1) (activation Gram)."""
    return sum(
        2 * (n * n_out) ** 2 * d_out + 2 * n**2 * (d_in + 1) for d_in, d_out in zip(widths, widths[1:], strict=False)
    )


def compare(
    label: str, model: nn.Module, x: torch.Tensor, repeats: int, rows: list, extra: dict | None = None, trace=False
) -> None:
    print(f"{label}: tutorial ...", file=sys.stderr, flush=True)
    t_tut, reference = best_time(lambda: tutorial_ntk(model, x, x, trace), 1)
    rows.append((label, "tutorial vmap(jacrev)+einsum", t_tut, 1.0, 0.0))
    for impl in ["auto", "structured", "jacobian", "ntk_vp"]:
        if impl == "structured" and resolve_implementation(model, x) != "structured":
            continue
        print(f"{label}: {impl} ...", file=sys.stderr, flush=True)
        seconds, theta = best_time(
            lambda impl=impl: empirical_ntk(model, x, implementation=impl, trace_outputs=trace),
            repeats if impl in ("auto", "structured") else 1,
        )
        name = f"auto -> {resolve_implementation(model, x).value}" if impl == "auto" else impl
        dev = ((theta - reference).abs().max() / reference.abs().max()).item()
        rows.append((label, name, seconds, t_tut / seconds, dev))
    for name, seconds in (extra or {}).items():
        rows.append((label, name, seconds, t_tut / seconds, float("nan")))


def rss_child(n: int) -> None:
    torch.manual_seed(0)
    model = build_model("mlp", input_dim=40, output_dim=10, width=128, depth=2, seed=0)
    x = torch.randn(n, 40)
    start = time.perf_counter()
    theta = empirical_ntk(model, x, trace_outputs=True)
    seconds = time.perf_counter() - start
    maxrss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    with open("/proc/self/status") as status:  # VmHWM: this process's own peak (ru_maxrss keeps the parent's)
        hwm_gb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 2**20
    print(f"{tuple(theta.shape)} {theta.dtype} {seconds:.1f} {maxrss_gb:.2f} {hwm_gb:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: the 2-core machine is shared)")
    parser.add_argument("--rss-n", type=int, default=20_000)
    parser.add_argument("--rss-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    if args.rss_child:
        rss_child(args.rss_child)
        return
    # (d) first: a child's ru_maxrss starts from its parent's peak RSS at fork (Linux)
    child = subprocess.run(
        [sys.executable, __file__, "--rss-child", str(args.rss_n), "--threads", str(args.threads)],
        capture_output=True,
        text=True,
        check=True,
    )
    shape = child.stdout.split(") ")[0] + ")"
    dtype, seconds, maxrss, hwm = child.stdout.split(") ")[1].split()
    rows: list[tuple] = []
    n, n_out = 256, 10
    widths = [40, 512, 512, 10]
    mlp = build_model("mlp", input_dim=40, output_dim=n_out, width=512, depth=2, seed=0)
    x = torch.randn(n, 40, generator=torch.Generator().manual_seed(0))
    floor = structured_mlp_flops(widths, n, n_out) / gemm_rate(n * n_out, 512, n * n_out)
    compare("(a) MLP 40-512-512-10", mlp, x, args.repeats, rows, {"GEMM floor (FLOPs / fp32 GEMM rate)": floor})

    data = mnist1d.data.make_dataset(mnist1d.data.get_dataset_args())
    x_mnist = torch.as_tensor(data["x"][:n], dtype=torch.float32)
    conv = build_model("conv1d", seed=0)
    compare("(b) MNIST-1D conv1d", conv, x_mnist, args.repeats, rows)
    compare("(b) conv1d, traced", conv, x_mnist, args.repeats, rows, trace=True)

    torch.manual_seed(0)
    fallback = nn.Sequential(
        nn.Linear(40, 128), Gain(128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10)
    )
    compare("(c) unsupported module", fallback, x, args.repeats, rows)

    print(f"threads={args.threads}  repeats={args.repeats}  torch {torch.__version__}")
    print(f"{'case':<24} {'implementation':<40} {'seconds':>9} {'x tutorial':>11} {'max rel dev':>12}")
    for label, name, seconds_, ratio, dev in rows:
        print(f"{label:<24} {name:<40} {seconds_:>9.3f} {ratio:>10.1f}x {dev:>12.1e}")
    floor_row = next(r for r in rows if r[1].startswith("GEMM floor"))
    structured_row = next(r for r in rows if r[0] == floor_row[0] and r[1] == "structured")
    print(f"(a) structured / GEMM floor = {structured_row[2] / floor_row[2]:.2f}")
    print(
        f"(d) N={args.rss_n} traced kernel {shape} {dtype}: {float(seconds):.1f} s, peak RSS {hwm} GB (VmHWM), "
        f"ru_maxrss {maxrss} GB"
    )


if __name__ == "__main__":
    main()
