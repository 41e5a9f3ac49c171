"""``device``: runs, studies and recorder quantities on a chosen torch device. No GPU here: the plumbing is
tested on CPU (explicit device, provenance, unchanged run ids, CPU copies for CPU-only quantities) and every
unavailable or unsupported device must fail before any run with a message naming it."""

from __future__ import annotations

import pytest
import torch

import bridge.cli
from empirics.phenomena import PHENOMENA, get_phenomenon
from empirics.phenomena._train import TrainData
from empirics.phenomena.base import Snapshot
from empirics.quantities import QUANTITIES, quantity
from empirics.recorder import Recorder
from empirics.store import Store
from empirics.sweep import execute_run, run_sweep
from theory._validation import check_device


def test_cpu_is_the_default_and_is_recorded_without_changing_run_ids(toy_spec, tmp_path):
    spec = toy_spec(seeds=(0,), sweep={"width": (3,)})
    expected_id = "ddbf845d175c87cf"  # computed by main at 8e0efab, which has no device option
    assert spec.runs()[0].run_id == expected_id
    with Store(tmp_path / "a") as store:
        run_sweep(spec, store, log=None)
        assert store.run_ids() == {expected_id}
        assert store.provenance(expected_id)["device"] == "cpu"
    with Store(tmp_path / "b") as store:
        run_sweep(spec, store, device="cpu", log=None)
        assert store.run_ids() == {expected_id}
    assert execute_run(spec.runs()[0], device=torch.device("cpu")).provenance["device"] == "cpu"


@pytest.mark.parametrize(
    ("device", "match"),
    [
        ("cuda", "CUDA is not available here" if not torch.cuda.is_available() else None),
        ("mps", "MPS is not available here" if not torch.backends.mps.is_available() else None),
        ("tpu", "must be an available torch device \\('cpu', 'cuda', 'cuda:N' or 'mps'\\). Got 'tpu'"),
        ("nonsense", "Got 'nonsense' instead"),
    ],
)
def test_unavailable_devices_fail_before_any_run(device, match, toy_spec, tmp_path):
    if match is None:  # the device exists on this machine: it is accepted, not refused
        assert check_device("device", device) == torch.device(device)
        return
    with pytest.raises(ValueError, match=match):
        run_sweep(toy_spec(), tmp_path, device=device, log=None)
    assert not (tmp_path / "store.sqlite").exists() or Store(tmp_path).run_ids() == set()
    with pytest.raises(ValueError, match=match):
        execute_run(toy_spec().runs()[0], device=device)


def test_a_phenomenon_that_does_not_move_to_the_device_is_refused_by_name(toy_spec, tmp_path):
    """With Ray the driver does not check availability (the cluster's workers have the GPU), but a phenomenon
    that only runs on CPU is refused there, before Ray starts."""
    assert PHENOMENA["toy_regression"].devices == ("cpu",)
    with pytest.raises(ValueError, match="phenomenon 'toy_regression' trains on \\(\\['cpu'\\].* Got 'cuda'"):
        run_sweep(toy_spec(), tmp_path, backend="ray", device="cuda", log=None)
    with pytest.raises(ValueError, match="Got 'tpu'"):
        check_device("device", "tpu", available=False)
    assert check_device("device", "cuda:1", available=False) == torch.device("cuda", 1)


def test_grokking_phenomena_declare_every_device_and_the_step_hooks():
    for name in ("grokking_modular", "grokking_mnist1d", "grokking_teacher"):
        phenomenon = get_phenomenon(name)
        assert phenomenon.devices == ("cpu", "cuda", "mps") and phenomenon.follows_steps
    assert get_phenomenon("lottery_ticket").devices == ("cpu",)


def test_train_data_moves_every_tensor():
    data = TrainData(torch.zeros(4, 2), torch.zeros(4, dtype=torch.long), torch.ones(3, 2), torch.ones(3), output=0)
    moved = data.to("meta")
    assert all(getattr(moved, k).device.type == "meta" for k in ("x_train", "y_train", "x_test", "y_test"))
    assert moved.output == 0 and moved.task == data.task and data.x_train.device.type == "cpu"


@quantity("test_device_cpu_only")
def _cpu_only(snapshot: Snapshot) -> dict[str, float]:
    _SEEN["cpu_only"] = snapshot
    return {"cpu_only": float(snapshot.x_train.sum())}


@quantity("test_device_any", any_device=True)
def _any_device(snapshot: Snapshot) -> dict[str, float]:
    _SEEN["any"] = snapshot
    return {"any": float(snapshot.x_train.sum())}


_SEEN: dict[str, Snapshot] = {}


def test_quantities_written_for_cpu_get_a_cpu_copy_when_the_run_is_elsewhere():
    """A recorder on another device hands CPU-only quantities a copy (models included) and any-device ones the
    snapshot itself. Simulated with a CPU snapshot and a recorder that believes the run is on the meta device."""
    model = torch.nn.Linear(2, 1)
    snapshot = Snapshot(model, model, torch.ones(3, 2), torch.zeros(3), torch.ones(2, 2), torch.zeros(2))
    for device, copied in (("cpu", False), ("meta", True)):
        recorder = Recorder(("test_device_cpu_only", "test_device_any"), [0], device=device)
        recorder.record(0, snapshot)
        assert _SEEN["any"] is snapshot
        assert (_SEEN["cpu_only"] is not snapshot) is copied
        assert _SEEN["cpu_only"].model is not model if copied else _SEEN["cpu_only"].model is model
        assert [r[2] for r in recorder.rows] == [6.0, 6.0]
    assert QUANTITIES["telescope"].any_device and QUANTITIES["ntk"].any_device
    assert not QUANTITIES["measures"].any_device


def test_cli_run_and_study_take_device(toy_toml, tmp_path, capsys, monkeypatch):
    mine = {k: v for k, v in bridge.cli.SUBCOMMANDS.items() if k in ("run", "study")}
    monkeypatch.setattr(bridge.cli, "SUBCOMMANDS", mine)
    store = tmp_path / "store"
    assert bridge.cli.main(["run", str(toy_toml), "--quick", "--store", str(store), "--device", "cpu"]) == 0
    assert Store(store).provenance(next(iter(Store(store).run_ids())))["device"] == "cpu"
    if not torch.cuda.is_available():
        assert bridge.cli.main(["run", str(toy_toml), "--quick", "--store", str(store), "--device", "cuda"]) == 2
        assert "CUDA is not available here" in capsys.readouterr().err
        args = ["study", "grokking", "--quick", "--store", str(tmp_path / "s"), "-o", str(tmp_path / "r")]
        assert bridge.cli.main([*args, "--device", "cuda"]) == 2
        assert "CUDA is not available here" in capsys.readouterr().err
