"""The Ray backend against a real local Ray instance (started once for this module): one task's worker process
dies on its first attempt (``os._exit``, detected by a marker file), Ray retries it, and the final store equals
the local backend's."""

from __future__ import annotations

import pandas as pd
import pytest
import ray

from empirics.store import Store
from empirics.sweep import run_sweep

pytestmark = pytest.mark.ray

TIMES = ["started_at", "finished_at", "wall_s"]


@pytest.fixture(scope="module")
def ray_instance():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_killed_worker_is_retried_and_the_store_equals_the_local_one(ray_instance, toy_spec, tmp_path):
    marker = tmp_path / "crashed-once"
    spec = toy_spec(params={"steps": 20, "crash_marker": str(marker)})
    remote = Store(tmp_path / "ray")
    summary = run_sweep(spec, remote, backend="ray", max_retries=2, log=None)
    assert marker.exists(), "no task crashed: the retry path was not exercised"
    assert (summary.executed, len(remote.run_ids())) == (4, 4)
    assert ray.is_initialized()  # the driver's own Ray instance is reused, not shut down

    local = Store(tmp_path / "local")
    run_sweep(spec, local, log=None)  # the marker exists now: no crash locally
    frames = [s.runs().drop(columns=TIMES).sort_values("run_id").reset_index(drop=True) for s in (remote, local)]
    pd.testing.assert_frame_equal(*frames)
    records = [s.records().sort_values("run_id", kind="stable").reset_index(drop=True) for s in (remote, local)]
    pd.testing.assert_frame_equal(*records)
    assert {remote.provenance(r)["pid"] for r in remote.run_ids()}.isdisjoint(
        {local.provenance(r)["pid"] for r in local.run_ids()}
    )
