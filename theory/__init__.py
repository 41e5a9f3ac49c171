"""theory: general explanatory quantities of a torch model (eNTK, spectra, effective parameters, norms)."""

__all__: list[str] = []
