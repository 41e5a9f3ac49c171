"""empirics: canonical, seeded, resumable phenomenon runs that record theory quantities into a store."""

from empirics.controls import finalize_controls, prime_count, random_measure

__all__: list[str] = ["finalize_controls", "prime_count", "random_measure"]
