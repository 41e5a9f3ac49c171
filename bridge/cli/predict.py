"""``unitheory predict MODULE:FACTORY --data SPEC``: theory quantities of your own model (see :mod:`bridge.predict`)."""

from __future__ import annotations

import argparse

QUANTITIES = ("ntk", "effective_parameters", "measures", "learning_curve")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="'package.module:factory' or 'file.py:factory' (a zero-argument model factory)")
    parser.add_argument(
        "--data", required=True, help="'NAME[:key=value,...]' (e.g. mnist1d:n_train=512) or a .npz with x_/y_train/test"
    )
    parser.add_argument("--checkpoint", default=None, help="state dict saved with torch.save (weights_only load)")
    parser.add_argument("--quantities", nargs="+", choices=QUANTITIES, default=None, help="default: all")
    parser.add_argument("--n-train", type=int, default=256, help="training inputs of the kernel (default 256)")
    parser.add_argument("--n-test", type=int, default=256, help="test inputs for p_test (default 256)")
    parser.add_argument("--ridge", type=float, default=0.0, help="ridge of the kernel smoother (default 0)")
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=None, help="learning-curve sample sizes (default n/16, n/8, n/4, n/2)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random_state of the factory and measures")
    parser.add_argument("--device", default="cpu", help="device of the eNTK: cpu (default), cuda[:index] or mps")
    parser.add_argument("-o", "--output", default=None, help="write .json or .csv instead of printing only")


def execute(args: argparse.Namespace) -> int:
    from bridge._predict_inputs import add_working_directory
    from bridge.predict import check_output_path, predict

    if args.output:
        check_output_path(args.output)  # before any work
    add_working_directory()  # MODULE:FACTORY is found in the working directory, as with python -m
    result = predict(
        args.model, args.data, args.quantities, checkpoint=args.checkpoint, n_train=args.n_train,
        n_test=args.n_test, ridge=args.ridge, sizes=args.sizes, random_state=args.seed, device=args.device,
    )  # fmt: skip
    print(result.summary())
    if args.output:
        print(f"wrote {result.write(args.output)}")
    return 0
