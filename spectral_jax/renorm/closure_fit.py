"""Fit power-law transport closures to measured shell fluxes; test renormalizability.

Everything here takes plain arrays, so it applies to any run (a Kato run on an operator, a
`TransportChain`, a recorded network): times `ts` (T,), shell energies `energy` (T, S+2),
boundary fluxes `flux` (T, S+1) in the convention of docs/theory.md §2.4 and the shell centres (S+2,)
(or a `LogShells`).

The fit (docs/theory.md §2.5). For fixed exponents (a, b) the closure flux is linear in $(v_0, D_0)$:
$\\Pi = v_0\\,q_{a,b}(E, t) + D_0\\,p_{a,b}(E, t)$ (for the upwind scheme, within each sign
branch of $v_0$). So $(v_0, D_0)$ are profiled out by weighted linear least squares, and the
profile loss over (a, b) — smooth and two-dimensional — is minimised by `optax.lbfgs` from the
best point of a coarse grid. Residuals are relative: $(\\Pi_\\text{pred} - \\Pi)/s$ with
$s = |\\Pi| + \\rho\\max|\\Pi|$ (fluxes span decades across shells and time; an absolute loss would
see only the largest). Uncertainty: bootstrap over times (resampled times enter as integer
weights, so all replicates run in one `vmap`, without recompiling).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..renorm.shell_model import (
    SCHEMES,
    PowerLawTransport,
    closure,
    face_eigenvalues,
    solve_shells,
)
from ..shells.grid import LogShells

__all__ = [
    "ClosureFit",
    "LogShiftReport",
    "RenormalizabilityReport",
    "default_mask",
    "fit_closure",
    "log_shift_invariance",
    "predict_flux",
    "renormalizability",
    "retained_mask",
]

_FIT_KINDS = ("drift", "drift+diffusion")
# Admissible (a, b): beyond these a fit is reported at the best grid point instead.
_BOUNDS = (np.array([-3.0, -0.99]), np.array([5.0, 4.0]))


def _centers(shells) -> np.ndarray:
    c = np.asarray(shells.centers if isinstance(shells, LogShells) else shells, dtype=np.float64)
    if c.ndim != 1 or c.size < 3 or np.any(c <= 0) or np.any(np.diff(c) >= 0):
        raise ValueError("shell centres must be 1-D (S+2 >= 3), positive and strictly decreasing")
    ratios = c[:-1] / c[1:]
    if not np.allclose(ratios, ratios[0], rtol=1e-8):
        raise ValueError("shell centres must form a geometric sequence (log shells)")
    return c


def _check_data(ts, energy, flux, centers):
    ts, energy, flux = (np.asarray(x, dtype=np.float64) for x in (ts, energy, flux))
    num = centers.shape[0]
    if ts.ndim != 1 or energy.shape != (ts.shape[0], num) or flux.shape != (ts.shape[0], num - 1):
        raise ValueError(
            f"expected ts (T,), energy (T, {num}) and flux (T, {num - 1}) for {num} shells; got "
            f"{ts.shape}, {energy.shape}, {flux.shape}"
        )
    for name, x in (("ts", ts), ("energy", energy), ("flux", flux)):
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{name} contains NaN or Inf")
    if np.any(ts <= 0):
        raise ValueError("ts must be > 0 (the closure has a factor t^b)")
    return ts, energy, flux


def default_mask(energy, flux) -> np.ndarray:
    """Boundaries used by default: not touching the open-ended shells 0 and S+1 (their
    $E/\\Delta u$ is no density), and with a non-zero flux."""
    flux = np.asarray(flux)
    mask = np.ones(flux.shape, dtype=bool)
    mask[:, 0] = False
    mask[:, -1] = False
    return mask & (np.abs(flux) > 0)


def retained_mask(energy, *, reference=None, keep: float = 0.5) -> np.ndarray:
    """Boundaries whose two interior shells still hold at least `keep` of their reference
    energy (default: the first row): ahead of both the dissipative and the transport front,
    where the profile is still smooth on the shell scale and a coarse closure can hold."""
    energy = np.asarray(energy)
    ref = energy[0] if reference is None else np.asarray(reference)
    with np.errstate(divide="ignore", invalid="ignore"):
        kept = np.where(ref[None, :] > 0, energy / ref[None, :], 0.0) >= keep
    mask = kept[:, :-1] & kept[:, 1:]
    mask[:, 0] = False
    mask[:, -1] = False
    return mask


def _bases(a, b, ts, energy, lam_f, du, lam_ref, t_ref, scheme):
    """(q_plus, q_minus, p): drift bases for v0 >= 0 and v0 <= 0, and the diffusion basis."""
    shape = (lam_f / lam_ref)[None, :] ** a * ((ts / t_ref) ** b)[:, None]
    lower, upper = energy[:, :-1], energy[:, 1:]
    if scheme == "upwind":
        dens_plus, dens_minus = upper / du, lower / du
    elif scheme == "central":
        dens_plus = dens_minus = 0.5 * (lower + upper) / du
    else:
        dens_plus = dens_minus = jnp.sqrt(jnp.maximum(lower * upper, 0.0)) / du
    return -shape * dens_plus, -shape * dens_minus, -shape * (upper - lower) / du**2


def _profile(theta, data, weights, kind, scheme):
    """Best (v0, D0) for exponents theta = (a, b) and the normalised weighted loss."""
    ts, energy, flux, lam_f, du, lam_ref, t_ref = data
    q_plus, q_minus, p = _bases(theta[0], theta[1], ts, energy, lam_f, du, lam_ref, t_ref, scheme)
    norm = jnp.sum(weights * flux**2)

    def loss(v, d, q):
        return jnp.sum(weights * (v * q + d * p - flux) ** 2) / norm

    def dot(x, y):
        return jnp.sum(weights * x * y)

    tiny = jnp.asarray(1e-300, flux.dtype)
    candidates = []
    for q, sign in ((q_plus, 1.0), (q_minus, -1.0)):
        qq, qf = dot(q, q), dot(q, flux)
        if kind == "drift":
            v = sign * jnp.maximum(sign * qf / jnp.maximum(qq, tiny), 0.0)
            candidates.append((v, jnp.zeros_like(v)))
        else:
            qp, pp, pf = dot(q, p), dot(p, p), dot(p, flux)
            det = qq * pp - qp**2
            det = jnp.where(jnp.abs(det) > 1e-14 * qq * pp, det, tiny)
            v = (pp * qf - qp * pf) / det
            d = (qq * pf - qp * qf) / det
            feasible = sign * v >= 0
            d_alone = pf / jnp.maximum(pp, tiny)
            candidates.append((jnp.where(feasible, v, 0.0), jnp.where(feasible, d, d_alone)))
    losses = jnp.stack([loss(v, d, q) for (v, d), q in zip(candidates, (q_plus, q_minus))])
    losses = jnp.where(jnp.isfinite(losses), losses, jnp.inf)
    best = jnp.argmin(losses)
    v = jnp.stack([c[0] for c in candidates])[best]
    d = jnp.stack([c[1] for c in candidates])[best]
    return losses[best], v, d


def _fit_exponents(theta0, data, weights, kind, scheme, iterations):
    """optax L-BFGS on the profile loss over (a, b), from theta0."""

    def fun(theta):
        return _profile(theta, data, weights, kind, scheme)[0]

    # Backtracking line search: compiles several times faster than the default zoom search.
    linesearch = optax.scale_by_backtracking_linesearch(max_backtracking_steps=20, store_grad=True)
    opt = optax.lbfgs(linesearch=linesearch)
    value_and_grad = optax.value_and_grad_from_state(fun)

    def step(carry, _):
        theta, state = carry
        value, grad = value_and_grad(theta, state=state)
        grad = jnp.where(jnp.isfinite(grad), grad, 0.0)
        updates, state = opt.update(grad, state, theta, value=value, grad=grad, value_fn=fun)
        return (optax.apply_updates(theta, updates), state), value

    # optax's L-BFGS mixes int32/int64 counters internally: trace it under standard promotion
    # (a scoped setting; the caller's strict mode is untouched elsewhere).
    with jax.numpy_dtype_promotion("standard"):
        (theta, _), _ = jax.lax.scan(step, (theta0, opt.init(theta0)), None, length=iterations)
    # Never return worse than the start (a line search can fail on a flat or kinked loss), nor
    # exponents far outside any physical range (a flat loss lets L-BFGS wander).
    better = fun(theta) <= fun(theta0)
    inside = jnp.all((theta >= _BOUNDS[0]) & (theta <= _BOUNDS[1]))
    theta = jnp.where(better & inside & jnp.all(jnp.isfinite(theta)), theta, theta0)
    loss, v, d = _profile(theta, data, weights, kind, scheme)
    return jnp.concatenate([v[None], theta, d[None]]), loss


@partial(jax.jit, static_argnames=("kind", "scheme"))
def _grid_losses(grid, data, weights, kind, scheme):
    return jax.vmap(lambda th: _profile(th, data, weights, kind, scheme)[0])(grid)


@partial(jax.jit, static_argnames=("kind", "scheme", "iterations"))
def _fit_batch(theta0, counts, data, weights, kind, scheme, iterations):
    def one(time_weights):
        return _fit_exponents(theta0, data, weights * time_weights[:, None], kind, scheme,
                              iterations)

    return jax.vmap(one)(counts)


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

    kind: str
    scheme: str
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
        return {
            "v0": self.v0,
            "space_exponent": self.space_exponent,
            "time_exponent": self.time_exponent,
            "diffusion": self.diffusion,
        }

    def closure(self, dtype=None) -> PowerLawTransport:
        """The fitted closure, ready for `solve_shells` or `predict_flux`."""
        return closure(
            self.kind,
            v0=self.v0,
            space_exponent=self.space_exponent,
            time_exponent=self.time_exponent,
            diffusion=self.diffusion,
            lam_ref=self.lam_ref,
            t_ref=self.t_ref,
            scheme=self.scheme,
            dtype=dtype,
        )

    def as_dict(self) -> dict:
        out = {
            "kind": self.kind,
            "scheme": self.scheme,
            **self.params,
            "lam_ref": self.lam_ref,
            "t_ref": self.t_ref,
            "loss": self.loss,
            "explained_variance": self.explained_variance,
            "explained_variance_scaled": self.explained_variance_scaled,
            "num_points": self.num_points,
        }
        for name in self.params:
            out[f"{name}_stderr"] = self.stderr.get(name, float("nan"))
            out[f"{name}_ci"] = [
                self.ci_low.get(name, float("nan")),
                self.ci_high.get(name, float("nan")),
            ]
        return out


def _scale(flux, mask, rel_floor):
    peak = np.max(np.abs(flux[mask])) if np.any(mask) else 1.0
    return np.abs(flux) + rel_floor * peak


def fit_closure(
    ts,
    energy,
    flux,
    shells,
    *,
    kind: str = "drift",
    scheme: str = "upwind",
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
    - `kind`: `"drift"` ($D_0 = 0$) or `"drift+diffusion"` (one (a, b) for both, docs/theory.md §2.5).
    - `scheme`: face reconstruction (`"upwind"`, `"central"`, `"geometric"`; see
      `spectral_jax.renormalized`). The fitted $v_0$ is tied to the scheme: on a profile
      $\\varepsilon \\propto e^{-\\sigma u}$ upwind reads it low by
      $(1-e^{-\\sigma\\Delta u})/(\\sigma\\Delta u)$.
    - `mask`: (T, S+1) bool, the points to fit (default `default_mask`).
    - `rel_floor`: ρ in the residual scale $s = |\\Pi| + \\rho\\max|\\Pi|$.
    - `lam_ref`, `t_ref`: the closure's reference scales.
    - `space_grid`, `time_grid`: starting grids for (a, b) (defaults cover a ∈ [-1, 2.5],
      b ∈ [-0.9, 2]).
    - `iterations`: L-BFGS iterations; `num_bootstrap`: replicates (0: none); `seed`.

    **Returns:** a `ClosureFit`.

    **Raises:** `ValueError` on shapes, non-finite data, t ≤ 0, unknown kind/scheme, or fewer
    than 4 points to fit.
    """
    if kind not in _FIT_KINDS:
        raise ValueError(f"kind must be one of {_FIT_KINDS}, got {kind!r}")
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    centers = _centers(shells)
    ts, energy, flux = _check_data(ts, energy, flux, centers)
    mask = default_mask(energy, flux) if mask is None else np.asarray(mask, dtype=bool)
    if mask.shape != flux.shape:
        raise ValueError(f"mask must have shape {flux.shape}, got {mask.shape}")
    if mask.sum() < 4:
        raise ValueError(f"need at least 4 points to fit, the mask selects {int(mask.sum())}")
    scale = _scale(flux, mask, rel_floor)
    base_weights = mask / scale**2
    data = (
        jnp.asarray(ts),
        jnp.asarray(energy),
        jnp.asarray(flux),
        jnp.asarray(face_eigenvalues(centers)),
        jnp.asarray(np.log(centers[0] / centers[1])),
        jnp.asarray(float(lam_ref)),
        jnp.asarray(float(t_ref)),
    )
    a_grid = np.linspace(-1.0, 2.5, 15) if space_grid is None else np.asarray(space_grid, float)
    b_grid = np.linspace(-0.9, 2.0, 15) if time_grid is None else np.asarray(time_grid, float)
    grid = jnp.asarray(np.stack(np.meshgrid(a_grid, b_grid, indexing="ij"), -1).reshape(-1, 2))
    weights = jnp.asarray(base_weights)

    grid_losses = np.asarray(_grid_losses(grid, data, weights, kind, scheme))
    grid_losses = np.where(np.isfinite(grid_losses), grid_losses, np.inf)
    theta0 = grid[int(np.argmin(grid_losses))]

    # Replicate 0 is the fit to all times; the others resample times (multinomial counts as
    # weights), all started from the grid optimum, in one vmapped, compiled call.
    counts = np.ones((1, ts.shape[0]))
    if num_bootstrap > 0:
        rng = np.random.default_rng(seed)
        draws = rng.multinomial(ts.shape[0], np.full(ts.shape[0], 1.0 / ts.shape[0]),
                                size=num_bootstrap)
        counts = np.concatenate([counts, draws.astype(np.float64)])
    all_params, all_losses = _fit_batch(
        theta0, jnp.asarray(counts), data, weights, kind, scheme, iterations
    )
    all_params = np.asarray(all_params)
    params, loss = all_params[0], float(all_losses[0])

    names = ("v0", "space_exponent", "time_exponent", "diffusion")
    boot = None
    stderr, lo, hi = {}, {}, {}
    if num_bootstrap > 0:
        boot = all_params[1:]
        for i, name in enumerate(names):
            col = boot[:, i][np.isfinite(boot[:, i])]
            stderr[name] = float(np.std(col)) if col.size else float("nan")
            lo[name] = float(np.percentile(col, 2.5)) if col.size else float("nan")
            hi[name] = float(np.percentile(col, 97.5)) if col.size else float("nan")

    fit = ClosureFit(
        kind=kind,
        scheme=scheme,
        v0=float(params[0]),
        space_exponent=float(params[1]),
        time_exponent=float(params[2]),
        diffusion=float(params[3]),
        lam_ref=float(lam_ref),
        t_ref=float(t_ref),
        loss=float(loss),
        explained_variance=float("nan"),
        explained_variance_scaled=float("nan"),
        num_points=int(mask.sum()),
        stderr=stderr,
        ci_low=lo,
        ci_high=hi,
        bootstrap=boot,
    )
    pred = predict_flux(fit, ts, energy, centers)
    ev, ev_scaled = _explained(pred, flux, mask, scale)
    return dataclasses.replace(fit, explained_variance=ev, explained_variance_scaled=ev_scaled)


