"""Implicit-bias norms and generalisation measures (Jiang et al. 2020; Dziugaite et al. 2020) as one registry.

``MEASURES`` maps a name to a :class:`Measure` (function, description, paper, equation, needs); use
:func:`compute_measures` to evaluate several at once, sharing spectral norms, margins and σ searches.
"""

from theory.measures._inputs import MeasureInputs
from theory.measures._layers import Layer, fold_batchnorm, parameter_vector, weight_layers
from theory.measures.norms import (
    FisherRaoMethod,
    distance_to_init,
    fisher_rao_norm,
    margin,
    margins,
    num_parameters,
    parameter_norm,
    path_norm,
)
from theory.measures.pacbayes import SigmaSearch, pacbayes_init_bound, pacbayes_sigma, perturbed_accuracy
from theory.measures.registry import CHEAP_MEASURES, MEASURES, Measure, compute_measures
from theory.measures.spectral import (
    ConvNorm,
    bartlett_spectral_complexity,
    conv_operator_norm,
    log_product_spectral_norms,
    neyshabur_pacbayes_bound,
    spectral_norms,
)
from theory.measures.weight_spectrum import (
    LayerSpectrum,
    PowerLawFit,
    WeightSpectrum,
    power_law_alpha,
    weight_spectrum,
)

__all__ = [
    "CHEAP_MEASURES",
    "MEASURES",
    "ConvNorm",
    "FisherRaoMethod",
    "Layer",
    "LayerSpectrum",
    "Measure",
    "MeasureInputs",
    "PowerLawFit",
    "SigmaSearch",
    "WeightSpectrum",
    "bartlett_spectral_complexity",
    "compute_measures",
    "conv_operator_norm",
    "distance_to_init",
    "fisher_rao_norm",
    "fold_batchnorm",
    "log_product_spectral_norms",
    "margin",
    "margins",
    "neyshabur_pacbayes_bound",
    "num_parameters",
    "parameter_norm",
    "parameter_vector",
    "path_norm",
    "pacbayes_init_bound",
    "pacbayes_sigma",
    "perturbed_accuracy",
    "power_law_alpha",
    "spectral_norms",
    "weight_layers",
    "weight_spectrum",
]
