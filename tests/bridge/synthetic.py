"""Synthetic per-run tables with a known truth, shaped like ``bridge.tables.run_table`` output."""

from __future__ import annotations

import numpy as np
import pandas as pd

WIDTHS = (4, 8, 16, 32)
LRS = (0.01, 0.03, 0.1)


def synthetic_runs(
    truth: str,
    seed: int,
    *,
    n_seeds: int = 4,
    widths=WIDTHS,
    lrs=LRS,
    spec: str = "synthetic",
    phenomenon: str = "synthetic",
):
    """Runs over a width × lr grid with ``n_seeds`` seeds; ``truth`` plants how ``q`` relates to ``test_error``:

    - "predictive": test_error = 0.1 q + noise, q = log(width) + 10 lr + run noise (q itself drives the error);
    - "confounded": z (a weight norm) drives the error and q = z + small noise: q predicts only through z;
    - "noise": q is independent of everything.
    Controls: prime_count (noise), param_count (width·(width+1)), random_measure (noise).
    """
    rng = np.random.default_rng(seed)
    rows = []
    for w in widths:
        for lr in lrs:
            base = np.log(w) + 10 * lr
            for s in range(n_seeds):
                z = base + rng.normal(0, 0.6)
                if truth == "predictive":
                    q = z
                    err = 0.1 * q + rng.normal(0, 0.02)
                    z = rng.normal(size=None)
                elif truth == "confounded":
                    q = z + rng.normal(0, 0.05)
                    err = 0.1 * z + rng.normal(0, 0.02)
                elif truth == "noise":
                    q = rng.normal()
                    err = 0.1 * z + rng.normal(0, 0.02)
                else:
                    raise ValueError(truth)
                rows.append(
                    {
                        "run_id": f"{spec}-{w}-{lr}-{s}",
                        "spec": spec,
                        "phenomenon": phenomenon,
                        "seed": s,
                        "started_at": "2026-01-01T00:00:00+00:00",
                        "width": w,
                        "lr": lr,
                        "test_error": err,
                        "q": q,
                        "weight_norm": z,
                        "prime_count": rng.normal(),
                        "param_count": float(w * (w + 1)),
                        "random_measure": rng.normal(),
                    }
                )
    return pd.DataFrame(rows)


RECORDED = ("q", "weight_norm", "prime_count", "param_count", "random_measure")
STEPS = tuple(range(0, 101, 10))


def write_store(store, frame: pd.DataFrame, *, started_at: str = "2026-01-01T00:00:00+00:00") -> None:
    """Write each synthetic run into an :class:`empirics.store.Store` through its public API.

    Records: every column of :data:`RECORDED` at :data:`STEPS`, reaching the table's value at the final step
    (value · step/100 before); event trajectories p_train = 1, p_test = 1 − 0.5·[step >= t_sep], and a recorded
    test_error that falls below 0.5 twenty steps after t_sep = 30 + 10·(seed mod 3).
    """
    from empirics.spec import RunConfig
    from empirics.store import RunResult

    for row in frame.itertuples(index=False):
        config = RunConfig(
            spec=row.spec,
            phenomenon=row.phenomenon,
            params={"width": int(row.width), "lr": float(row.lr), "seed": int(row.seed)},
            quantities=("measures",),
            schedule=STEPS,
        )
        t_sep = 30 + 10 * (row.seed % 3)
        records = []
        for step in STEPS:
            records += [(step, name, getattr(row, name) * step / STEPS[-1]) for name in RECORDED]
            records += [(step, "p_train", 1.0), (step, "p_test", 0.5 if step >= t_sep else 1.0)]
            records.append((step, "test_error", 0.2 if step >= t_sep + 20 else 0.9))
        store.write_run(
            RunResult(
                config=config,
                outcomes={"test_error": float(row.test_error)},
                rows=records,
                provenance={"source": "tests/bridge/synthetic.py"},
                started_at=started_at,
                finished_at=started_at,
                wall_s=0.0,
            )
        )