def _explained(pred, flux, mask, scale):
    def ev(p, f):
        p, f = p[mask], f[mask]
        total = np.sum((f - f.mean()) ** 2)
        return float(1.0 - np.sum((p - f) ** 2) / total) if total > 0 else float("nan")

    return ev(pred, flux), ev(pred / scale, flux / scale)


def predict_flux(fit_or_closure, ts, energy, shells) -> np.ndarray:
    """Closure fluxes (T, S+1) from measured energies (T, S+2) at times ts (T,)."""
    c = fit_or_closure.closure() if isinstance(fit_or_closure, ClosureFit) else fit_or_closure
    centers = _centers(shells)
    energy = jnp.asarray(energy, dtype=jnp.float64)
    return np.asarray(c(energy, jnp.asarray(centers), jnp.asarray(ts, dtype=jnp.float64)))


@dataclass(frozen=True)
class RenormalizabilityReport:
    """Prediction of a closure fitted at one shell ratio on data at another.

    - `flux_error`: relative L2 error of the predicted fluxes on the relative residual scale
      the fit uses, $\\|(\\Pi_\\text{pred}-\\Pi)/s\\| / \\|\\Pi/s\\|$; `flux_error_raw`: the same
      without the scale; `flux_median_relative_error`: median of $|\\Pi_\\text{pred}-\\Pi|/|\\Pi|$.
    - `flux_explained_variance`: explained fraction of flux variance at the new ratio.
    - `energy_error`: relative L2 error of $E_s(t)$ from integrating the shell ODE with the
      closure from the measured $E(t_0)$ (interior shells 1..S); `total_energy_error`: max
      over t of the relative error of $\\sum_s E_s$.
    """

    ratio: float
    flux_error: float
    flux_error_raw: float
    flux_median_relative_error: float
    flux_explained_variance: float
    energy_error: float
    total_energy_error: float
    num_points: int

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def renormalizability(
    fit: ClosureFit | PowerLawTransport,
    ts,
    energy,
    flux,
    shells,
    *,
    mask=None,
    rel_floor: float = 1e-3,
    integrate: bool = True,
) -> RenormalizabilityReport:
    """Predict the fluxes and energies of a run at another shell ratio, without refitting.

    **Arguments:** `fit` (a `ClosureFit` from, e.g., ratio 2), the run at the new ratio (`ts`,
    `energy`, `flux`, `shells`), `mask` (default `default_mask`), `rel_floor` as in
    `fit_closure`, `integrate`: also integrate the shell ODE (dissipation at the shell centres)
    for the energy prediction.

    **Returns:** a `RenormalizabilityReport`.
    """
    centers = _centers(shells)
    ts, energy, flux = _check_data(ts, energy, flux, centers)
    mask = default_mask(energy, flux) if mask is None else np.asarray(mask, dtype=bool)
    scale = _scale(flux, mask, rel_floor)
    pred = predict_flux(fit, ts, energy, centers)
    d, f = (pred - flux)[mask], flux[mask]
    s = scale[mask]
    flux_error = float(np.linalg.norm(d / s) / np.linalg.norm(f / s))
    flux_error_raw = float(np.linalg.norm(d) / np.linalg.norm(f))
    median_rel = float(np.median(np.abs(d) / np.abs(f)))
    ev, _ = _explained(pred, flux, mask, scale)
    energy_error = total_error = float("nan")
    if integrate:
        c = fit.closure() if isinstance(fit, ClosureFit) else fit
        sol = solve_shells(c, jnp.asarray(centers), jnp.asarray(energy[0]), jnp.asarray(ts),
                           atol=1e-12 * float(np.sum(energy[0])))
        e_pred = np.asarray(sol.energy)
        interior = slice(1, centers.shape[0] - 1)
        energy_error = float(
            np.linalg.norm(e_pred[:, interior] - energy[:, interior])
            / np.linalg.norm(energy[:, interior])
        )
        total_error = float(np.max(np.abs(e_pred.sum(1) - energy.sum(1)) / energy.sum(1)))
    return RenormalizabilityReport(
        ratio=float(centers[0] / centers[1]),
        flux_error=flux_error,
        flux_error_raw=flux_error_raw,
        flux_median_relative_error=median_rel,
        flux_explained_variance=ev,
        energy_error=energy_error,
        total_energy_error=total_error,
        num_points=int(mask.sum()),
    )


