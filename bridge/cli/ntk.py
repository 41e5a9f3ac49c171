"""``unitheory ntk``: the empirical NTK of a built-in model on MNIST-1D inputs, its spectrum summary and timing.

Example: ``unitheory ntk --model conv1d --n 256 --seed 0 --trace-outputs``.
"""

from __future__ import annotations

import argparse

MODELS = ("mlp", "conv1d")
IMPLEMENTATIONS = ("auto", "structured", "jacobian", "ntk_vp")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", choices=MODELS, default="mlp", help="built-in model (empirics.models)")
    parser.add_argument("--n", type=int, default=128, help="number of MNIST-1D inputs (drawn from 2n by --seed)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the model's initialisation and the input draw")
    parser.add_argument("--implementation", choices=IMPLEMENTATIONS, default="auto")
    parser.add_argument("--trace-outputs", action="store_true", help="kernel traced over outputs: (N, N)")
    parser.add_argument("--width", type=int, default=100, help="mlp hidden width (conv1d: channels)")
    parser.add_argument("--depth", type=int, default=2, help="mlp hidden layers")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float64")
    parser.add_argument("--z", type=float, default=None, help="N_eff(z) ridge (default: the mean eigenvalue)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda[:index] or mps")


def mnist1d_pool(n: int):
    """Training signals (≥ 2n) of MNIST-1D regenerated offline with its published arguments but a smaller size."""
    import math

    import mnist1d.data

    data_args = mnist1d.data.get_dataset_args()
    data_args.num_samples = math.ceil(2 * n / data_args.train_split)
    return mnist1d.data.make_dataset(data_args)["x"]


def execute(args: argparse.Namespace) -> int:
    import time

    import numpy as np
    import torch

    from empirics.models import build_model
    from theory import check_kernel_memory, effective_dimension, empirical_ntk, kernel_eigh, resolve_implementation
    from theory._validation import check_device, check_in_range, check_positive_int, check_seed

    check_positive_int("n", args.n, owner="unitheory ntk")
    check_seed("seed", args.seed, owner="unitheory ntk")
    check_positive_int("width", args.width, owner="unitheory ntk")
    device = check_device("device", args.device, owner="unitheory ntk")
    if args.z is not None:
        check_in_range("z", args.z, 0, None, inclusive=(False, True), owner="unitheory ntk")
    if args.threads is not None:
        torch.set_num_threads(check_positive_int("threads", args.threads, owner="unitheory ntk"))
    # Refuse at once, before drawing 2n inputs: the kernel, plus ~3 copies of it for its eigendecomposition
    # (on the device: kernel_eigh of a tensor runs there).
    dtype = getattr(torch, args.dtype)
    kernel_bytes = args.n * args.n * (1 if args.trace_outputs else 100) * dtype.itemsize
    options = ["a smaller --n"] if args.trace_outputs else ["--trace-outputs (an N x N kernel)", "a smaller --n"]
    check_kernel_memory(
        args.n, args.n, 10, trace_outputs=args.trace_outputs, dtype=dtype, device=device, workspace=3 * kernel_bytes,
        workspace_use="copies for the eigendecomposition", options=options,
    )  # fmt: skip
    pool = mnist1d_pool(args.n)
    rows = np.random.default_rng(args.seed).choice(len(pool), size=args.n, replace=False)
    x = torch.as_tensor(pool[rows], dtype=dtype).to(device)
    if args.model == "mlp":
        model = build_model("mlp", input_dim=40, output_dim=10, width=args.width, depth=args.depth, seed=args.seed)
    else:
        model = build_model("conv1d", input_length=40, output_dim=10, channels=args.width, seed=args.seed)
    model = model.to(device=device, dtype=x.dtype).eval()
    ran = resolve_implementation(model, x) if args.implementation == "auto" else args.implementation

    start = time.perf_counter()
    theta = empirical_ntk(model, x, implementation=args.implementation, trace_outputs=args.trace_outputs)
    kernel_seconds = time.perf_counter() - start
    start = time.perf_counter()
    spectrum = kernel_eigh(theta)
    eigh_seconds = time.perf_counter() - start

    eigs = spectrum.eigenvalues
    z = float(eigs.mean()) if args.z is None else args.z
    lam_max, lam_min = float(eigs[0]), float(eigs[-1])
    condition = lam_max / lam_min if lam_min > 0 else float("inf")
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model            {args.model} ({n_params} parameters), seed {args.seed}, {args.dtype}, {device}")
    print(f"inputs           {args.n} MNIST-1D signals")
    print(f"kernel           {tuple(theta.shape)} ({'traced' if args.trace_outputs else 'full'} outputs)")
    print(f"implementation   {ran} (requested {args.implementation})")
    print(f"trace            {float(eigs.sum()):.6g}")
    print(f"lambda_max       {lam_max:.6g}")
    print(f"lambda_min       {lam_min:.6g} ({spectrum.n_clipped} negative round-off eigenvalues clipped)")
    print(f"effective_dim    {effective_dimension(eigs, z):.6g} at z = {z:.6g} (of {eigs.size})")
    print(f"condition_number {condition:.6g}")
    print(f"seconds          kernel {kernel_seconds:.3f}, eigh {eigh_seconds:.3f}")
    return 0
