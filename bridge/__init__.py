"""bridge: fit theory predictions to phenomenon data and try to falsify them."""

__all__: list[str] = []
