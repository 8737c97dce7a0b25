"""Fit a power-law transport closure to measured shell fluxes (docs/theory.md §2.5).

Residuals are relative, $(\\Pi_\\text{pred} - \\Pi)/s$ with $s = |\\Pi| + \\rho\\max|\\Pi|$
(`fit_data.flux_scale`). The minimisation is the profile least squares of `profile_fit`, started
from the best point of a coarse (a, b) grid. Uncertainty: bootstrap over times (resampled times
enter as integer weights, so all replicates run in one `vmap`, without recompiling).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import jax.numpy as jnp
import numpy as np

from .closures import PowerLawTransport, closure
from .faces import face_eigenvalues
from .fit_data import check_run, flux_scale, resolve_mask, run_centers
from .options import ClosureKind, Reconstruction, as_closure_kind, as_reconstruction
from .profile_fit import fit_batch, grid_losses

__all__ = ["ClosureFit", "explained_variance", "fit_closure", "predict_flux"]

_PARAMS = ("v0", "space_exponent", "time_exponent", "diffusion")


@dataclass(frozen=True)
class ClosureFit:
    """A fitted power-law closure.

    - `v0`, `space_exponent` (a), `time_exponent` (b), `diffusion` ($D_0$): best fit.
    - `stderr`, `ci_low`, `ci_high`: dicts of bootstrap standard deviation and 2.5/97.5%
      percentiles per parameter (NaN without bootstrap); `bootstrap`: (B, 4) replicates in the
      order (v0, a, b, D0).
    - `explained_variance`: $1 - \\sum(\\Pi_\\text{pred}-\\Pi)^2/\\sum(\\Pi-\\bar\\Pi)^2$ over the
      fitted points; `explained_variance_scaled`: the same on the relative residuals the fit
      minimises; `loss`: normalised weighted residual $\\sum w r^2/\\sum w\\Pi^2$.
    """

    kind: ClosureKind
    scheme: Reconstruction
    v0: float
    space_exponent: float
    time_exponent: float
    diffusion: float
    lam_ref: float
    t_ref: float
    loss: float
    explained_variance: float
    explained_variance_scaled: float
    num_points: int
    stderr: dict = field(default_factory=dict)
    ci_low: dict = field(default_factory=dict)
    ci_high: dict = field(default_factory=dict)
    bootstrap: np.ndarray | None = None

    @property
    def params(self) -> dict:
        return {name: getattr(self, name) for name in _PARAMS}

    def closure(self, dtype=None) -> PowerLawTransport:
        """The fitted closure, ready for `solve_shells` or `predict_flux`."""
        return closure(self.kind, **self.params, lam_ref=self.lam_ref, t_ref=self.t_ref,
                       scheme=self.scheme, dtype=dtype)

    def as_dict(self) -> dict:
        out = {
            "kind": self.kind.value,
            "scheme": self.scheme.value,
            **self.params,
            "lam_ref": self.lam_ref,
            "t_ref": self.t_ref,
            "loss": self.loss,
            "explained_variance": self.explained_variance,
            "explained_variance_scaled": self.explained_variance_scaled,
            "num_points": self.num_points,
        }
        nan = float("nan")
        for name in _PARAMS:
            out[f"{name}_stderr"] = self.stderr.get(name, nan)
            out[f"{name}_ci"] = [self.ci_low.get(name, nan), self.ci_high.get(name, nan)]
        return out


def fit_closure(
    ts,
    energy,
    flux,
    shells,
    *,
    kind: ClosureKind | str = ClosureKind.DRIFT,
    scheme: Reconstruction | str = Reconstruction.EXPONENTIAL,
    mask=None,
    rel_floor: float = 1e-3,
    lam_ref: float = 1.0,
    t_ref: float = 1.0,
    space_grid=None,
    time_grid=None,
    iterations: int = 60,
    num_bootstrap: int = 200,
    seed: int = 0,
) -> ClosureFit:
    """Least-squares fit of $(v_0, a, b[, D_0])$ to measured shell fluxes.

    **Arguments:**
    - `ts` (T,) > 0, `energy` (T, S+2), `flux` (T, S+1): the measured run.
    - `shells`: a `LogShells` or the (S+2,) centres (a geometric sequence).
    - `kind`: `ClosureKind.DRIFT` ($D_0 = 0$) or `ClosureKind.DRIFT_DIFFUSION` (one (a, b)
      for both, docs/theory.md §2.5).
    - `scheme`: the face `Reconstruction`. The fitted $v_0$ is tied to it: on a profile
      $\\varepsilon \\propto e^{-\\sigma u}$ upwind reads it high by
      $\\sigma\\Delta u/(1-e^{-\\sigma\\Delta u})$, a factor that depends on the shell ratio.
      The default, `EXPONENTIAL`, is exact on such profiles at every ratio.
    - `mask`: (T, S+1) bool, the points to fit (default `fit_data.default_mask`).
    - `rel_floor`: ρ in the residual scale $s = |\\Pi| + \\rho\\max|\\Pi|$.
    - `lam_ref`, `t_ref`: the closure's reference scales.
    - `space_grid`, `time_grid`: starting grids for (a, b) (defaults cover a ∈ [-1, 2.5],
      b ∈ [-0.9, 2]).
    - `iterations`: L-BFGS iterations; `num_bootstrap`: replicates (0: none); `seed`.

    **Returns:** a `ClosureFit`.

    **Raises:** `ValueError` on shapes, non-finite data, t ≤ 0, a kind other than DRIFT or
    DRIFT_DIFFUSION, or fewer than 4 points to fit.
    """
    kind = as_closure_kind(kind)
    if kind is ClosureKind.NONE:
        raise ValueError("kind must be ClosureKind.DRIFT or DRIFT_DIFFUSION (NONE has nothing "
                         "to fit)")
    scheme = as_reconstruction(scheme)
    centers = run_centers(shells)
    ts, energy, flux = check_run(ts, energy, flux, centers)
    mask = resolve_mask(mask, energy, flux)
    if mask.sum() < 4:
        raise ValueError(f"need at least 4 points to fit, the mask selects {int(mask.sum())}")
    scale = flux_scale(flux, mask, rel_floor)
    data = tuple(
        jnp.asarray(x, dtype=jnp.float64)
        for x in (ts, energy, flux, face_eigenvalues(centers), np.log(centers[0] / centers[1]),
                  float(lam_ref), float(t_ref))
    )
    a_grid = np.linspace(-1.0, 2.5, 15) if space_grid is None else np.asarray(space_grid, float)
    b_grid = np.linspace(-0.9, 2.0, 15) if time_grid is None else np.asarray(time_grid, float)
    grid = jnp.asarray(np.stack(np.meshgrid(a_grid, b_grid, indexing="ij"), -1).reshape(-1, 2))
    weights = jnp.asarray(mask / scale**2)
    losses = np.asarray(grid_losses(grid, data, weights, kind, scheme))
    theta0 = grid[int(np.argmin(np.where(np.isfinite(losses), losses, np.inf)))]

    # Replicate 0 is the fit to all times; the others resample times (multinomial counts as
    # weights), all started from the grid optimum, in one vmapped, compiled call.
    num_times = ts.shape[0]
    counts = np.ones((1, num_times))
    if num_bootstrap > 0:
        rng = np.random.default_rng(seed)
        draws = rng.multinomial(num_times, np.full(num_times, 1.0 / num_times), num_bootstrap)
        counts = np.concatenate([counts, draws.astype(np.float64)])
    all_params, all_losses = fit_batch(theta0, jnp.asarray(counts), data, weights, kind, scheme,
                                       iterations)
    all_params = np.asarray(all_params)
    boot = all_params[1:] if num_bootstrap > 0 else None
    stderr, lo, hi = {}, {}, {}
    for i, name in enumerate(_PARAMS if boot is not None else ()):
        col = boot[:, i][np.isfinite(boot[:, i])]
        nan = float("nan")
        stderr[name] = float(np.std(col)) if col.size else nan
        lo[name] = float(np.percentile(col, 2.5)) if col.size else nan
        hi[name] = float(np.percentile(col, 97.5)) if col.size else nan
    fit = ClosureFit(
        kind, scheme, *(float(x) for x in all_params[0]), lam_ref=float(lam_ref),
        t_ref=float(t_ref), loss=float(all_losses[0]), explained_variance=float("nan"),
        explained_variance_scaled=float("nan"), num_points=int(mask.sum()), stderr=stderr,
        ci_low=lo, ci_high=hi, bootstrap=boot,
    )
    pred = predict_flux(fit, ts, energy, centers)
    return dataclasses.replace(
        fit,
        explained_variance=explained_variance(pred, flux, mask),
        explained_variance_scaled=explained_variance(pred / scale, flux / scale, mask),
    )


def explained_variance(pred, flux, mask) -> float:
    """$1 - \\sum(\\Pi_\\text{pred}-\\Pi)^2/\\sum(\\Pi-\\bar\\Pi)^2$ over the masked points."""
    p, f = np.asarray(pred)[mask], np.asarray(flux)[mask]
    total = np.sum((f - f.mean()) ** 2)
    return float(1.0 - np.sum((p - f) ** 2) / total) if total > 0 else float("nan")


def predict_flux(fit_or_closure, ts, energy, shells) -> np.ndarray:
    """Closure fluxes (T, S+1) from measured energies (T, S+2) at times ts (T,)."""
    c = fit_or_closure.closure() if isinstance(fit_or_closure, ClosureFit) else fit_or_closure
    centers = jnp.asarray(run_centers(shells))
    energy = jnp.asarray(energy, dtype=jnp.float64)
    return np.asarray(c(energy, centers, jnp.asarray(ts, dtype=jnp.float64)))
