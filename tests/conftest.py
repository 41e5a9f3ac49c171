"""Shared test settings: deterministic, float64-friendly, and quiet on a 2-core machine."""

import os

import matplotlib
import torch
from hypothesis import settings
from threadpoolctl import threadpool_limits

matplotlib.use("Agg")
os.environ.setdefault("UNITHEORY_PROGRESS", "0")
torch.set_flush_denormal(True)
# One intra-op thread and one BLAS thread for the whole suite, set deliberately (REFERENCE §8): the tests' models
# are tiny, and on a shared 2-core machine two threads made them 10-100x slower. Sweep workers set their own.
torch.set_num_threads(1)
threadpool_limits(1)

# Property tests are derandomised by default (the examples depend only on the test's source) and keep no example
# database, so a run never replays an old failure nor draws a new one: the suite gives one answer. The "fresh"
# profile (HYPOTHESIS_PROFILE=fresh) draws new examples on every run, to look for bugs on purpose.
settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True, database=None)
settings.register_profile("fresh", max_examples=25, deadline=None, derandomize=False, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
