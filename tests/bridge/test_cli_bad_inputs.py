"""Bad input to ``unitheory ntk`` and ``unitheory predict``: one table per command, each row the arguments, and a
fragment of the one-line error; every row must exit with code 2 and print no traceback. Add a row to cover a
new case. The predict rows run in a working directory that holds the user's files, with that directory not on
``sys.path`` (as for the installed console script): ``MODULE:FACTORY`` must still be found there."""

from __future__ import annotations

import os
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import bridge.cli.ntk
import bridge.predict
from bridge.cli import main

NTK = {
    "n = 0": (["--n", "0"], "'n' parameter of unitheory ntk must be a positive int. Got 0"),
    "width = 0": (["--width", "0"], "'width' parameter of unitheory ntk must be a positive int"),
    "z = 0": (["--z", "0"], r"'z' parameter of unitheory ntk must be a real number in \(0, inf\]"),
    "z = nan": (["--z", "nan"], "'z' parameter of unitheory ntk"),
    "threads = 0": (["--threads", "0"], "'threads' parameter"),
    "seed = -1": (["--seed", "-1"], r"'seed' parameter of unitheory ntk must be a non-negative int \(a seed\). Got -1"),
    "a kernel larger than memory": (
        ["--n", "100000"],
        r"about 32,000,000,000,000 bytes \(32 TB: a \(100000, 100000, 10, 10\) float64 kernel and 24 TB of copies "
        r"for the eigendecomposition\) but only [\d,]+ bytes .* Options: --trace-outputs \(an N x N kernel\); a "
        r"smaller --n",
    ),
    "a traced kernel larger than memory": (
        ["--n", "10000000", "--trace-outputs", "--dtype", "float32"],
        r"\(10000000, 10000000\) float32 kernel.*Options: a smaller --n\.$",
    ),
}


def one_line_error(capsys: pytest.CaptureFixture, command: str) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"unitheory {command}: error: "), captured.err
    assert "Traceback" not in captured.err + captured.out
    return lines[0]


@pytest.mark.parametrize("case", list(NTK))
def test_ntk_bad_inputs(case, capsys, monkeypatch):
    argv, fragment = NTK[case]

    def no_data(n):
        raise AssertionError("the inputs were drawn before the arguments were checked")

    monkeypatch.setattr(bridge.cli.ntk, "mnist1d_pool", no_data)
    assert main(["ntk", *argv]) == 2
    assert re.search(fragment, one_line_error(capsys, "ntk"))


FACTORIES = """
import torch

def make():
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))

def boom():
    raise RuntimeError("boom at import of the weights")

def number():
    return 3


def diverged():
    net = make()
    torch.nn.init.constant_(net[2].bias, float("nan"))
    return net
"""


