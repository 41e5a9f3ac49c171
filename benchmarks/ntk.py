"""Benchmark of ``theory.empirical_ntk`` against the torch.func tutorial and the hardware floor, side by side.

Run: ``python benchmarks/ntk.py`` (defaults: about 15 minutes on one thread of the 2-core machine; pick
cases with ``--cases`` and sizes with ``--sizes``). Cases:

- ``mlp``: (a) MLP 40-512-512-10, N = 256, full kernel, every implementation and the GEMM floor;
  (b) the MNIST-1D conv1d net, full and traced; (c) an MLP with a parameter-owning custom module ('auto'
  falls back); (d) peak RSS of a traced N = ``--rss-n`` MLP kernel in a fresh subprocess.
- ``conv``: the CIFAR-shaped net (Conv2d 3→32 3×3 pad 1, ReLU, Conv2d 32→64 3×3 stride 2, ReLU, Conv2d 64→128
  3×3 stride 2, ReLU, global average pool, Linear 128→10; 94,538 parameters) on 3×32×32 inputs; ``resnet``: a
  residual net with GroupNorm and BatchNorm (eval), 290,090 parameters. Each at N in ``--sizes`` /
  ``--resnet-sizes`` (default 256; issue 14 asks for 256,1024 too), traced and full: the tutorial
  (N ≤ ``--tutorial-max-n``; its Jacobians take N·O·P floats) and ``auto``, with "× tutorial" (its time /
  ours) and "× floor" (ours / floor). Floor = (counted FLOPs: forward + O backward passes of the batch, by
  ``FlopCounterMode``, + the Gram, 2·N²·O·P traced and (N·O)²·P full as in issue 14) / the fp32 GEMM rate
  measured now on this device; traced rows also show the floor with the symmetric half of the Gram, N²·O·P.
- ``rss``: the traced CIFAR-net kernel for N = ``--conv-rss-n`` in a fresh subprocess: time and peak RSS.
- ``approx``: exact traced vs pseudo-NTK (``sum_outputs``) vs count-sketched kernels (``sketch_dim``) on the
  CIFAR net, N = ``--approx-n``, each in a fresh subprocess: time, peak RSS, relative Frobenius error (the
  exact run doubles as ``rss`` when both N agree, as by default).
- ``operator``: ``ntk_operator`` + Lanczos top-5 (``top_eigenpairs``) of the full CIFAR-net kernel for
  N = ``--operator-n`` (N·O)² entries that are not formed.

Timings are the best of ``--repeats`` runs (the conv cases' tutorial too, so that both sides of "× tutorial"
are taken alike on a loaded machine; one run for the MLP tutorial and for N > ``--tutorial-max-n``), in
process CPU seconds with one thread on the CPU (``--clock``: on the shared 2-core machine wall times swing
with other processes' load; on an idle machine the two agree), GEMM rate included; ``--threads`` sets
torch's threads.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import mnist1d.data
import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap
from torch.utils.flop_counter import FlopCounterMode

from empirics.models import build_model
from theory import empirical_ntk, ntk_operator, resolve_implementation, top_eigenpairs


class Gain(nn.Module):
    """Per-unit gain owned directly by a custom module: the structured implementation has no closed form."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones(size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gain


class Block(nn.Module):
    """Pre-activation-free residual block: relu(n2(conv2(relu(n1(conv1 x)))) + skip(x))."""

    def __init__(self, c_in: int, c_out: int, stride: int, norm) -> None:
        super().__init__()
        self.conv1, self.n1 = nn.Conv2d(c_in, c_out, 3, stride, padding=1, bias=False), norm(c_out)
        self.conv2, self.n2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), norm(c_out)
        self.skip = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), norm(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.n2(self.conv2(torch.relu(self.n1(self.conv1(x))))) + self.skip(x))


def cifar_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, stride=2), nn.ReLU(),
        nn.Conv2d(64, 128, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10),
    )  # fmt: skip


def resnet() -> nn.Module:
    """Stem conv + GroupNorm, a BatchNorm block 32→64 (stride 2), a GroupNorm block 64→128 (stride 2), head."""
    torch.manual_seed(0)

    def batch_norm(c: int) -> nn.BatchNorm2d:
        bn = nn.BatchNorm2d(c)
        bn.running_mean.uniform_(-0.1, 0.1), bn.running_var.uniform_(0.5, 1.5)
        return bn

    net = nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1, bias=False), nn.GroupNorm(8, 32), nn.ReLU(),
        Block(32, 64, 2, batch_norm), Block(64, 128, 2, lambda c: nn.GroupNorm(8, c)),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10),
    )  # fmt: skip
    return net.eval()


