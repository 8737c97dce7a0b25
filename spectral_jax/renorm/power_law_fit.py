"""Power-law fits $y = A x^{-p}$ by least squares in log–log coordinates.

Sign convention (the package's, for every exponent it reports): `exponent` is the *decay*
exponent p of $y \\propto x^{-p}$, positive for a decreasing law, as in `measure_exponent` and
`predicted_exponent`. A growing law ($y \\propto x^{2}$) has exponent −2.

Options: `window` restricts the fit to an x range, given or found as the plateau of the local
slope (`PlateauWindow`, in `fit_window`); `bootstrap` replaces the Student-t interval by a
percentile interval over case resamples (`Bootstrap`), which does not assume Gaussian,
equal-variance residuals in log y.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from .fit_window import PlateauWindow, plateau_window

__all__ = ["Bootstrap", "CIMethod", "PowerLawFit", "fit_power_law"]

# Two-sided 95% Student-t quantiles; beyond 30 degrees of freedom the normal value is used.
_T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def _t95(dof: int) -> float:
    return _T95[dof - 1] if dof <= len(_T95) else 1.960


class CIMethod(enum.StrEnum):
    """How the interval of a `PowerLawFit` was computed: `STUDENT_T` (the slope's standard
    error times a 95% Student-t quantile) or `BOOTSTRAP` (percentile interval over case
    resamples, at `Bootstrap.level`)."""

    STUDENT_T = "student_t"
    BOOTSTRAP = "bootstrap"


@dataclass(frozen=True)
class Bootstrap:
    """Options of the bootstrap interval of `fit_power_law`.

    `num_samples`: case (pairs) resamples of the fitted points, an integer ≥ 100; `level`: the
    coverage of the percentile interval, 0 < level < 1; `seed`: of the numpy `Generator` (an
    integer ≥ 0), so that an interval is reproducible.
    """

    num_samples: int = 2000
    level: float = 0.95
    seed: int = 0

    def __post_init__(self):
        for name in ("num_samples", "seed"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer):
                raise ValueError(f"Bootstrap: {name} must be an integer, got {v!r}")
        if self.num_samples < 100:
            raise ValueError(f"Bootstrap: num_samples must be >= 100 for a percentile interval, "
                             f"got {self.num_samples}")
        if not 0 < self.level < 1:  # also rejects NaN
            raise ValueError(f"Bootstrap: level must lie strictly between 0 and 1, got "
                             f"{self.level!r}")
        if self.seed < 0:
            raise ValueError(f"Bootstrap: seed must be >= 0, got {self.seed}")


@dataclass(frozen=True)
class PowerLawFit:
    """$y \\approx$ `prefactor` · $x^{-\\text{exponent}}$ (decay exponent), with an interval
    [`ci_low`, `ci_high`] (95% Student-t, or bootstrap: see `ci_method`) and standard error
    `stderr` on the exponent; [`x_low`, `x_high`] is the x range actually fitted (points of
    positive weight in the window). The last three fields have defaults so that older
    constructions stay valid; `fit_power_law` always sets them."""

    exponent: float
    prefactor: float
    ci_low: float
    ci_high: float
    stderr: float
    r2: float
    num_points: int
    ci_method: CIMethod = CIMethod.STUDENT_T
    x_low: float = float("nan")
    x_high: float = float("nan")

    @property
    def confidence_interval(self) -> tuple[float, float]:
        return (self.ci_low, self.ci_high)

    def __call__(self, x):
        return self.prefactor * np.asarray(x, dtype=float) ** -self.exponent

    def as_dict(self) -> dict:
        return dict(self.__dict__, ci_method=self.ci_method.value)  # plain str: JSON-friendly


def _check(x, y, weights, where: str = ""):
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
        raise ValueError(f"fit_power_law: x is constant ({x[0]!r}){where}; no exponent can be "
                         f"fitted")
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
        raise ValueError(f"fit_power_law: need at least 3 points of positive weight{where}, "
                         f"got {int(used.sum())}")
    if np.ptp(lx[used]) <= 1e-12 * max(1.0, float(np.abs(lx[used]).max())):
        raise ValueError(f"fit_power_law: x is constant over the points of positive weight{where}")
    return x, y, w


def _window(x, y, window) -> tuple[np.ndarray, str]:
    """The points of `window` (a mask over x) and the phrase naming it in error messages."""
    if isinstance(window, PlateauWindow):
        order = np.argsort(x, kind="stable")  # plateau_window reads the curve in x order
        lo, hi = plateau_window(x[order], y[order], window)
    elif isinstance(window, tuple) and len(window) == 2:
        lo, hi = float(window[0]), float(window[1])
        if np.isnan(lo) or np.isnan(hi) or lo > hi:
            raise ValueError(f"fit_power_law: window must be (x_low, x_high) with x_low <= "
                             f"x_high, got {window!r}")
    else:
        raise TypeError(f"fit_power_law: window must be None, an (x_low, x_high) tuple or a "
                        f"PlateauWindow, got {window!r}")
    sel = (x >= lo) & (x <= hi)
    where = f" in the window [{lo:.6g}, {hi:.6g}]"
    if sel.sum() < 3:
        raise ValueError(f"fit_power_law: need at least 3 points{where}, got {int(sel.sum())} "
                         f"(x spans [{x.min():.6g}, {x.max():.6g}])")
    return sel, where


def _flat(lx) -> np.ndarray:
    """Rows of `lx` (log x of resamples) with one distinct x, as `_check` judges it."""
    return np.ptp(lx, axis=1) <= 1e-12 * max(1.0, float(np.abs(lx).max()))


def _bootstrap_ci(lx, ly, w, options: Bootstrap) -> tuple[float, float]:
    """Percentile interval of the decay exponent over case resamples of the points of positive
    weight (each resample refitted by weighted least squares)."""
    used = w > 0
    lx, ly, w = lx[used], ly[used], w[used]
    rng = np.random.default_rng(options.seed)
    n = lx.size
    idx = rng.integers(0, n, size=(options.num_samples, n))
    # A resample with a single distinct x has no slope: redraw it (likely only for a handful of
    # points); any still flat after many redraws is skipped.
    for _ in range(100):
        bad = _flat(lx[idx])
        if not bad.any():
            break
        idx[bad] = rng.integers(0, n, size=(int(bad.sum()), n))
    idx = idx[~_flat(lx[idx])]
    bx, by, bw = lx[idx], ly[idx], w[idx]
    mx = np.sum(bw * bx, axis=1, keepdims=True) / np.sum(bw, axis=1, keepdims=True)
    my = np.sum(bw * by, axis=1, keepdims=True) / np.sum(bw, axis=1, keepdims=True)
    slopes = np.sum(bw * (bx - mx) * (by - my), axis=1) / np.sum(bw * (bx - mx) ** 2, axis=1)
    tail = (1.0 - options.level) / 2
    lo, hi = np.quantile(-slopes, [tail, 1.0 - tail])
    return float(lo), float(hi)


def fit_power_law(
    x,
    y,
    *,
    weights=None,
    window: tuple[float, float] | PlateauWindow | None = None,
    bootstrap: Bootstrap | None = None,
) -> PowerLawFit:
    """Fit $\\log y = \\log A - p \\log x$ by (weighted) least squares.

    **Arguments:** `x`, `y`: positive, finite 1-D arrays of one length (≥ 3 points, x not
    constant); `weights`: optional non-negative finite weights of the same length (at least 3
    positive), e.g. inverse variances of $\\log y$; `window`: which points to fit, `None` (all),
    an `(x_low, x_high)` tuple (the points with x_low ≤ x ≤ x_high, at least 3) or a
    `PlateauWindow` (the plateau of the local slope, `plateau_window`), weights restricted to
    it; `bootstrap`: `None` for the Student-t interval, or a `Bootstrap` for a percentile
    interval over case resamples of the fitted points (deterministic for its seed).

    **Returns:** a `PowerLawFit` with the *decay* exponent p ($y \\propto x^{-p}$: p > 0 for a
    decreasing law), prefactor A and the CI of p: without `bootstrap`, the 95% interval from
    the slope's standard error with a Student-t quantile (degrees of freedom: points of
    positive weight − 2); with it, the `level` percentile interval (`ci_method` says which;
    `stderr` is the least-squares one either way). `x_low`, `x_high`: the x range fitted.

    **Raises:** `ValueError` naming the problem: shape mismatch, fewer than 3 points (in the
    window), non-positive or non-finite x or y, constant x, bad weights (wrong length, NaN/Inf,
    negative, fewer than 3 positive), a bad tuple window, or no plateau (`plateau_window`);
    `TypeError` for a window of another type.
    """
    x, y, w = _check(x, y, weights)
    if window is not None:
        sel, where = _window(x, y, window)
        x, y, w = _check(x[sel], y[sel], None if weights is None else w[sel], where)
    lx, ly = np.log(x), np.log(y)
    sw = np.sqrt(w)
    design = np.stack([np.ones_like(lx), lx], axis=1) * sw[:, None]
    coef, *_ = np.linalg.lstsq(design, ly * sw, rcond=None)
    resid = (ly - coef[0] - coef[1] * lx) * sw
    dof = int(np.sum(w > 0)) - 2  # >= 1 after the checks
    cov = float(resid @ resid) / dof * np.linalg.inv(design.T @ design)
    stderr = float(np.sqrt(max(cov[1, 1], 0.0)))
    centred = (ly - np.average(ly, weights=w)) * sw
    total = float(centred @ centred)
    r2 = 1.0 - float(resid @ resid) / total if total > 0 else 1.0
    decay = -float(coef[1])
    if bootstrap is None:
        half = _t95(dof) * stderr
        ci_low, ci_high, method = decay - half, decay + half, CIMethod.STUDENT_T
    else:
        (ci_low, ci_high), method = _bootstrap_ci(lx, ly, w, bootstrap), CIMethod.BOOTSTRAP
    fitted = x[w > 0]
    return PowerLawFit(
        exponent=decay,
        prefactor=float(np.exp(coef[0])),
        ci_low=ci_low,
        ci_high=ci_high,
        stderr=stderr,
        r2=r2,
        num_points=int(x.size),
        ci_method=method,
        x_low=float(fitted.min()),
        x_high=float(fitted.max()),
    )
