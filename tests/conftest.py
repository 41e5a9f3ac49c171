"""Shared test settings: deterministic, float64-friendly, and quiet on a 2-core machine."""

import os

import matplotlib
import torch
from hypothesis import settings

matplotlib.use("Agg")
os.environ.setdefault("UNITHEORY_PROGRESS", "0")
torch.set_flush_denormal(True)

settings.register_profile("ci", max_examples=25, deadline=None)
settings.load_profile("ci")