def sync(device: torch.device | None) -> None:
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)


CLOCK = time.perf_counter  # main() picks time.process_time for one thread on the CPU (see --clock)


def best_time(fn, repeats: int, device: torch.device | None = None) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        sync(device)
        start = CLOCK()
        out = fn()
        sync(device)
        best = min(best, CLOCK() - start)
    return best, out


def gemm_rate(m: int, k: int, n: int, device: torch.device, repeats: int = 5) -> float:
    """Measured fp32 GEMM rate (FLOP/s) of an (m, k) @ (k, n) product on ``device``."""
    a, b = torch.randn(m, k, device=device), torch.randn(k, n, device=device)
    seconds, _ = best_time(lambda: a @ b, repeats, device)
    return 2 * m * k * n / seconds


def tutorial_ntk(net: nn.Module, x1: torch.Tensor, x2: torch.Tensor, trace: bool = False) -> torch.Tensor:
    """``empirical_ntk_jacobian_contraction`` of the torch.func NTK tutorial, verbatim in substance
    (traced: its einsum with the output axes contracted, 'Naf,Maf->NM', divided by O). When x2 is x1 the
    Jacobian is formed once (in the tutorial's favour)."""
    params = {k: v.detach() for k, v in net.named_parameters()}

    def fnet_single(params, x):
        return functional_call(net, params, (x.unsqueeze(0),)).squeeze(0)

    jac1 = [j.flatten(2) for j in vmap(jacrev(fnet_single), (None, 0))(params, x1).values()]
    jac2 = jac1 if x2 is x1 else [j.flatten(2) for j in vmap(jacrev(fnet_single), (None, 0))(params, x2).values()]
    expr = "Naf,Maf->NM" if trace else "Naf,Mbf->NMab"
    result = torch.stack([torch.einsum(expr, j1, j2) for j1, j2 in zip(jac1, jac2, strict=True)]).sum(0)
    return result / jac1[0].shape[1] if trace else result


def structured_mlp_flops(widths: list[int], n: int, n_out: int) -> float:
    """FLOPs of the structured full kernel: per layer 2(N·O)²·d_out (δ Gram) + 2N²·(d_in + 1) (activation Gram)."""
    return sum(
        2 * (n * n_out) ** 2 * d_out + 2 * n**2 * (d_in + 1) for d_in, d_out in zip(widths, widths[1:], strict=False)
    )


def floor_flops(model: nn.Module, x: torch.Tensor, n: int, trace: bool, triangle: bool = False) -> float:
    """Counted FLOPs of the Jacobian (forward + O backward passes over a batch, scaled to N samples) plus the
    Gram as issue 14 counts it: 2·N²·O·P traced (the whole square), (N·O)²·P full (the symmetric half);
    ``triangle``: the traced Gram's symmetric half N²·O·P too (a true lower bound)."""
    params = [p for p in model.parameters() if p.requires_grad]
    batch = x[: min(8, n)]
    with FlopCounterMode(display=False) as counter:
        out = model(batch).reshape(batch.shape[0], -1)
        for o in range(out.shape[1]):
            torch.autograd.grad(out[:, o].sum(), params, retain_graph=o < out.shape[1] - 1)
    jac = counter.get_total_flops() * n / batch.shape[0]
    n_out, n_params = out.shape[1], sum(p.numel() for p in params)
    return jac + ((1 if triangle else 2) * n * n * n_out * n_params if trace else (n * n_out) ** 2 * n_params)


def rel_dev(theta: torch.Tensor, reference: torch.Tensor) -> float:
    theta, reference = theta.double().cpu(), reference.double().cpu()
    return ((theta - reference).abs().max() / reference.abs().max()).item()


