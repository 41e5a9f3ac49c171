"""empirics: canonical, seeded, resumable phenomenon runs that record theory quantities into a store.

Public names load lazily (PEP 562), as in ``theory`` and ``bridge``: sweep workers and the CLI import only what
they use.
"""

from __future__ import annotations

from theory._lazy import lazy_exports

_EXPORTS = {
    "finalize_controls": "empirics.controls",
    "prime_count": "empirics.controls",
    "random_measure": "empirics.controls",
    "Dataset": "empirics.data",
    "add_label_noise": "empirics.data",
    "load_dataset": "empirics.data",
    "build_model": "empirics.models",
    "DoubleDescentSignature": "empirics.signatures",
    "double_descent_signature": "empirics.signatures",
    "ExperimentSpec": "empirics.spec",
    "RecordSpec": "empirics.spec",
    "RunConfig": "empirics.spec",
    "Schedule": "empirics.spec",
    "SpecError": "empirics.spec",
    "load_spec": "empirics.spec",
    "ExportFormat": "empirics.store",
    "RunResult": "empirics.store",
    "Store": "empirics.store",
    "StoreError": "empirics.store",
    "Backend": "empirics.sweep",
    "SweepSummary": "empirics.sweep",
    "execute_run": "empirics.sweep",
    "run_sweep": "empirics.sweep",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
