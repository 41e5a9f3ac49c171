"""empirics: canonical, seeded, resumable phenomenon runs that record theory quantities into a store."""

__all__: list[str] = []
