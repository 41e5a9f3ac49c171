"""theory: general explanatory quantities of a torch model (eNTK, spectra, effective parameters, norms)."""

from theory.smoothers import (
    EffectiveParameters,
    GradientBoostingSmoother,
    KernelRidgeSmoother,
    LeastSquaresSmoother,
    PerOutputEffectiveParameters,
    RandomFourierFeaturesSmoother,
    Smoother,
    TreeSmoother,
    effective_parameters,
    effective_parameters_of,
    smoother_for,
)

__all__: list[str] = []
__all__ += [
    "EffectiveParameters",
    "GradientBoostingSmoother",
    "KernelRidgeSmoother",
    "LeastSquaresSmoother",
    "PerOutputEffectiveParameters",
    "RandomFourierFeaturesSmoother",
    "Smoother",
    "TreeSmoother",
    "effective_parameters",
    "effective_parameters_of",
    "smoother_for",
]

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

from theory.learning_curves import (  # noqa: E402
    LEARNING_CURVE_EXPRESSIONS,
    LEARNING_CURVE_SYMBOLS,
    LearningCurve,
    effective_regularization,
    predict_learning_curve,
)

__all__ += [
    "LEARNING_CURVE_EXPRESSIONS",
    "LEARNING_CURVE_SYMBOLS",
    "LearningCurve",
    "effective_regularization",
    "predict_learning_curve",
]
