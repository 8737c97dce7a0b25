"""Power-law fits $y = A x^{-p}$ by least squares in log–log coordinates.

Sign convention (the package's, for every exponent it reports): `exponent` is the *decay*
exponent p of $y \\propto x^{-p}$, positive for a decreasing law, as in `measure_exponent` and
`predicted_exponent`. A growing law ($y \\propto x^{2}$) has exponent −2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PowerLawFit", "fit_power_law"]

# Two-sided 95% Student-t quantiles; beyond 30 degrees of freedom the normal value is used.
_T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def _t95(dof: int) -> float:
    return _T95[dof - 1] if dof <= len(_T95) else 1.960


@dataclass(frozen=True)
class PowerLawFit:
    """$y \\approx$ `prefactor` · $x^{-\\text{exponent}}$ (decay exponent), with a 95% interval
    [`ci_low`, `ci_high`] and standard error `stderr` on the exponent."""

    exponent: float
    prefactor: float
    ci_low: float
    ci_high: float
    stderr: float
    r2: float
    num_points: int

    @property
    def confidence_interval(self) -> tuple[float, float]:
        return (self.ci_low, self.ci_high)

    def __call__(self, x):
        return self.prefactor * np.asarray(x, dtype=float) ** -self.exponent

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _check(x, y, weights):
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(
            f"fit_power_law: x and y must be 1-D of one length, got {x.shape}, {y.shape}"
        )
    if x.size < 3:
        raise ValueError(f"fit_power_law: need at least 3 points, got {x.size}")
    for name, v in (("x", x), ("y", y)):
        if not np.all(np.isfinite(v)):
            raise ValueError(f"fit_power_law: {name} must be finite, got {v}")
        if np.any(v <= 0):
            raise ValueError(f"fit_power_law: {name} must be positive for a log-log fit, got "
                             f"min {v.min()!r}")
    lx = np.log(x)
    if np.ptp(lx) <= 1e-12 * max(1.0, float(np.abs(lx).max())):
        raise ValueError(f"fit_power_law: x is constant ({x[0]!r}); no exponent can be fitted")
    if weights is None:
        return x, y, np.ones_like(x)
    w = np.asarray(weights, dtype=float)
    if w.shape != x.shape:
        raise ValueError(f"fit_power_law: weights must have shape {x.shape}, got {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError(f"fit_power_law: weights must be finite, got {w}")
    if np.any(w < 0):
        raise ValueError(f"fit_power_law: weights must be >= 0, got min {w.min()!r}")
    used = w > 0
    if used.sum() < 3:
        raise ValueError(f"fit_power_law: need at least 3 points of positive weight, got "
                         f"{int(used.sum())}")
    if np.ptp(lx[used]) <= 1e-12 * max(1.0, float(np.abs(lx[used]).max())):
        raise ValueError("fit_power_law: x is constant over the points of positive weight")
    return x, y, w


def fit_power_law(x, y, *, weights=None) -> PowerLawFit:
    """Fit $\\log y = \\log A - p \\log x$ by (weighted) least squares.

    **Arguments:** `x`, `y`: positive, finite 1-D arrays of one length (≥ 3 points, x not
    constant); `weights`: optional non-negative finite weights of the same length (at least 3
    positive), e.g. inverse variances of $\\log y$.

    **Returns:** a `PowerLawFit` with the *decay* exponent p ($y \\propto x^{-p}$: p > 0 for a
    decreasing law), prefactor A and the 95% CI of p from the slope's standard error with a
    Student-t quantile (degrees of freedom: points of positive weight − 2).

    **Raises:** `ValueError` naming the problem: shape mismatch, fewer than 3 points,
    non-positive or non-finite x or y, constant x, or bad weights (wrong length, NaN/Inf,
    negative, fewer than 3 positive).
    """
    x, y, w = _check(x, y, weights)
    lx, ly = np.log(x), np.log(y)
    sw = np.sqrt(w)
    design = np.stack([np.ones_like(lx), lx], axis=1) * sw[:, None]
    coef, *_ = np.linalg.lstsq(design, ly * sw, rcond=None)
    resid = (ly - coef[0] - coef[1] * lx) * sw
    dof = int(np.sum(w > 0)) - 2  # >= 1 after the checks
    cov = float(resid @ resid) / dof * np.linalg.inv(design.T @ design)
    stderr = float(np.sqrt(max(cov[1, 1], 0.0)))
    half = _t95(dof) * stderr
    centred = (ly - np.average(ly, weights=w)) * sw
    total = float(centred @ centred)
    r2 = 1.0 - float(resid @ resid) / total if total > 0 else 1.0
    decay = -float(coef[1])
    return PowerLawFit(
        exponent=decay,
        prefactor=float(np.exp(coef[0])),
        ci_low=decay - half,
        ci_high=decay + half,
        stderr=stderr,
        r2=r2,
        num_points=int(x.size),
    )
