"""Scaling exponents of the loss: formula, shell ODE, microscopic run (docs/theory.md §2.6).

Initial spectrum $\\lambda_k = \\lambda_\\max k^{-\\alpha}$ (α: `spectral_exponent`), energies
$\\varepsilon_k \\propto k^{-\\beta}$ (β > 1: `target_exponent`): energy per log-shell
$\\propto \\lambda^\\sigma$, $\\sigma = (\\beta-1)/\\alpha$. Every exponent here is a *decay*
exponent p of $y \\propto x^{-p}$ (the package's one sign convention, as `fit_power_law`).

- Lazy: $L(t) = \\sum_k\\varepsilon_k e^{-2\\lambda_kt}/(2n)
  \\approx \\Gamma(\\sigma)/(2n\\alpha)\\,(2t)^{-\\sigma}$.
- Drift $v = -v_0\\lambda^at^b$: $L \\propto t^{-\\sigma\\max(1,(1+b)/a)}$. The approach is slow:
  along characteristics the packets in transit are still dissipated, which gives a relative
  correction $\\propto t^{(1+b)(1-1/a)}$ (for (1+b)/a = 2 a $\\ln t/t$), so the local slope
  reaches the asymptote only after several decades (a = 0.7: 0.69 at t = 10⁵, 0.71 at 10⁷).
  Measure it late, or compare two methods in the same window.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
from scipy.special import gamma as _gamma

from ..shells.grid import LogShells
from .power_law_fit import fit_power_law
from .shell_model import solve_shells

__all__ = [
    "Collapse",
    "ExponentMeasurement",
    "ResolutionExponents",
    "continuum_shell_energies",
    "lazy_loss",
    "lazy_loss_asymptotic",
    "measure_exponent",
    "power_law_modes",
    "predicted_exponent",
    "predicted_resolution_exponents",
    "shell_energies",
    "shell_ode_exponent",
    "sigma",
    "similarity_collapse",
]


def sigma(spectral_exponent: float, target_exponent: float) -> float:
    """$\\sigma = (\\beta - 1)/\\alpha$ (α = `spectral_exponent`, β = `target_exponent`)."""
    alpha, beta = spectral_exponent, target_exponent
    if not alpha > 0 or not beta > 1:
        raise ValueError(
            f"need spectral_exponent > 0 and target_exponent (beta) > 1, got {alpha}, {beta}"
        )
    return (beta - 1.0) / alpha


def predicted_exponent(
    spectral_exponent: float,
    target_exponent: float,
    *,
    space_exponent: float | None = None,
    time_exponent: float = 0.0,
) -> float:
    """The decay exponent of the loss in time, $L \\propto t^{-p}$ with
    $p = \\sigma\\max(1, (1+b)/a)$; lazy (no transport) when `space_exponent` is None.

    **Raises:** `ValueError` for α ≤ 0, β ≤ 1, a ≤ 0 or b ≤ −1 (no power-law front)."""
    s = sigma(spectral_exponent, target_exponent)
    if space_exponent is None:
        return s
    if not space_exponent > 0 or not time_exponent > -1:
        raise ValueError(
            f"the drift front needs a > 0 and b > -1, got a={space_exponent}, b={time_exponent}"
        )
    return s * max(1.0, (1.0 + time_exponent) / space_exponent)


@dataclass(frozen=True)
class ResolutionExponents:
    """Decay exponents in data size n and width p (docs/theory.md §2.6, resolution limits).

    - `loss_floor_data`: the loss floor $\\propto n^{-(\\beta-1)}$ (the frontier stops at rank n);
    - `loss_floor_width`: the loss floor $\\propto p^{-(\\beta-1)}$ (rank p);
    - `test_loss_data`: kernel-regression test loss $\\propto n^{-\\min(\\beta-1, 2\\alpha)}$.
    """

    loss_floor_data: float
    loss_floor_width: float
    test_loss_data: float

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def predicted_resolution_exponents(
    spectral_exponent: float, target_exponent: float
) -> ResolutionExponents:
    """The predicted decay exponents in data size n and width p, for $\\lambda_k \\propto
    k^{-\\alpha}$ and $\\varepsilon_k \\propto k^{-\\beta}$ (see `ResolutionExponents`).

    **Raises:** `ValueError` for α ≤ 0 or β ≤ 1."""
    sigma(spectral_exponent, target_exponent)  # checks
    floor = target_exponent - 1.0
    return ResolutionExponents(floor, floor, min(floor, 2.0 * spectral_exponent))


def power_law_modes(
    n: int, spectral_exponent: float, target_exponent: float, *, lam_max: float = 1.0
):
    """$(\\lambda_k, \\varepsilon_k) = (\\lambda_\\max k^{-\\alpha}, k^{-\\beta})$, k = 1..n."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    k = np.arange(1, n + 1, dtype=np.float64)
    return lam_max * k**-spectral_exponent, k**-target_exponent