@dataclass(frozen=True)
class LogShiftReport:
    """Log-shift invariance of the shell coupling at distance d.

    $C_s(\\tau) = T_{s,s+d}(t)/(\\lambda_s\\sqrt{E_sE_{s+d}})$ at the similarity time
    $t = \\tau/\\lambda_s$ (dimensionless; for covariant transport, $b = a - 1$, it depends on
    d and τ only). `couplings` (len(taus), S) with NaN where shell s is unavailable;
    `spread` (len(taus),): std over s / |mean over s|; `mean_spread`: its mean over the τ
    with at least `min_shells` shells.
    """

    distance: int
    taus: np.ndarray
    shells: np.ndarray
    couplings: np.ndarray
    spread: np.ndarray
    mean_spread: float

    def as_dict(self) -> dict:
        return {
            "distance": self.distance,
            "taus": self.taus.tolist(),
            "shells": self.shells.tolist(),
            "couplings": np.where(np.isfinite(self.couplings), self.couplings, None).tolist(),
            "spread": np.where(np.isfinite(self.spread), self.spread, None).tolist(),
            "mean_spread": self.mean_spread,
        }


def log_shift_invariance(
    ts, transfer, energy, shells, *, distance: int = 1, taus=None, min_shells: int = 3
) -> LogShiftReport:
    """How far the measured coupling between shells s and s+d is from depending on d only.

    **Arguments:** `ts` (T,) > 0, `transfer` (T, S+2, S+2) ($T_{ss'}$, into s from s'),
    `energy` (T, S+2), `shells` (centres or `LogShells`), `distance` d ≥ 1, `taus` (similarity
    times $\\lambda_s t$; default 12 log-spaced values over the range the run covers),
    `min_shells`: shells needed at a τ for its spread to count.

    **Returns:** a `LogShiftReport`. Interior shells 1..S−d only (shells 0 and S+1 are open).
    """
    centers = _centers(shells)
    ts = np.asarray(ts, dtype=np.float64)
    transfer, energy = np.asarray(transfer, np.float64), np.asarray(energy, np.float64)
    num = centers.shape[0]
    if transfer.shape != (ts.shape[0], num, num) or energy.shape != (ts.shape[0], num):
        raise ValueError(
            f"expected transfer (T, {num}, {num}) and energy (T, {num}); got {transfer.shape}, "
            f"{energy.shape}"
        )
    if distance < 1 or distance > num - 3:
        raise ValueError(f"distance must be in [1, {num - 3}], got {distance}")
    if np.any(ts <= 0):
        raise ValueError("ts must be > 0")
    shell_ids = np.arange(1, num - 1 - distance)
    logt = np.log(ts)
    if taus is None:
        lo = np.log(ts[0] * centers[shell_ids].min())
        hi = np.log(ts[-1] * centers[shell_ids].max())
        taus = np.exp(np.linspace(lo, hi, 12))
    taus = np.asarray(taus, dtype=np.float64)
    couplings = np.full((taus.shape[0], shell_ids.shape[0]), np.nan)
    for j, s in enumerate(shell_ids):
        with np.errstate(divide="ignore", invalid="ignore"):
            c = transfer[:, s, s + distance] / (
                centers[s] * np.sqrt(energy[:, s] * energy[:, s + distance])
            )
        target = np.log(taus / centers[s])
        inside = (target >= logt[0]) & (target <= logt[-1])
        good = np.isfinite(c)
        if good.sum() >= 2:
            couplings[inside, j] = np.interp(target[inside], logt[good], c[good])
    count = np.sum(np.isfinite(couplings), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nanmean(np.where(count[:, None] > 0, couplings, 0.0), axis=1)
        std = np.nanstd(np.where(count[:, None] > 0, couplings, 0.0), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        spread = np.where(count >= min_shells, std / np.abs(mean), np.nan)
    mean_spread = float(np.nanmean(spread)) if np.any(np.isfinite(spread)) else float("nan")
    return LogShiftReport(distance, taus, shell_ids, couplings, spread, mean_spread)