@pytest.fixture()
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with a factory module, data files and checkpoints, not itself on sys.path."""
    (tmp_path / "cwdfactories.py").write_text(FACTORIES)
    (tmp_path / "needsdep.py").write_text("import not_an_installed_dependency\n")
    (tmp_path / "broken.py").write_text("def make(:\n")
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(24, 6, generator=g), torch.randint(0, 3, (24,), generator=g)
    arrays = {"x_train": x.numpy(), "y_train": y.numpy(), "x_test": x[:8].numpy(), "y_test": y[:8].numpy()}
    np.savez(tmp_path / "d.npz", **arrays)
    np.savez(tmp_path / "wide.npz", **(arrays | {"x_train": np.zeros((24, 5), np.float32)}))
    np.savez(tmp_path / "nan.npz", **(arrays | {"x_test": np.full((8, 6), np.nan, np.float32)}))
    np.savez(tmp_path / "labels.npz", **(arrays | {"y_train": arrays["y_train"] + 3}))
    np.savez(tmp_path / "partial.npz", x_train=arrays["x_train"])
    (tmp_path / "text.npz").write_text("not an archive")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    torch.save(model, tmp_path / "whole.pt")
    torch.save({"head.weight": torch.zeros(3, 16)}, tmp_path / "keys.pt")
    torch.save({k: v[:4] for k, v in model.state_dict().items()}, tmp_path / "shapes.pt")
    state = model.state_dict()
    for name, fill in (("inf", float("inf")), ("zero", 0.0)):  # a diverged run; a layer pruned to zero
        layer = {"0.weight": state["0.weight"].clone().fill_(fill)}
        torch.save(state | layer, tmp_path / f"{name}.pt")
    (tmp_path / "random.pt").write_bytes(np.random.default_rng(0).bytes(256))
    (tmp_path / "empty.pt").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", os.getcwd(), str(tmp_path))])
    for name in ("cwdfactories", "needsdep"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    yield tmp_path
    for name in ("cwdfactories", "needsdep"):
        sys.modules.pop(name, None)


OK = ["cwdfactories:make", "--data", "d.npz", "--quantities", "ntk"]
PREDICT = {
    "missing module": (["nosuch_module:make", "--data", "d.npz"], "No module named 'nosuch_module' .*working dir"),
    "module with a missing dependency": (
        ["needsdep:make", "--data", "d.npz"],
        "Importing the model module 'needsdep' failed: No module named 'not_an_installed_dependency'",
    ),
    "model file with a syntax error": (["broken.py:make", "--data", "d.npz"], "'broken.py' raised SyntaxError"),
    "missing model file": (["nofile.py:make", "--data", "d.npz"], "No model file 'nofile.py'"),
    "no such factory": (
        ["cwdfactories:nothere", "--data", "d.npz"], r"no callable 'nothere'.*\['boom', 'diverged', 'make'",
    ),
    "factory raises": (
        ["cwdfactories:boom", "--data", "d.npz"], "factory 'cwdfactories:boom' raised RuntimeError: boom at import",
    ),
    "factory returns a non-module": (["cwdfactories:number", "--data", "d.npz"], "must return a torch.nn.Module"),
    "checkpoint with wrong keys": (
        [*OK, "--checkpoint", "keys.pt"],
        r"'keys.pt' does not fit the model Sequential: missing keys \[0.weight, 0.bias, 2.weight, 2.bias\]; "
        r"unexpected keys \[head.weight\]",
    ),
    "checkpoint with wrong shapes": (
        [*OK, "--checkpoint", "shapes.pt"], r"shape mismatches \[0.weight: model \(16, 6\), checkpoint \(4, 6\)",
    ),
    "checkpoint of random bytes": ([*OK, "--checkpoint", "random.pt"], "'random.pt' is not a state dict written by"),
    "checkpoint of a pickled module": (
        [*OK, "--checkpoint", "whole.pt"],
        r"pickled Python object \(torch.nn.modules.container.Sequential\), not a state dict. Only state dicts load, "
        r"with torch.load\(weights_only=True\): unpickling other objects can run arbitrary code",
    ),
    "empty checkpoint": ([*OK, "--checkpoint", "empty.pt"], r"'empty.pt' is empty \(0 bytes\)"),
    "checkpoint of a diverged run": (
        [*OK, "--checkpoint", "inf.pt"], r"The checkpoint 'inf.pt' holds NaN or Inf in \[0.weight\]: every kernel",
    ),
    "factory of a diverged model": (
        ["cwdfactories:diverged", "--data", "d.npz"],
        r"The model factory 'cwdfactories:diverged' returned a model with NaN or Inf in \[2.bias\]",
    ),
    "missing checkpoint": ([*OK, "--checkpoint", "none.pt"], "No checkpoint file 'none.pt'"),
    "data of the wrong width": (
        ["cwdfactories:make", "--data", "wide.npz"],
        r"x_train of 'wide.npz' do not fit the model: .*shape \(24, 5\).*Linear at '0', expects \(N, \.\.\., 6\)",
    ),
    "NaN test inputs": (["cwdfactories:make", "--data", "nan.npz"], "x_test of 'nan.npz' must be finite"),
    "labels beyond the outputs": (
        ["cwdfactories:make", "--data", "labels.npz"], r"classes in \[0, 3\) for a model with 3 outputs. Got labels",
    ),
    "data file without the arrays": (
        ["cwdfactories:make", "--data", "partial.npz"], r"lacks the arrays \['y_train', 'x_test', 'y_test'\]",
    ),
    "data file that is not an archive": (["cwdfactories:make", "--data", "text.npz"], "is not a .npz archive"),
    "missing data file": (["cwdfactories:make", "--data", "none.npz"], "No data file 'none.npz'"),
    "unknown data set": (["cwdfactories:make", "--data", "imagenet"], "'name' parameter of load_dataset"),
    "output into a missing folder": ([*OK, "-o", "missing/p.json"], "output folder 'missing' of 'missing/p.json'"),
    "output with another suffix": ([*OK, "-o", "p.txt"], r"must end in .json or .csv. Got '.txt'"),
    "learning-curve size 0": ([*OK, "--sizes", "0", "4"], "'sizes' parameter of predict must be a positive int"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(PREDICT))
def test_predict_bad_inputs(case, workdir, capsys):
    argv, fragment = PREDICT[case]
    assert main(["predict", *argv]) == 2
    assert re.search(fragment, one_line_error(capsys, "predict"))


def test_a_layer_of_zeros_gives_notes_not_numpy_warnings(workdir, capsys):
    """Measures undefined for a layer of zeros (log 0, 0/0) are their limits, explained in notes, without the seven
    RuntimeWarnings numpy printed before."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        assert main(["predict", "cwdfactories:make", "--data", "d.npz", "--checkpoint", "zero.pt"]) == 0
    assert "note: log_prod_spec = -inf" in capsys.readouterr().out


def test_factory_module_in_the_working_directory_is_found(workdir, capsys):
    assert str(workdir) not in sys.path and "" not in sys.path
    assert main(["predict", *OK, "-o", "p.json"]) == 0
    assert "ntk_trace" in capsys.readouterr().out and (workdir / "p.json").is_file()


def test_output_folder_is_checked_before_any_work(workdir, capsys, monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("predict ran before the output path was checked")

    monkeypatch.setattr(bridge.predict, "predict", no_work)
    assert main(["predict", *OK, "-o", "missing/p.csv"]) == 2
    assert "does not exist" in one_line_error(capsys, "predict")
