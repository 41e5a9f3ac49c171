"""Built-in studies: spec files to run, a hypothesis file to preregister and test, a report to write.

``run_study(name)`` (and ``unitheory study NAME``) preregisters the study's hypothesis file in the store, stores
its plan (each hypothesis's design and power, :func:`plan_study`; ``unitheory study NAME --plan`` prints it and
runs nothing), runs the missing runs of its specs (resumable: rerunning reuses every stored run), falsifies the
hypotheses, saves the verdicts and fitted prediction bands in the store and writes the report. Quick and full
variants use the same spec files (``--quick`` applies their ``[quick]`` tables); keep their stores apart, because
a spec keeps its name in both.

Studies (hypotheses in ``bridge/studies/NAME.toml``, specs in ``bridge/studies/specs/``):

- ``double-descent``: model-wise (MNIST-1D MLPs: the one-output binary task with the telescoping model's p_train/
  p_test along training, and ten classes) and feature-wise (random features) double descent against raw parameter
  count and effective parameters (Curth et al. 2023; Jeffares et al. 2024).
- ``grokking``: grokking through the telescoping lens (Jeffares et al. 2024): p_train/p_test recorded along
  training on Kumar et al. 2024's teacher and Omnigrok binary MNIST-1D, the event ordering of p_test falling below
  p_train against the test-fit step; the init-scale delay law t = (k log α + c)/λ (Lyu et al. 2024) on MNIST-1D
  and modular addition; Gromov's modular MLP with weight-norm and distance-from-initialisation explanations.
- ``lottery``: IMP tickets pruned below 20% and 5% against random re-initialisation and random pruning (Frankle &
  Carbin 2019), and linear mode connectivity of a conv net that is unstable at initialisation (Frankle et al. 2020).
- ``prime-control``: the position paper's prime count (Jeffares & van der Schaar 2025) on 10 seeds of the
  double-descent MLP and on grokking, under one rounding rule for both (and the rounding scale swept), tracking
  test error, then tested given the weight norm and out of its setting.
- ``cross-phenomenon``: one quantity (the distance from initialisation, recorded on every run by the plugin
  :mod:`bridge.studies.quantities`) with the same hypothesis across all three phenomena and the robust sign-error
  per environment (Dziugaite et al. 2020); the centred eNTK-label alignment on the two MLP phenomena.
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from theory._validation import check_device, check_option, check_output_dir, check_positive_int

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Study:
    """A built-in study: ``specs`` (file stems in ``bridge/studies/specs/``) and its ``hypotheses`` file."""

    name: str
    description: str
    specs: tuple[str, ...]
    directory: Path = HERE

    @property
    def hypotheses(self) -> Path:
        """``directory/NAME.toml`` with dashes as underscores."""
        return self.directory / f"{self.name.replace('-', '_')}.toml"

    def spec_paths(self) -> list[Path]:
        """``directory/specs/SPEC.toml`` for each of ``specs``."""
        return [self.directory / "specs" / f"{s}.toml" for s in self.specs]


STUDIES: dict[str, Study] = {
    s.name: s
    for s in (
        Study("double-descent", "model-wise and random-features double descent", ("dd-rff", "dd-telescope", "dd-mlp")),
        Study(
            "grokking",
            "grokking through the telescoping lens (teacher, binary MNIST-1D), the init-scale delay law, modular "
            "addition: delay law, weight norm, distance from init",
            ("grok-modular", "grok-teacher", "grok-mnist1d", "grok-mnist1d-delay"),
        ),
        Study("lottery", "IMP tickets against both controls; linear mode connectivity", ("lottery-mlp", "lottery-lmc")),
        Study("prime-control", "the prime-count control in double descent and grokking", ("dd-mlp", "grok-modular")),
        Study(
            "cross-phenomenon",
            "distance from initialisation (and eNTK alignment) tested with one hypothesis across all three phenomena",
            ("dd-mlp", "grok-modular", "lottery-mlp"),
        ),
    )
}  # fmt: skip


@dataclass(frozen=True)
class StudyResult:
    """What :func:`run_study` did: the sweeps, the verdict table, the report paths and the wall time."""

    study: str
    quick: bool
    store: Path
    sweeps: tuple[str, ...]
    verdicts: pd.DataFrame = field(compare=False)
    report_html: Path | None
    wall_s: float

    def summary(self, *, sweeps: bool = True) -> str:
        """The sweep lines (``sweeps=False`` leaves them out, e.g. when they were already logged), one verdict per
        hypothesis with its reason wrapped underneath, the report path and the wall time."""
        lines = list(self.sweeps) if sweeps else []
        width = max((len(v) for v in self.verdicts["verdict"]), default=0)
        for row in self.verdicts.itertuples(index=False):
            lines.append(f"{row.verdict:<{width}}  {row.hypothesis}")
            lines += textwrap.wrap(str(row.reason), 100, initial_indent=" " * (width + 4),
                                   subsequent_indent=" " * (width + 4))  # fmt: skip
        if self.report_html is not None:
            lines.append(f"report: {self.report_html}")
        lines.append(f"study {self.study}{' (quick)' if self.quick else ''}: {self.wall_s:.1f} s")
        return "\n".join(lines)


def get_study(name: str) -> Study:
    """The built-in study ``name``; ``ValueError`` lists the known ones."""
    return STUDIES[check_option("name", name, list(STUDIES), owner="get_study")]


def default_store(quick: bool) -> Path:
    """``unitheory-studies/quick`` or ``unitheory-studies/full``: one store per variant, shared by the studies."""
    return Path("unitheory-studies") / ("quick" if quick else "full")


def plan_study(name: str | Study, *, quick: bool = False, reps: int | None = None):
    """The study's plan (:class:`bridge.plan.StudyPlan`): for each hypothesis its configurations and seeds in
    scope on the runs the specs will execute, the effect it claims and the calibration's power for that design
    (``reps`` replications for a design the committed power table lacks; default
    :data:`bridge.power.PLAN_REPS`). Runs nothing and opens no store."""
    from bridge.hypothesis import load_hypotheses
    from bridge.plan import plan_hypotheses, planned_runs
    from bridge.power import PLAN_REPS
    from empirics.spec import load_spec

    study = name if isinstance(name, Study) else get_study(name)
    reps = PLAN_REPS if reps is None else check_positive_int("reps", reps, owner="plan_study")
    specs = [load_spec(p, quick=quick) for p in study.spec_paths()]
    return plan_hypotheses(load_hypotheses(study.hypotheses), planned_runs(specs), study=study.name, quick=quick,
                           reps=reps)  # fmt: skip


def run_study(
    name: str | Study,
    *,
    quick: bool = False,
    store: str | Path | None = None,
    output: str | Path | None = None,
    workers: int = 1,
    backend: str | None = None,
    address: str | None = None,
    n_resamples: int = 999,
    random_state: int = 0,
    command: str | None = None,
    device: str = "cpu",
    power_reps: int | None = None,
    log: Callable[[str], None] | None = print,
) -> StudyResult:
    """Preregister, run (resumably), falsify, save verdicts and prediction bands, and write the report.

    Args:
        name: a key of :data:`STUDIES` (or a :class:`Study`, e.g. one of your own in another directory).
        quick: apply each spec's ``[quick]`` overrides (minutes on 2 cores instead of hours).
        store: the store directory (default :func:`default_store`).
        output: the report folder (None: no report). ``COMMAND.txt`` there records ``command`` and the wall time.
        workers, backend, address: as ``unitheory run`` (``backend`` None: ``pool`` if ``workers`` > 1).
        log: receives one line per run, per sweep and for the falsification (None: silent); progress bars go to
            stderr on a terminal unless ``UNITHEORY_PROGRESS=0`` (:mod:`bridge._progress`).
        n_resamples: bootstrap resamples of every test interval and prediction band.
        random_state: seeds the bootstraps.
        device: where the runs train (``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``; see ``run_sweep``).
        power_reps: replications of the plan's power for a design the committed power table lacks
            (:func:`plan_study`).
    """
    from bridge._progress import status
    from bridge.falsification import falsify
    from bridge.hypothesis import load_hypotheses
    from bridge.prereg import preregister
    from bridge.report import build_report, save_predictions, save_verdicts, verdict_key
    from empirics.spec import load_spec
    from empirics.store import Store
    from empirics.sweep import run_sweep

    study = name if isinstance(name, Study) else get_study(name)
    check_positive_int("n_resamples", n_resamples, owner="run_study")
    if output is not None:  # before hours of runs, not when the report is written
        check_output_dir("output", output, owner="run_study")
    check_device("device", device, owner="run_study", available=backend != "ray")  # before preregistering
    start = time.perf_counter()
    hypotheses = load_hypotheses(study.hypotheses)
    specs = [load_spec(p, quick=quick) for p in study.spec_paths()]
    plan = plan_study(study, quick=quick, reps=power_reps)  # before any run: the design as planned
    if log is not None:
        flagged = [p.hypothesis for p in plan.hypotheses if p.under_powered]
        log(f"plan: {len(flagged)} of {len(plan.hypotheses)} hypotheses under-powered"
            + (f" ({', '.join(flagged)})" if flagged else ""))  # fmt: skip
    with Store(store or default_store(quick)) as db:
        preregister(study.hypotheses, db)
        key = verdict_key(study.hypotheses)  # the plan of this version of the file, as its verdicts are keyed
        db.put_result("plan", key, {**plan.to_payload(), "file": study.hypotheses.name, "key": key})
        sweeps = []
        for spec in specs:
            chosen = backend or ("pool" if workers > 1 else "local")
            summary = run_sweep(spec, db, backend=chosen, workers=workers, address=address, device=device, log=log)
            sweeps.append(summary.summary())
        status(f"testing {len(hypotheses)} hypotheses of {study.hypotheses.name} ({n_resamples} resamples each)")
        tic = time.perf_counter()
        report = falsify(study.hypotheses, db, n_resamples=n_resamples, random_state=random_state)
        if log is not None:
            log(f"falsify {study.hypotheses.name}: {len(hypotheses)} hypotheses, {len(report.to_frame())} tests "
                f"in {time.perf_counter() - tic:.1f} s")  # fmt: skip
        save_verdicts(db, study.hypotheses, report, hypotheses)
        save_predictions(db, hypotheses, n_resamples=min(n_resamples, 200), random_state=random_state)
        html = None
        if output is not None:
            title = f"unitheory study: {study.name}{' (quick)' if quick else ''}"
            built = build_report(
                db, output, title=title, random_state=random_state,
                specs=[s.name for s in specs], files=[study.hypotheses.name],
            )  # fmt: skip
            html = built.html
        wall = time.perf_counter() - start
        if output is not None:
            shown = command or f"unitheory study {study.name}{' --quick' if quick else ''}"
            Path(output, "COMMAND.txt").write_text(f"{shown}\nwall time: {wall:.1f} s\nstore: {db.path}\n")
        return StudyResult(study.name, quick, Path(db.path), tuple(sweeps), report.verdict_frame(), html, wall)


__all__ = ["STUDIES", "Study", "StudyResult", "default_store", "get_study", "plan_study", "run_study"]