def compare_mlp(label, model, x, repeats, rows, extra=None, trace=False) -> None:
    print(f"{label}: tutorial ...", file=sys.stderr, flush=True)
    t_tut, reference = best_time(lambda: tutorial_ntk(model, x, x, trace), 1)
    rows.append((label, len(x), "traced" if trace else "full", "tutorial vmap(jacrev)+einsum", t_tut, 1.0, None, 0.0))
    for impl in ["auto", "structured", "jacobian", "ntk_vp"]:
        if impl == "structured" and resolve_implementation(model, x) != "structured":
            continue
        print(f"{label}: {impl} ...", file=sys.stderr, flush=True)
        seconds, theta = best_time(
            lambda impl=impl: empirical_ntk(model, x, implementation=impl, trace_outputs=trace),
            repeats if impl in ("auto", "structured") else 1,
        )
        name = f"auto -> {resolve_implementation(model, x).value}" if impl == "auto" else impl
        rows.append((label, len(x), "traced" if trace else "full", name, seconds, t_tut / seconds, None,
                     rel_dev(theta, reference)))  # fmt: skip
    for name, seconds in (extra or {}).items():
        rows.append((label, len(x), "full", name, seconds, t_tut / seconds, None, float("nan")))
    if extra:  # the GEMM floor of (a): every row's time over it
        floor = next(iter(extra.values()))
        rows[:] = [r if r[0] != label else (*r[:6], r[4] / floor, r[7]) for r in rows]


def compare_conv(label, model, sizes, args, rate, device, rows) -> None:
    """Tutorial and 'auto' on N random CIFAR-shaped inputs, traced and full, with the counted floor. Both are
    checked against a float64 Jacobian-contraction reference on a (16, min(N, 256)) sub-block."""
    model = model.to(device)
    for n in sizes:
        x = torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(n)).to(device)
        for trace in (True, False):
            kind = "traced" if trace else "full"
            floor = floor_flops(model, x, n, trace) / rate
            cols = min(n, 256)
            exact = empirical_ntk(model, x[:16], x[:cols], trace_outputs=trace, implementation="jacobian",
                                  dtype=torch.float64)  # fmt: skip
            t_tut = None
            if n <= args.tutorial_max_n:
                print(f"{label} N={n} {kind}: tutorial ...", file=sys.stderr, flush=True)
                t_tut, theta = best_time(
                    lambda x=x, trace=trace: tutorial_ntk(model, x, x, trace), args.repeats, device
                )
                rows.append((label, n, kind, "tutorial vmap(jacrev)+einsum", t_tut, 1.0, t_tut / floor,
                             rel_dev(theta[:16, :cols], exact)))  # fmt: skip
                del theta
            print(f"{label} N={n} {kind}: auto ...", file=sys.stderr, flush=True)
            repeats = args.repeats if n <= args.tutorial_max_n else 1  # larger N: one run
            seconds, theta = best_time(
                lambda x=x, trace=trace: empirical_ntk(model, x, trace_outputs=trace), repeats, device
            )
            name = f"auto -> {resolve_implementation(model, x[:2]).value}"
            ratio = None if t_tut is None else t_tut / seconds
            rows.append((label, n, kind, name, seconds, ratio, seconds / floor, rel_dev(theta[:16, :cols], exact)))
            rows.append((label, n, kind, "floor (counted FLOPs / GEMM rate)", floor, None, 1.0, float("nan")))
            if trace:
                half = floor_flops(model, x, n, trace, triangle=True) / rate
                rows.append((label, n, kind, "floor, upper-triangle Gram (N²·O·P)", half, None, seconds / half,
                             float("nan")))  # fmt: skip
            del theta


def child(kind: str, n: int, extra: int, path: str | None, device: str) -> None:
    """One kernel in a fresh process: prints JSON with its seconds and this process's peak RSS (VmHWM)."""
    dev = torch.device(device)
    if kind == "mlp":
        model = build_model("mlp", input_dim=40, output_dim=10, width=128, depth=2, seed=0).to(dev)
        x = torch.randn(n, 40, generator=torch.Generator().manual_seed(0)).to(dev)
    else:
        model = cifar_net().to(dev)
        x = torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(0)).to(dev)
    options = {
        "mlp": {}, "traced": {}, "pseudo": {"sum_outputs": True, "trace_outputs": False},
        "sketch": {"sketch_dim": extra, "random_state": 0},
    }[kind]  # fmt: skip
    options = {"trace_outputs": True, **options}
    sync(dev)
    start = CLOCK()
    theta = empirical_ntk(model, x, **options)
    sync(dev)
    seconds = CLOCK() - start
    with open("/proc/self/status") as status:  # VmHWM: this process's own peak (ru_maxrss keeps the parent's)
        hwm_gb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 2**20
    if path:
        torch.save(theta.cpu(), path)
    if dev.type == "cuda":  # the device's peak matters there; host RSS is reported as well
        hwm_gb = f"{hwm_gb:.2f} host, {torch.cuda.max_memory_allocated(dev) / 2**30:.2f} GPU"
    print(json.dumps({"shape": list(theta.shape), "seconds": seconds, "hwm_gb": hwm_gb}))


