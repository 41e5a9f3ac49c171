"""Falsification statistics: each test returns a frozen :class:`TestResult` (statistic, pvalue, n, conf_int)."""

from bridge.stats._result import TestResult
from bridge.stats.adequacy import configuration_means, fieller_interval, lack_of_fit, nested_f_test, paired_ratio_test
from bridge.stats.cmi import CMIMethod, conditional_mutual_information
from bridge.stats.confounders import (
    PartialMethod,
    confounder_design,
    partial_rank_correlation,
    stratified_permutation_test,
)
from bridge.stats.constraints import Constraint, ConstraintCheck, Side
from bridge.stats.equivalence import tost
from bridge.stats.events import event_lag_test
from bridge.stats.fit import (
    Expression,
    FitMethod,
    FitResult,
    IntervalMethod,
    NotIdentifiedError,
    OutOfSettingResult,
    fit_expression,
    fit_parameters,
    parse_expression,
    predict,
    predict_out_of_setting,
)
from bridge.stats.multiple import Correction, adjust_pvalues
from bridge.stats.nested import (
    BootstrapMethod,
    Interval,
    bootstrap_configurations,
    configuration_groups,
    nested_permutations,
)
from bridge.stats.rank import granulated_kendall, kendall_tau, kendall_tau_difference
from bridge.stats.robust import chernoff_pvalue, hoeffding_weight, robust_sign_error, sign_error_environments
from bridge.stats.steps import kendall_over_steps, per_run_tau

__all__ = [
    "BootstrapMethod",
    "CMIMethod",
    "Constraint",
    "ConstraintCheck",
    "Correction",
    "Expression",
    "FitMethod",
    "FitResult",
    "Interval",
    "IntervalMethod",
    "NotIdentifiedError",
    "OutOfSettingResult",
    "PartialMethod",
    "Side",
    "TestResult",
    "adjust_pvalues",
    "bootstrap_configurations",
    "chernoff_pvalue",
    "conditional_mutual_information",
    "confounder_design",
    "configuration_groups",
    "configuration_means",
    "event_lag_test",
    "fieller_interval",
    "fit_expression",
    "fit_parameters",
    "granulated_kendall",
    "hoeffding_weight",
    "kendall_over_steps",
    "kendall_tau",
    "kendall_tau_difference",
    "lack_of_fit",
    "nested_f_test",
    "nested_permutations",
    "paired_ratio_test",
    "parse_expression",
    "partial_rank_correlation",
    "per_run_tau",
    "predict",
    "predict_out_of_setting",
    "robust_sign_error",
    "sign_error_environments",
    "stratified_permutation_test",
    "tost",
]
