"""theory: general explanatory quantities of a torch model (eNTK, spectra, effective parameters, norms).

Public names load lazily (PEP 562): ``import theory`` stays cheap, and each submodule (torch.func, scikit-learn,
sympy) is imported when one of its names is first used.
"""

from __future__ import annotations

from theory._lazy import lazy_exports

_EXPORTS = {
    "EffectiveParameters": "theory.smoothers",
    "GradientBoostingSmoother": "theory.smoothers",
    "KernelRidgeSmoother": "theory.smoothers",
    "LeastSquaresSmoother": "theory.smoothers",
    "PerOutputEffectiveParameters": "theory.smoothers",
    "RandomFourierFeaturesSmoother": "theory.smoothers",
    "Smoother": "theory.smoothers",
    "TreeSmoother": "theory.smoothers",
    "effective_parameters": "theory.smoothers",
    "effective_parameters_of": "theory.smoothers",
    "smoother_for": "theory.smoothers",
    "InPlaceInputError": "theory.ntk",
    "InputMismatchError": "theory.ntk",
    "KernelMemoryError": "theory.ntk",
    "NTKImplementation": "theory.ntk",
    "NTKInputError": "theory.ntk",
    "NonFiniteInputError": "theory.ntk",
    "NondeterministicModelError": "theory.ntk",
    "SampleMixingError": "theory.ntk",
    "check_kernel_memory": "theory.ntk",
    "empirical_ntk": "theory.ntk",
    "jacobian": "theory.ntk",
    "ntk_operator": "theory.ntk",
    "resolve_implementation": "theory.ntk",
    "OptimizerSpec": "theory.telescoping",
    "OutputLink": "theory.telescoping",
    "TelescopeMethod": "theory.telescoping",
    "TelescopeResult": "theory.telescoping",
    "telescope": "theory.telescoping",
    "AlignmentMethod": "theory.spectral",
    "KernelEigh": "theory.spectral",
    "TraceEstimate": "theory.spectral",
    "effective_dimension": "theory.spectral",
    "hutchinson_trace": "theory.spectral",
    "kernel_distance": "theory.spectral",
    "kernel_eigh": "theory.spectral",
    "kernel_target_alignment": "theory.spectral",
    "top_eigenpairs": "theory.spectral",
    "CHEAP_MEASURES": "theory.measures",
    "MEASURES": "theory.measures",
    "Measure": "theory.measures",
    "compute_measures": "theory.measures",
    "LEARNING_CURVE_EXPRESSIONS": "theory.learning_curves",
    "LEARNING_CURVE_SYMBOLS": "theory.learning_curves",
    "LearningCurve": "theory.learning_curves",
    "effective_regularization": "theory.learning_curves",
    "predict_learning_curve": "theory.learning_curves",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