def gb(value: float | str) -> str:
    """A child's peak memory: host GB, or 'host, GPU' on CUDA."""
    return value if isinstance(value, str) else f"{value:.2f}"


def run_child(args, kind: str, n: int, extra: int = 0, path: str | None = None) -> dict:
    command = [sys.executable, __file__, "--child", kind, str(n), str(extra), path or "", "--threads",
               str(args.threads), "--device", args.device, "--clock", args.clock]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def approximations(args) -> tuple[list[tuple], dict]:
    """Exact traced vs pseudo-NTK vs sketched kernels on the CIFAR net, each in a fresh subprocess; also
    returns the exact child's report (shape, seconds, peak RSS)."""
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        exact_path = os.path.join(tmp, "exact.pt")
        print(f"approx N={args.approx_n}: exact traced ...", file=sys.stderr, flush=True)
        exact = run_child(args, "traced", args.approx_n, 0, exact_path)
        reference = torch.load(exact_path)
        out.append(("exact traced", exact["seconds"], exact["hwm_gb"], 0.0))
        for kind, extra in [("pseudo", 0)] + [("sketch", k) for k in args.sketch_dims]:
            label = "pseudo-NTK (sum_outputs)" if kind == "pseudo" else f"sketch_dim={extra}"
            print(f"approx N={args.approx_n}: {label} ...", file=sys.stderr, flush=True)
            path = os.path.join(tmp, f"{kind}{extra}.pt")
            result = run_child(args, kind, args.approx_n, extra, path)
            error = (torch.load(path) - reference).norm() / reference.norm()
            out.append((label, result["seconds"], result["hwm_gb"], error.item()))
    return out, exact