def lazy_loss(eigenvalues, energies, ts, *, num_samples: int | None = None) -> np.ndarray:
    """Exact lazy loss $\\sum_k\\varepsilon_ke^{-2\\lambda_kt}/(2n)$ (n = number of modes unless
    `num_samples` is given)."""
    lam = np.asarray(eigenvalues, dtype=np.float64)
    eps = np.asarray(energies, dtype=np.float64)
    n = lam.shape[0] if num_samples is None else num_samples
    return np.array([np.sum(eps * np.exp(-2.0 * lam * t)) for t in np.asarray(ts)]) / (2 * n)


def lazy_loss_asymptotic(
    spectral_exponent, target_exponent, ts, *, num_samples: int, lam_max: float = 1.0
):
    """$\\Gamma(\\sigma)/(2n\\alpha)\\,(2\\lambda_\\max t)^{-\\sigma}$ for ε_k = k^{-β}."""
    s = sigma(spectral_exponent, target_exponent)
    scale = 2 * num_samples * spectral_exponent
    return _gamma(s) / scale * (2 * lam_max * np.asarray(ts)) ** -s


def shell_energies(shells: LogShells, eigenvalues, energies) -> np.ndarray:
    """$E_s = \\sum_{k\\in s}\\varepsilon_k$ (S+2,)."""
    member = np.asarray(shells.membership(jnp.asarray(eigenvalues)))
    return member.T @ np.asarray(energies, dtype=np.float64)


def continuum_shell_energies(shells: LogShells, sig: float, *, lam_max: float | None = None):
    """Shell energies of the continuum density $e^{-\\sigma u}$,
    $u = \\ln(\\lambda_\\text{ref}/\\lambda)$,
    for $\\lambda \\le$ `lam_max` (default: one ratio above λ_ref); the tail runs to λ = 0."""
    ratio, lam_ref = float(shells.ratio), float(shells.lam_ref)
    du = np.log(ratio)
    u_top = -du if lam_max is None else np.log(lam_ref / lam_max)
    u_edges = np.concatenate([[u_top], du * np.arange(shells.count + 1), [np.inf]])
    cdf = -np.exp(-sig * u_edges) / sig
    return np.diff(cdf)


@dataclass(frozen=True)
class ExponentMeasurement:
    """A fitted loss exponent $L \\propto t^{-p}$ over [t_min, t_max] (p > 0 for decay)."""

    exponent: float
    ci_low: float
    ci_high: float
    t_min: float
    t_max: float
    r2: float
    num_points: int

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def measure_exponent(ts, loss, t_min: float, t_max: float) -> ExponentMeasurement:
    """Fit $L \\propto t^{-p}$ on $t_\\min \\le t \\le t_\\max$ (`fit_power_law`, log–log).

    **Raises:** `ValueError` with fewer than 3 points in the window or a non-positive loss.
    """
    ts, loss = np.asarray(ts, np.float64), np.asarray(loss, np.float64)
    sel = (ts >= t_min) & (ts <= t_max)
    if sel.sum() < 3:
        raise ValueError(f"need >= 3 times in [{t_min}, {t_max}], got {int(sel.sum())}")
    fit = fit_power_law(ts[sel], loss[sel])
    return ExponentMeasurement(
        exponent=fit.exponent,
        ci_low=fit.ci_low,
        ci_high=fit.ci_high,
        t_min=float(ts[sel][0]),
        t_max=float(ts[sel][-1]),
        r2=fit.r2,
        num_points=int(sel.sum()),
    )


