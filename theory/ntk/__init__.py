"""Empirical neural tangent kernels of torch modules: one entry point, three implementations."""

from theory.ntk._guards import (
    InPlaceInputError,
    InputMismatchError,
    KernelMemoryError,
    NondeterministicModelError,
    NonFiniteInputError,
    NTKInputError,
    SampleMixingError,
    check_kernel_memory,
)
from theory.ntk.api import NTKImplementation, empirical_ntk, resolve_implementation
from theory.ntk.jacobian import jacobian
from theory.ntk.ntk_vp import ntk_operator

__all__ = [
    "InPlaceInputError",
    "InputMismatchError",
    "KernelMemoryError",
    "NTKImplementation",
    "NTKInputError",
    "NonFiniteInputError",
    "NondeterministicModelError",
    "SampleMixingError",
    "check_kernel_memory",
    "empirical_ntk",
    "jacobian",
    "ntk_operator",
    "resolve_implementation",
]
