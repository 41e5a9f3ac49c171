"""Cost of the guards of ``theory.empirical_ntk`` (input checks, the probe on a few samples, the memory check).

Run: ``python benchmarks/ntk_guards.py`` (about half a minute on 2 cores). For each case it prints, side by side,
the wall time of the guards alone (``probe_model``: NaN/Inf scan, one forward of the first 4 samples and one
per sample; ``check_memory``: one forward of one sample) and of the whole ``empirical_ntk`` call that runs
them, and their ratio:
(a) a small MLP 3-4-2, N = 5, full kernel (float64): the worst case, where the kernel itself costs almost nothing;
(b) MLP 40-512-512-10 on N = 256 MNIST-1D-sized inputs, full kernel (float32);
(c) the same MLP, output-traced kernel (float64), as ``unitheory predict`` computes it.
Times are medians of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from theory import empirical_ntk
from theory.ntk._guards import check_memory, probe_model
from theory.ntk._model import make_view
from theory.ntk.structured import StructuredBackend


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    small = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    mlp = nn.Sequential(nn.Linear(40, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
    cases = [
        ("(a) MLP 3-4-2, N=5, full, fp64", small, torch.randn(5, 3, dtype=torch.float64), {}),
        ("(b) MLP 40-512-512-10, N=256, full, fp32", mlp, torch.randn(256, 40), {}),
        ("(c) MLP 40-512-512-10, N=256, traced, fp64", mlp, torch.randn(256, 40), {"trace_outputs": True,
                                                                                    "dtype": torch.float64}),
    ]  # fmt: skip
    print(f"{'case':<44} {'guards (ms)':>12} {'empirical_ntk (ms)':>19} {'guards / total':>15}")
    for name, model, x, options in cases:
        view = make_view(model, x, None, options.get("dtype"))
        backend = StructuredBackend(view, {"": view.names}, "trace" if options.get("trace_outputs") else "full")

        def guards(view=view, backend=backend, x=x) -> None:
            probe_model(view, x)
            check_memory(backend, view, x, None, None)

        cost = median_time(guards, args.repeats)
        total = median_time(lambda m=model, x=x, o=options: empirical_ntk(m, x, **o), args.repeats)
        print(f"{name:<44} {1e3 * cost:>12.3f} {1e3 * total:>19.3f} {cost / total:>14.1%}")


if __name__ == "__main__":
    main()
