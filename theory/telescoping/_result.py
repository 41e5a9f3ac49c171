"""The frozen result of a telescoping run, with tidy pandas views."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from theory.telescoping._spec import OptimizerSpec, OutputLink, TelescopeMethod


@dataclass(frozen=True)
class TelescopeResult:
    """Per recorded step: effective parameters, traces and the three predictions of every evaluated input.

    Evaluated inputs are the ``n`` training inputs followed by the ``m`` test inputs; ``O`` is the number of
    outputs, each with its own smoother ``ŝ_o(x) ∈ R^{n·O}`` (it weighs every training label of every output).

    Attributes:
        steps: ``(R,)`` recorded step indices (0 is the initialisation).
        p_train: ``(R, O)`` effective parameters ``(n/|I|) Σ_{j∈I} ‖ŝ_o(x_j)‖²`` on the training inputs.
        p_test: ``(R, O)`` the same on the test inputs (nan when there are none).
        trace_train: ``(R, O)`` ``tr(S_train)`` per output, ``Σ_j ŝ_o(x_j)[j, o]``.
        real: ``(R, n + m, O)`` the trained network's predictions ``f_t(x)``.
        telescoping: ``(R, n + m, O)`` the smoother's prediction ``ŝ_t(x)ᵀy + c_t(x)``.
        linearised: ``(R, n + m, O)`` ``f_0(x) + Σ_t ∇f_{t−1}(x)ᵀΔθ_t`` with the real steps ``Δθ_t``.
        train_loss: ``(R,)`` the real network's training loss ``½ mean_i ‖f(x_i) − y_i‖²``.
        smoother: ``(n + m, O, n, O)`` the final smoother ``S_T``; ``offset``: ``(n + m, O)`` the final ``c_T``.
        n_train: ``n``; optimizer, link, method: the settings of the run.
    """

    steps: np.ndarray
    p_train: np.ndarray
    p_test: np.ndarray
    trace_train: np.ndarray
    real: np.ndarray
    telescoping: np.ndarray
    linearised: np.ndarray
    train_loss: np.ndarray
    smoother: np.ndarray
    offset: np.ndarray
    n_train: int
    optimizer: OptimizerSpec
    link: OutputLink
    method: TelescopeMethod

    @property
    def gap(self) -> np.ndarray:
        """``(R, n + m, O)`` approximation error ``f̃_t(x) − f_t(x)`` of the telescoping model."""
        return self.telescoping - self.real

    @property
    def p_train_mean(self) -> np.ndarray:
        """``(R,)`` p_train averaged over outputs."""
        return self.p_train.mean(axis=1)

    @property
    def p_test_mean(self) -> np.ndarray:
        """``(R,)`` p_test averaged over outputs."""
        return self.p_test.mean(axis=1)

    def _rms(self, err: np.ndarray, split: slice) -> np.ndarray:
        part = err[:, split, :]
        if part.shape[1] == 0:
            return np.full((err.shape[0], err.shape[2]), np.nan)
        return np.sqrt((part**2).mean(axis=1))

    def to_frame(self) -> pd.DataFrame:
        """One row per (step, output): p_train, p_test, trace_train, RMS gaps on train/test and the train loss.

        ``gap_*`` is the RMS over inputs of ``f̃ − f`` (telescoping); ``linear_gap_*`` that of the real-step
        linearisation. Average over outputs with ``df.groupby("step").mean()``.
        """
        n = self.n_train
        out = self.p_train.shape[1]
        tr, te = slice(0, n), slice(n, None)
        columns = {
            "p_train": self.p_train,
            "p_test": self.p_test,
            "trace_train": self.trace_train,
            "gap_train": self._rms(self.gap, tr),
            "gap_test": self._rms(self.gap, te),
            "linear_gap_train": self._rms(self.linearised - self.real, tr),
            "linear_gap_test": self._rms(self.linearised - self.real, te),
        }
        frame = pd.DataFrame(
            {
                "step": np.repeat(self.steps, out),
                "output": np.tile(np.arange(out), len(self.steps)),
                **{k: v.reshape(-1) for k, v in columns.items()},
                "train_loss": np.repeat(self.train_loss, out),
            }
        )
        return frame

    def predictions_frame(self) -> pd.DataFrame:
        """One row per (step, input, output): split, index within split, real, telescoping, linearised, gap."""
        r, total, out = self.real.shape
        index = np.arange(total)
        split = np.where(index < self.n_train, "train", "test")
        local = np.where(index < self.n_train, index, index - self.n_train)
        return pd.DataFrame(
            {
                "step": np.repeat(self.steps, total * out),
                "split": np.tile(np.repeat(split, out), r),
                "index": np.tile(np.repeat(local, out), r),
                "output": np.tile(np.arange(out), r * total),
                "real": self.real.reshape(-1),
                "telescoping": self.telescoping.reshape(-1),
                "linearised": self.linearised.reshape(-1),
                "gap": self.gap.reshape(-1),
            }
        )
