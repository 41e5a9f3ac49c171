"""Synthetic per-run tables with a known truth, shaped like ``bridge.tables.run_table`` output."""

from __future__ import annotations

import numpy as np
import pandas as pd

WIDTHS = (4, 8, 16, 32)
LRS = (0.01, 0.03, 0.1)


def synthetic_runs(truth: str, seed: int, *, n_seeds: int = 4, widths=WIDTHS, lrs=LRS, spec: str = "synthetic"):
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
                        "phenomenon": "synthetic",
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