def shell_ode_exponent(
    sig: float,
    closure_fn,
    *,
    t_min: float,
    t_max: float,
    ratio: float = 2.0,
    count: int | None = None,
    num_times: int = 61,
    rtol: float = 1e-8,
    t_start: float | None = None,
    t_end: float | None = None,
):
    """Integrate the shell ODE from the continuum power-law initial condition and fit the
    exponent on [t_min, t_max] (the run covers [t_start, t_end], default [min(0.01, t_min/10),
    t_max], on `num_times` log-spaced times).

    `count` defaults to shells reaching $\\lambda = (10\\,t_\\max)^{-4}$ (deep enough for any
    front with (1+b)/a ≤ 4). **Returns:** (`ExponentMeasurement`, `ShellSolution`).
    """
    if count is None:
        count = int(np.ceil(4 * np.log(10 * t_max) / np.log(ratio)))
    shells = LogShells(1.0, ratio, count)
    initial_energy = continuum_shell_energies(shells, sig)
    t_start = min(1e-2, t_min / 10) if t_start is None else t_start
    ts = np.geomspace(t_start, t_max if t_end is None else t_end, num_times)
    sol = solve_shells(
        closure_fn,
        shells,
        jnp.asarray(initial_energy),
        jnp.asarray(ts),
        rtol=rtol,
        atol=1e-16 * float(initial_energy.sum()),
    )
    return measure_exponent(ts, np.asarray(sol.total), t_min, t_max), sol


@dataclass(frozen=True)
class Collapse:
    """Shell curves in similarity coordinates:
    x = $(\\lambda_s/\\lambda_\\text{ref})^a (t/t_\\text{ref})^{1+b}$,
    y = $E_s(t)/E_s(t_0)$, both (T, S'); `spread`: mean over a common log-x grid of the
    standard deviation across shells of y (interpolated), where ≥ 2 shells overlap;
    `shells`: the shell indices used."""

    x: np.ndarray
    y: np.ndarray
    shells: np.ndarray
    spread: float


def similarity_collapse(
    ts,
    energy,
    centers,
    *,
    space_exponent: float = 1.0,
    time_exponent: float = 0.0,
    lam_ref: float = 1.0,
    t_ref: float = 1.0,
    shells=None,
) -> Collapse:
    """Self-similar collapse of shell energies.

    Lazy (default a = 1, b = 0): $E_s(t)/E_s(0)$ against $\\lambda_st$. With drift, the front
    obeys $\\lambda^{-a} \\propto t^{1+b}$: use $x = \\lambda_s^a t^{1+b}$.

    **Arguments:** `ts` (T,) > 0, `energy` (T, S+2), `centers` (S+2,), exponents, scales,
    `shells` (indices to use; default the interior shells 1..S with $E_s(t_0) > 0$).
    """
    ts = np.asarray(ts, np.float64)
    energy = np.asarray(energy, np.float64)
    centers = np.asarray(centers, np.float64)
    if shells is None:
        shells = np.arange(1, centers.shape[0] - 1)
        shells = shells[energy[0, shells] > 0]
    shells = np.asarray(shells)
    x = (centers[shells] / lam_ref)[None, :] ** space_exponent * (
        (ts / t_ref) ** (1.0 + time_exponent)
    )[:, None]
    y = energy[:, shells] / energy[0, shells][None, :]
    lx = np.log(x)
    grid = np.linspace(lx.min(), lx.max(), 200)
    curves = np.full((shells.shape[0], grid.shape[0]), np.nan)
    for j in range(shells.shape[0]):
        inside = (grid >= lx[:, j].min()) & (grid <= lx[:, j].max())
        curves[j, inside] = np.interp(grid[inside], lx[:, j], y[:, j])
    count = np.sum(np.isfinite(curves), axis=0)
    ok = count >= 2
    spread = float(np.mean(np.nanstd(curves[:, ok], axis=0))) if ok.any() else float("nan")
    return Collapse(x=x, y=y, shells=shells, spread=spread)
