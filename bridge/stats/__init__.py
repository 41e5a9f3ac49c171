"""Falsification statistics: each test returns a frozen :class:`TestResult` (statistic, pvalue, n, conf_int)."""

from bridge.stats._result import TestResult
from bridge.stats.cmi import CMIMethod, conditional_mutual_information
from bridge.stats.confounders import PartialMethod, partial_rank_correlation, stratified_permutation_test
from bridge.stats.equivalence import tost
from bridge.stats.events import event_lag_test
from bridge.stats.fit import (
    Expression,
    FitMethod,
    FitResult,
    fit_expression,
    parse_expression,
    predict,
    predict_out_of_setting,
)
from bridge.stats.multiple import Correction, adjust_pvalues
from bridge.stats.rank import (
    BootstrapMethod,
    configuration_groups,
    granulated_kendall,
    kendall_tau,
    kendall_tau_difference,
)
from bridge.stats.robust import hoeffding_weight, robust_sign_error, sign_error_environments

__all__ = [
    "BootstrapMethod",
    "CMIMethod",
    "Correction",
    "Expression",
    "FitMethod",
    "FitResult",
    "PartialMethod",
    "TestResult",
    "adjust_pvalues",
    "conditional_mutual_information",
    "configuration_groups",
    "event_lag_test",
    "fit_expression",
    "granulated_kendall",
    "hoeffding_weight",
    "kendall_tau",
    "kendall_tau_difference",
    "parse_expression",
    "partial_rank_correlation",
    "predict",
    "predict_out_of_setting",
    "robust_sign_error",
    "sign_error_environments",
    "stratified_permutation_test",
    "tost",
]
