"""theory: general explanatory quantities of a torch model (eNTK, spectra, effective parameters, norms)."""

from theory.smoothers import PerOutputEffectiveParameters, effective_parameters

__all__: list[str] = []
__all__ += ["PerOutputEffectiveParameters", "effective_parameters"]

from theory.ntk import NTKImplementation, empirical_ntk, jacobian, ntk_operator, resolve_implementation  # noqa: E402

__all__ += ["NTKImplementation", "empirical_ntk", "jacobian", "ntk_operator", "resolve_implementation"]

from theory.telescoping import OptimizerSpec, OutputLink, TelescopeMethod, TelescopeResult, telescope  # noqa: E402

__all__ += ["OutputLink", "OptimizerSpec", "TelescopeMethod", "TelescopeResult", "telescope"]

from theory.spectral import (  # noqa: E402
    AlignmentMethod,
    KernelEigh,
    TraceEstimate,
    effective_dimension,
    hutchinson_trace,
    kernel_distance,
    kernel_eigh,
    kernel_target_alignment,
    top_eigenpairs,
)

__all__ += [
    "AlignmentMethod",
    "KernelEigh",
    "TraceEstimate",
    "effective_dimension",
    "hutchinson_trace",
    "kernel_distance",
    "kernel_eigh",
    "kernel_target_alignment",
    "top_eigenpairs",
]

from theory.measures import CHEAP_MEASURES, MEASURES, Measure, compute_measures  # noqa: E402

__all__ += ["CHEAP_MEASURES", "MEASURES", "Measure", "compute_measures"]
