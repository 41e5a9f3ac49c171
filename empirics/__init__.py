"""empirics: canonical, seeded, resumable phenomenon runs that record theory quantities into a store."""

from empirics.controls import finalize_controls, prime_count, random_measure
from empirics.data import Dataset, add_label_noise, load_dataset
from empirics.models import build_model
from empirics.signatures import DoubleDescentSignature, double_descent_signature
from empirics.spec import ExperimentSpec, RecordSpec, RunConfig, Schedule, SpecError, load_spec
from empirics.store import ExportFormat, RunResult, Store
from empirics.sweep import Backend, SweepSummary, execute_run, run_sweep

__all__: list[str] = ["finalize_controls", "prime_count", "random_measure"]
__all__ += ["Backend", "ExperimentSpec", "ExportFormat", "RecordSpec", "RunConfig", "RunResult", "Schedule"]
__all__ += ["SpecError", "Store", "SweepSummary", "execute_run", "load_spec", "run_sweep"]
__all__ += [
    "Dataset",
    "DoubleDescentSignature",
    "add_label_noise",
    "build_model",
    "double_descent_signature",
    "load_dataset",
]
