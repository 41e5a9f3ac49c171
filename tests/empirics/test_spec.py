"""Specs: TOML parsing, validation errors naming file/key/reason, quick overrides, schedules and run ids."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from empirics.recorder import log_spaced_steps
from empirics.spec import SPECS_DIR, ExperimentSpec, RecordSpec, RunConfig, Schedule, SpecError, load_spec


def test_toml_and_dataclass_give_the_same_runs(toy_toml, toy_spec):
    from_file = load_spec(toy_toml)
    from_python = toy_spec()
    assert from_file.name == "toy" and from_file.seeds == (0, 1) and from_file.sweep == {"width": (2, 5)}
    assert [c.run_id for c in from_file.runs()] == [c.run_id for c in from_python.runs()]
    runs = from_file.runs()
    assert [(c.params["width"], c.seed) for c in runs] == [(2, 0), (2, 1), (5, 0), (5, 1)]
    assert runs[0].params == {"steps": 20, "width": 2, "lr": 0.1, "n": 32, "noise": 0.1, "sleep_s": 0.0,
                              "crash_marker": "", "execution_log": "", "seed": 0}  # fmt: skip


def test_quick_overrides_replace_seeds_and_merge_tables(toy_toml):
    quick = load_spec(toy_toml, quick=True)
    runs = quick.runs()
    assert [(c.params["width"], c.params["steps"], c.seed) for c in runs] == [(3, 5, 0)]
    assert quick.record.count == 3 and quick.record.quantities == ("toy_weight_norm", "toy_velocity", "toy_threads")
    assert runs[0].schedule == tuple(log_spaced_steps(5, 3))


def test_run_id_is_sha256_of_canonical_json(toy_spec):
    config = toy_spec().runs()[0]
    payload = {
        "phenomenon": "toy_regression",
        "params": dict(config.params),
        "quantities": list(config.quantities),
        "schedule": list(config.schedule),
    }
    expected = hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]
    assert config.run_id == expected and re.fullmatch("[0-9a-f]{16}", config.run_id)


@given(st.permutations(["steps", "width", "lr", "seed"]), st.integers(0, 10**6))
def test_run_id_ignores_key_order_and_separates_values(order, seed):
    values = {"steps": 3, "width": 2, "lr": 0.5, "seed": seed}
    a = RunConfig("s", "p", {k: values[k] for k in order}, ("q",), (0, 3))
    b = RunConfig("other-spec", "p", dict(values), ("q",), (0, 3))
    assert a.run_id == b.run_id  # the spec name is not part of the key: one configuration, one run
    assert RunConfig("s", "p", {**values, "seed": seed + 1}, ("q",), (0, 3)).run_id != a.run_id


def test_always_recorded_controls_are_added(toy_spec):
    from empirics.controls import CONTROL_QUANTITIES

    config = toy_spec().runs()[0]
    assert config.quantities == ("toy_weight_norm", "toy_velocity", "toy_threads", *CONTROL_QUANTITIES)


@given(st.integers(1, 5000), st.integers(1, 40))
def test_schedules_cover_first_and_last_step(total, k):
    log = RecordSpec(schedule=Schedule.LOG, count=k).steps(total)
    every = RecordSpec(schedule=Schedule.EVERY, every=k).steps(total)
    for steps in (log, every):
        assert steps[0] == 0 and steps[-1] == total and list(steps) == sorted(set(steps))
    assert log == tuple(log_spaced_steps(total, k))
    assert every == tuple(sorted({*range(0, total + 1, k), total}))
    assert RecordSpec().steps(0) == (0,)


BAD_EDITS = [
    ("colour = 'red'", "colour", "unknown key"),
    ("[params]\nsteps = 20\nwidht = 3", "params.widht", "unknown parameter"),
    ("[params]\nsteps = 'many'", "params.steps", "expected an integer"),
    ("[params]\nsteps = -1", "params.steps", r"expected a value in \[0, inf\), got -1"),
    ("[params]\nlr = true", "params.lr", "expected a number"),
    ("[params]\nseed = 3", "params.seed", "seeds"),
    ("[sweep]\nwidth = []", "sweep.width", "non-empty list"),
    ("[sweep]\nwidth = [2, 2]", "sweep.width", "repeat"),
    ("[sweep]\ndepth = [1]", "sweep.depth", "unknown parameter"),
    ("[sweep]\nwidth = [2, 2.5]", "sweep.width", "expected an integer"),
    ("[params]\nwidth = 2\n[sweep]\nwidth = [3]", "sweep.width", "also set in"),
    ("[record]\nquantities = ['ntk_of_the_future']", "record.quantities", "unknown quantity"),
    ("[record]\nschedule = 'sometimes'", "record.schedule", "expected one of"),
    ("[record]\nschedule = 'every'", "record.every", "required"),
    ("[record]\ncount = 0", "record.count", "positive integer"),
    ("[record]\nwhen = 3", "record.when", "unknown key"),
    ("[quick]\nsteps = 3", "quick.steps", "unknown key"),
    ("[quick]\nparams = { widht = 3 }", "quick.params.widht", "unknown parameter"),
    ("[quick]\nseeds = [-1]", "quick.seeds", "non-negative"),
    ("plugins = ['no_such_module_xyz']", "plugins", "cannot import"),
]


@pytest.mark.parametrize(("edit", "key", "reason"), BAD_EDITS)
def test_bad_specs_name_file_key_and_reason(tmp_path, edit, key, reason):
    base = {"name": "'bad'", "phenomenon": "'toy_regression'", "seeds": "[0]"}
    body = "\n".join(f"{k} = {v}" for k, v in base.items())
    plugin = f"plugins = ['{_toy_plugin()}']\n" if not edit.startswith("plugins") else ""
    path = tmp_path / "bad.toml"
    path.write_text(plugin + body + "\n" + edit + "\n")
    with pytest.raises(SpecError, match=rf"^{re.escape(str(path))}: key {re.escape(repr(key))}: .*{reason}") as err:
        load_spec(path)
    assert err.value.key == key and isinstance(err.value, ValueError)


def test_unknown_phenomenon_and_missing_name(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text("name = 'x'\nphenomenon = 'no_such_phenomenon'\n")
    with pytest.raises(SpecError, match=r"key 'phenomenon': Unknown phenomenon 'no_such_phenomenon'"):
        load_spec(path)
    path.write_text("phenomenon = 'toy_regression'\n")
    with pytest.raises(SpecError, match=r"key 'name': missing"):
        load_spec(path)
    path.write_text("name = [\n")
    with pytest.raises(SpecError, match=r"key '<file>': invalid TOML"):
        load_spec(path)


def test_integer_values_of_float_parameters_give_the_same_run(toy_spec):
    assert (
        toy_spec(params={"steps": 20, "lr": 1}).runs()[0].run_id
        == toy_spec(params={"steps": 20, "lr": 1.0}).runs()[0].run_id
    )
    assert toy_spec(params={"steps": 20, "lr": 1}).runs()[0].params["lr"] == 1.0


def test_dataclass_specs_are_validated_too(toy_spec):
    with pytest.raises(SpecError, match=r"^<python>: key 'seeds'"):
        toy_spec(seeds=()).validate()
    with pytest.raises(SpecError, match=r"key 'record.quantities'"):
        toy_spec(record=RecordSpec(quantities=("nope",))).runs()
    with pytest.raises(SpecError, match=r"key 'record.every': required"):
        toy_spec(record=RecordSpec(schedule="every")).validate()
    assert toy_spec(record=RecordSpec(schedule="every", every=7)).runs()[0].schedule == (0, 7, 14, 20)
    assert isinstance(toy_spec().validate(), ExperimentSpec)


def test_unknown_spec_name_lists_builtins():
    with pytest.raises(FileNotFoundError, match="built-ins"):
        load_spec("no-such-spec-anywhere")


def test_every_builtin_spec_validates_in_full_and_quick():
    names = sorted(p.stem for p in SPECS_DIR.glob("*.toml"))
    for name in names:
        full, quick = load_spec(name), load_spec(name, quick=True)
        assert full.name == name and len(full.runs()) >= len(quick.runs()) >= 1
    assert all(isinstance(n, str) for n in names)


def _toy_plugin() -> str:
    from pathlib import Path

    return str(Path(__file__).with_name("conftest.py"))
