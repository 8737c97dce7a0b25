"""Power-law fits $y = A x^p$ by least squares in log–log coordinates."""

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
    """$y \\approx$ `prefactor` · $x^{\\text{exponent}}$, with a 95% interval on the exponent."""

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
        return self.prefactor * np.asarray(x, dtype=float) ** self.exponent


def fit_power_law(x, y, *, weights=None) -> PowerLawFit:
    """Fit $\\log y = \\log A + p \\log x$ by (weighted) least squares.

    **Arguments:** `x`, `y`: positive 1-D arrays of one length (≥ 3 points).
    **Returns:** a `PowerLawFit` (exponent p, prefactor A, 95% CI of p from the slope's
    standard error with a Student-t quantile).
    **Raises:** `ValueError` on shape mismatch, non-positive or non-finite values.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(
            f"fit_power_law: x and y must be 1-D of one length, got {x.shape}, {y.shape}"
        )
    if x.size < 3:
        raise ValueError(f"fit_power_law: need at least 3 points, got {x.size}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("fit_power_law: x and y must be finite")
    if np.any(x <= 0) or np.any(y <= 0):
        raise ValueError("fit_power_law: x and y must be positive for a log-log fit")
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
    lx, ly = np.log(x), np.log(y)
    sw = np.sqrt(w)
    design = np.stack([np.ones_like(lx), lx], axis=1) * sw[:, None]
    coef, *_ = np.linalg.lstsq(design, ly * sw, rcond=None)
    resid = (ly - coef[0] - coef[1] * lx) * sw
    dof = x.size - 2
    sigma2 = float(resid @ resid) / dof
    cov = sigma2 * np.linalg.inv(design.T @ design)
    stderr = float(np.sqrt(max(cov[1, 1], 0.0)))
    half = _t95(dof) * stderr
    centred = (ly - np.average(ly, weights=w)) * sw
    total = float(centred @ centred)
    r2 = 1.0 - float(resid @ resid) / total if total > 0 else 1.0
    return PowerLawFit(
        exponent=float(coef[1]),
        prefactor=float(np.exp(coef[0])),
        ci_low=float(coef[1] - half),
        ci_high=float(coef[1] + half),
        stderr=stderr,
        r2=r2,
        num_points=int(x.size),
    )