def operator_case(args, device: torch.device) -> str:
    """Lanczos top-5 of the full (N·O, N·O) CIFAR-net kernel from NTK-vector products, never formed."""
    model = cifar_net().to(device)
    x = torch.randn(args.operator_n, 3, 32, 32, generator=torch.Generator().manual_seed(1)).to(device)
    op = ntk_operator(model, x, dtype=torch.float32)
    start = CLOCK()
    top = top_eigenpairs(op, 5, tol=1e-3, random_state=0)
    seconds = CLOCK() - start
    size = op.shape[0]
    return (
        f"operator: N={args.operator_n} full kernel ({size}x{size}, {size * size * 4 / 2**30:.1f} GiB if formed): "
        f"Lanczos top-5 in {seconds:.1f} s, eigenvalues {', '.join(f'{v:.4g}' for v in top.eigenvalues)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="mlp,conv,resnet,rss,approx",
                        help="comma-separated: mlp, conv, resnet, rss, approx, operator")  # fmt: skip
    parser.add_argument("--sizes", default="256,1024", help="N of the conv case")
    parser.add_argument("--resnet-sizes", default="256", help="N of the resnet case (issue 14: 256,1024)")
    parser.add_argument("--tutorial-max-n", type=int, default=256, help="largest N the tutorial runs at")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: the 2-core machine is shared)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or mps")
    parser.add_argument("--clock", choices=("auto", "cpu", "wall"), default="auto",
                        help="auto: process CPU time with one thread on the CPU (excludes other processes' time on "
                             "a shared machine; equals wall time on an idle one), else wall time")  # fmt: skip
    parser.add_argument("--rss-n", type=int, default=20_000, help="N of the traced MLP kernel in (d)")
    parser.add_argument("--conv-rss-n", type=int, default=4096, help="N of the traced CIFAR-net kernel (rss)")
    parser.add_argument("--approx-n", type=int, default=4096, help="N of the approximation comparison")
    parser.add_argument("--sketch-dims", default="512,2048,8192", help="sketch_dim values of the comparison")
    parser.add_argument("--operator-n", type=int, default=4096, help="N of the matrix-free Lanczos case")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    global CLOCK
    if args.clock == "auto":
        args.clock = "cpu" if args.threads == 1 and args.device == "cpu" else "wall"
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    if args.child:
        kind, n, extra, path = args.child
        child(kind, int(n), int(extra), path or None, args.device)
        return
    cases = set(args.cases.split(","))
    sizes = [int(s) for s in args.sizes.split(",")]
    resnet_sizes = [int(s) for s in args.resnet_sizes.split(",")]
    args.sketch_dims = [int(s) for s in args.sketch_dims.split(",")]
    device = torch.device(args.device)
    started = time.perf_counter()
    notes, rows = [], []
    if "mlp" in cases:  # (d) first: a child's ru_maxrss starts from its parent's peak RSS at fork (Linux)
        d = run_child(args, "mlp", args.rss_n)
        notes.append(f"(d) N={args.rss_n} traced MLP kernel {tuple(d['shape'])}: {d['seconds']:.1f} s, "
                     f"peak RSS {gb(d['hwm_gb'])} GB (VmHWM)")  # fmt: skip
    approx, exact = approximations(args) if "approx" in cases else ([], None)
    if "rss" in cases:  # the exact kernel of the approximation table is this measurement when N agrees
        r = (
            exact
            if exact is not None and args.approx_n == args.conv_rss_n
            else run_child(args, "traced", args.conv_rss_n)
        )
        notes.append(f"rss: N={args.conv_rss_n} traced CIFAR-net kernel {tuple(r['shape'])}: {r['seconds']:.1f} s, "
                     f"peak RSS {gb(r['hwm_gb'])} GB (VmHWM)")  # fmt: skip
    rate = gemm_rate(2560, 4096, 2560, device)
    if "mlp" in cases:
        n, n_out = 256, 10
        mlp = build_model("mlp", input_dim=40, output_dim=n_out, width=512, depth=2, seed=0)
        x = torch.randn(n, 40, generator=torch.Generator().manual_seed(0))
        floor = structured_mlp_flops([40, 512, 512, 10], n, n_out) / gemm_rate(n * n_out, 512, n * n_out, device)
        compare_mlp("(a) MLP 40-512-512-10", mlp, x, args.repeats, rows, {"GEMM floor (FLOPs / GEMM rate)": floor})
        data = mnist1d.data.make_dataset(mnist1d.data.get_dataset_args())
        x_mnist = torch.as_tensor(data["x"][:n], dtype=torch.float32)
        conv = build_model("conv1d", seed=0)
        compare_mlp("(b) MNIST-1D conv1d", conv, x_mnist, args.repeats, rows)
        compare_mlp("(b) MNIST-1D conv1d", conv, x_mnist, args.repeats, rows, trace=True)
        torch.manual_seed(0)
        fallback = nn.Sequential(nn.Linear(40, 128), Gain(128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                                 nn.Linear(128, 10))  # fmt: skip
        compare_mlp("(c) unsupported module", fallback, x, args.repeats, rows)
    if "conv" in cases:
        compare_conv("CIFAR conv (94,538)", cifar_net(), sizes, args, rate, device, rows)
    if "resnet" in cases:
        compare_conv("ResNet GN/BN (290,090)", resnet(), resnet_sizes, args, rate, device, rows)
    if "operator" in cases:
        notes.append(operator_case(args, device))

    print(f"device={args.device} threads={args.threads} clock={args.clock} repeats={args.repeats} "
          f"torch {torch.__version__} fp32 GEMM rate {rate / 1e9:.0f} GFLOP/s, load average "
          f"{os.getloadavg()[0]:.1f}")  # fmt: skip
    header = f"{'case':<24} {'N':>5} {'kernel':<7} {'method':<36} {'seconds':>9} {'x tutorial':>11} {'x floor':>8}"
    print(header + f" {'max rel dev':>12}  (MLP cases: vs the tutorial; conv cases: vs float64 on 16 rows)")
    for label, n, kind, name, seconds, ratio, x_floor, dev in rows:
        tut = "—" if ratio is None else f"{ratio:.1f}x"
        flo = "—" if x_floor is None else f"{x_floor:.2f}"
        print(f"{label:<24} {n:>5} {kind:<7} {name:<36} {seconds:>9.3f} {tut:>11} {flo:>8} {dev:>12.1e}")
    for line in notes:
        print(line)
    if approx:
        print(f"approximations of the traced CIFAR-net kernel, N={args.approx_n} (each in a fresh process):")
        print(f"  {'kernel':<28} {'seconds':>8} {'peak RSS GB':>12} {'rel Frobenius error':>20}")
        for label, seconds, hwm, error in approx:
            print(f"  {label:<28} {seconds:>8.2f} {gb(hwm):>12} {error:>20.3e}")
    print(f"benchmark wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
