"""theory: general explanatory quantities of a torch model (eNTK, spectra, effective parameters, norms)."""

from theory.smoothers import PerOutputEffectiveParameters, effective_parameters

__all__: list[str] = []
__all__ += ["PerOutputEffectiveParameters", "effective_parameters"]
